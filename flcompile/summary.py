"""The console summary a person reads after a compile: plan, paths, predictions, checks."""

from __future__ import annotations

from flcompile.compile import CompileResult
from flcompile.costs import edge_model_words
from flcompile.plans.text import ms, shape, size
from flcompile.timing import MeasuredTimes, threads_text

# The order OUT's entries are listed in; anything else follows in name order.
OUT_ORDER = ("device.onnx", "edge.onnx", "tiled.onnx", "plan.json", "timeline.png", "stages/")


def _x(base: float, plan: float) -> str:
    return f"{base / plan:.2f}x" if plan > 0 else "-"


def _measured_lines(m: MeasuredTimes, meaning: str) -> list[str]:
    """edge.onnx against the original at equal threads, then the device side, and what the
    ratio means."""
    on_edge = threads_text(m.edge_thread_count, m.edge_threads is None)
    on_device = threads_text(m.device_thread_count, m.device_threads is None)
    return [
        f"measured   at {on_edge}: edge.onnx {ms(m.edge_s)}, original "
        f"{ms(m.original_edge_threads_s)}, edge/original {m.edge_over_original:.2f}x; "
        f"at {on_device}: device.onnx {ms(m.device_s)}, original {ms(m.original_s)}; "
        f"medians of {m.runs}",
        f"  edge/original is {meaning} in onnxruntime on this machine's CPU, "
        "not the predicted latency",
    ]


def _verify_extra(verify: dict) -> str:
    """The inputs verified (when more than one) and the rows whose argmax held (if any)."""
    text = ""
    agree, rows = verify.get("argmax_unchanged", (0, 0))
    if rows:
        text += f", argmax unchanged in {agree}/{rows} row(s)"
    if verify.get("inputs", 1) > 1:
        text += f", over {verify['inputs']} inputs"
    return text


def written_line(out_dir: str, written: dict[str, int]) -> str:
    """ "OUT/: device.onnx edge.onnx … (245.3 MB)": OUT's top-level entries and their total size.

    Args:
        out_dir: the output directory as the user named it.
        written: every file written, relative to OUT ("stages/edge_fuse.onnx") -> bytes.

    Returns:
        The entries (a subdirectory once, as "stages/"; hidden files such as the output
        marker are counted in the size but not listed) and the sum of all the files' sizes.
    """
    entries = {
        name.split("/")[0] + ("/" if "/" in name else "")
        for name in written
        if not name.startswith(".")
    }
    known = [name for name in OUT_ORDER if name in entries]
    names = known + sorted(entries - set(known))
    return f"{out_dir}/: {' '.join(names)} ({size(sum(written.values()))})"


def format_summary(result: CompileResult) -> str:
    """Render a compile's result as a few aligned lines."""
    plan = result.plan
    cost, link = plan["cost"], plan["link"]
    lines = []
    inputs = ", ".join(f"{i['name']} {shape(i['shape'])}" for i in plan["model"]["inputs"])
    lines.append(f"model      {plan['model']['path']}  ({inputs})")
    concurrency = cost["edge_concurrency"]
    edge_model = edge_model_words(concurrency)
    radio = " from Shannon's formula" if link["shannon"] else ""
    if link.get("profile"):
        radio = f" measured ({link['profile']})"
    if link["latency_s"]:
        radio += f" + {link['latency_s'] * 1e3:.3g} ms per message"
    sends = f" ({link['send_dtype']} sends)" if "send_dtype" in link else ""
    sides = cost.get("sides", {})
    device, edge = (
        f"{side} profile {sides[side]['file']}"
        if side in sides
        else f"{side} {cost[key]:.3g} FLOP/s"
        for side, key in (("device", "device_flops"), ("edge", "edge_flops"))
    )
    lines.append(
        f"costs      link {link['rate_MBps']:.3g} MB/s{radio}{sends}, {device}, {edge}, "
        f"edge concurrency: {edge_model}"
    )
    lines.extend(result.result.plan.summary_lines(plan))
    for note in plan["notes"]:
        lines.append(f"note       {note}")
    predicted = plan["predicted_s"]
    base = plan["baselines"]
    lines.append(f"predicted  {ms(predicted)}  (simulated; edge: {edge_model})")
    lines.append(
        f"  vs local-only {ms(base['local_s'])} ({_x(base['local_s'], predicted)}), "
        f"full offload {ms(base['full_offload_s'])} ({_x(base['full_offload_s'], predicted)}), "
        f"NFL {ms(base['nfl_s'])} at {base['nfl_cut']} ({_x(base['nfl_s'], predicted)})"
    )
    if "nfl_float32_s" in base:
        nfl32 = base["nfl_float32_s"]
        lines.append(
            f"  vs NFL with float32 sends {ms(nfl32)} at {base['nfl_float32_cut']} "
            f"({_x(nfl32, predicted)})"
        )
    lb = plan["lower_bound_s"]
    lines.append(f"  fluid lower bound {ms(lb)}; plan/bound {predicted / lb:.3f}" if lb else "")
    space = plan["lower_bound_space_s"]
    if space and lb:
        lines.append(
            f"  space lower bound {ms(space)} (any schedule of the F and grids searched); "
            f"plan/space {predicted / space:.3f}, space/fluid {space / lb:.3f}"
        )
    verify = plan["verify"]
    if verify is None:
        lines.append("verify     skipped (--no-verify)")
    else:
        names = len(verify["compared"])
        lines.append(
            f"verify     {'passed' if verify['passed'] else 'FAILED'}: {names} tensor(s) in "
            f"onnxruntime, max abs err {verify['max_abs_err']:.3g}, max rel err "
            f"{verify['max_rel_err']:.3g} (rtol {verify['rtol']:g}, atol {verify['atol']:g})"
            + _verify_extra(verify)
        )
    measured = result.measured
    if measured is not None:
        lines.extend(_measured_lines(measured, result.result.plan.measured_meaning()))
    if result.out_dir is not None:
        lines.append(f"wrote      {written_line(str(result.out_dir), result.written)}")
    return "\n".join(line for line in lines if line)
