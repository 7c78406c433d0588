"""The console summary a person reads after a compile: plan, paths, predictions, checks."""

from __future__ import annotations

from flcompile.compile import CompileResult
from flcompile.costs import edge_model_words

MAX_PATH_ROWS = 16


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.2f} ms"


def _x(base: float, plan: float) -> str:
    return f"{base / plan:.2f}x" if plan > 0 else "-"


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape)


def threads(count: int | None) -> str:
    """ "1 thread", "4 threads" or onnxruntime's default."""
    if count is None:
        return "default threads"
    return f"{count} thread{'s' if count != 1 else ''}"


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def format_summary(result: CompileResult) -> str:
    """Render a compile's result as a few aligned lines."""
    plan = result.plan
    cost, link = plan["cost"], plan["link"]
    lines = []
    inputs = ", ".join(f"{i['name']} {_shape(i['shape'])}" for i in plan["model"]["inputs"])
    lines.append(f"model      {plan['model']['path']}  ({inputs})")
    concurrency = cost["edge_concurrency"]
    edge_model = edge_model_words(concurrency)
    radio = " from Shannon's formula" if link["shannon"] else ""
    lines.append(
        f"costs      link {link['rate_MBps']:.3g} MB/s{radio}, device {cost['device_flops']:.3g} "
        f"FLOP/s, edge {cost['edge_flops']:.3g} FLOP/s, edge concurrency: {edge_model}"
    )
    fused = plan["fused"]
    if fused:
        r, c = fused["grid"]
        lines.append(
            f"plan       fuse at {fused['tensor']} ({_shape(fused['shape'])}), grid {r}x{c} = "
            f"{r * c} paths, redundancy {fused['redundancy']:.2f}x, solver {plan['solver']}"
        )
        lines.append(
            "  path order  tile h×w        cut after                      sends        "
            "device     link       edge"
        )
        rows = sorted(plan["paths"], key=lambda p: p["order"])
        for p in rows[:MAX_PATH_ROWS]:
            (h0, h1), (w0, w1) = p["tile"]["h"], p["tile"]["w"]
            tile = f"[{h0},{h1})×[{w0},{w1})"
            cut = p["cut_after"] or "(raw input tile)"
            if len(cut) > 30:
                cut = "…" + cut[-29:]
            sent = _bytes(sum(s["bytes"] for s in p["sends"]))
            lines.append(
                f"  p{p['index']:<3} {p['order']:>5}  {tile:<15} {cut:<30} {sent:>10}  "
                f"{_ms(p['device_s']):>9}  {_ms(p['link_s']):>9}  {_ms(p['edge_s']):>9}"
            )
        if len(rows) > MAX_PATH_ROWS:
            lines.append(f"  … {len(rows) - MAX_PATH_ROWS} more paths in plan.json")
    else:
        nfl = plan["nfl_plan"]
        lines.append(f"plan       no fused layers: single cut {nfl['cut']} ({nfl['reason']})")
    for note in plan["notes"]:
        lines.append(f"note       {note}")
    predicted = plan["predicted_s"]
    base = plan["baselines"]
    lines.append(f"predicted  {_ms(predicted)}  (simulated; edge: {edge_model})")
    lines.append(
        f"  vs local-only {_ms(base['local_s'])} ({_x(base['local_s'], predicted)}), "
        f"full offload {_ms(base['full_offload_s'])} ({_x(base['full_offload_s'], predicted)}), "
        f"NFL {_ms(base['nfl_s'])} at {base['nfl_cut']} ({_x(base['nfl_s'], predicted)})"
    )
    lb = plan["lower_bound_s"]
    lines.append(f"  fluid lower bound {_ms(lb)}; plan/bound {predicted / lb:.3f}" if lb else "")
    verify = plan["verify"]
    if verify is None:
        lines.append("verify     skipped (--no-verify)")
    else:
        names = len(verify["compared"])
        lines.append(
            f"verify     {'passed' if verify['passed'] else 'FAILED'}: {names} tensor(s) in "
            f"onnxruntime, max abs err {verify['max_abs_err']:.3g}, max rel err "
            f"{verify['max_rel_err']:.3g} (rtol {verify['rtol']:g}, atol {verify['atol']:g})"
        )
    measured = plan["measured"]
    if measured:
        on_device, on_edge = threads(measured["device_threads"]), threads(measured["edge_threads"])
        lines.append(
            f"measured   device.onnx {_ms(measured['device_s'])} ({on_device}), edge.onnx "
            f"{_ms(measured['edge_s'])} ({on_edge}), original {_ms(measured['original_s'])} "
            f"({on_device}); this machine's onnxruntime CPU, medians of {measured['runs']}"
        )
    if result.out_dir is not None:
        lines.append(
            f"wrote      {result.out_dir}/: device.onnx edge.onnx tiled.onnx plan.json timeline.png"
        )
    return "\n".join(line for line in lines if line)
