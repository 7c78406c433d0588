"""What float16 sends buy and cost: predicted latency against float32 sends, and output error.

Latency. For each model × rate, the default search (`flcompile.search.solve(space, link,
"best")`) runs on the model's space costed with float32 sends and on the one costed with
float16 sends (`--send-dtype`); each side's plan is what flcompile emits (the best plan with
fused layers, or NFL when that is faster). Halving the bytes halves only the link's time,
so the gain approaches 2× only where the link is the plan's whole critical path. The
`link share` column is the float32 plan's link busy time over its latency: with share s and
the same plan, float16 can be at most 1 / (1 - s/2) times faster (the `cap` column; a
float16 plan may change its cuts and do a little better than its float32 plan's cap).

Accuracy (`--accuracy-models`). Each model is compiled with float16 sends at
`--accuracy-rate` and verified in onnxruntime on `--accuracy-inputs` seeded inputs, as
`flcompile MODEL --send-dtype float16 --verify-inputs N` does: the largest absolute error, the
largest error relative to each output's largest value, and the rows whose argmax held.

Writes DIR/send_dtype.csv (one row per model × rate) and DIR/summary.md, which it prints.

    python tools/send_dtype_gain.py --rates 1.1:3.0:0.1 -o /tmp/fp16 \\
        --accuracy-models alexnet,squeezenet,resnet18 --accuracy-inputs 8
"""

from __future__ import annotations

import csv
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from _common import (
    ToolParser,
    add_cost_args,
    add_hidden_model_args,
    add_rates_arg,
    compute_model,
    edge_label,
    format_table,
    load_analysis,
    model_list,
    model_source,
    run_main,
    write_output,
)
from tqdm import tqdm

from flcompile import models
from flcompile.arg_types import count, positive
from flcompile.atomic_output import check_writable
from flcompile.compile import CompileOptions, compile_model
from flcompile.costs import ComputeModel, LinkModel
from flcompile.costs.wire import FLOAT16, FLOAT32
from flcompile.schedule import Timeline
from flcompile.search import SearchOptions, SearchResult, solve


@dataclass(frozen=True)
class Row:
    """One model at one rate: both plans, both NFLs, and how link-bound the float32 plan is."""

    model: str
    rate_MBps: float
    plan32_s: float
    plan16_s: float
    nfl32_s: float
    nfl16_s: float
    link_share: float
    plan16: str

    @property
    def gain(self) -> float:
        """float32 plan latency / float16 plan latency."""
        return self.plan32_s / self.plan16_s

    @property
    def cap(self) -> float:
        """What halving the float32 plan's link time alone could give: 1 / (1 - share/2)."""
        return 1.0 / (1.0 - self.link_share / 2)


def link_share(timeline: Timeline) -> float:
    """The link's busy time over the plan's latency."""
    busy = sum(p.link_end - p.link_start for p in timeline.paths)
    return busy / timeline.finish if timeline.finish > 0 else 0.0


def describe(result: SearchResult) -> str:
    """The emitted plan in a few words: "2x2 at pool2" or "NFL at full-offload"."""
    plan = result.plan
    if result.fused is not None and plan is result.fused:
        r, c = plan.tiling.grid
        return f"{r}x{c} at {plan.candidate.tensor}"
    return f"NFL at {result.baselines.nfl.label}"


def gain_rows(name: str, compute: ComputeModel, rates: Sequence[float], analysis) -> list[Row]:
    """One model's rows: its two spaces built once, solved at every rate."""
    spaces = {
        dt: analysis.space(compute, SearchOptions(send_dtype=dt)) for dt in (FLOAT32, FLOAT16)
    }
    rows = []
    for rate in rates:
        link = LinkModel(rate_MBps=rate)
        r32 = solve(spaces[FLOAT32], link, "best")
        r16 = solve(spaces[FLOAT16], link, "best")
        rows.append(
            Row(
                name,
                rate,
                r32.predicted_s,
                r16.predicted_s,
                r32.baselines.nfl.total_s,
                r16.baselines.nfl.total_s,
                link_share(r32.plan.timeline()),
                describe(r16),
            )
        )
    return rows


@dataclass(frozen=True)
class Accuracy:
    """One model's float16 plan verified on several inputs."""

    model: str
    plan: str
    max_abs_err: float
    max_rel_err: float
    argmax: str
    inputs: int

    def cells(self) -> list[str]:
        """The summary's row."""
        errors = [f"{self.max_abs_err:.3g}", f"{self.max_rel_err:.3g}"]
        return [self.model, self.plan, str(self.inputs), *errors, self.argmax]


def accuracy(
    name: str,
    compute: ComputeModel,
    rate: float,
    inputs: int,
    small: tuple[float | None, int | None],
) -> Accuracy:
    """Compile `name` with float16 sends (nothing written) and verify it on `inputs` inputs.

    `small` is the hidden (--width, --size) of a small zoo variant, (None, None) for the model
    itself."""
    options = CompileOptions(
        compute=compute,
        link=LinkModel(rate_MBps=rate),
        search=SearchOptions(send_dtype=FLOAT16),
        verify_inputs=inputs,
        runs=0,
    )
    with tempfile.TemporaryDirectory(prefix="fltools-") as tmp:
        source = model_source(name, *small, Path(tmp))
        result = compile_model(source, None, options)
    v = result.verify
    return Accuracy(
        name,
        describe(result.result),
        v.max_abs_err,
        v.max_rel_err,
        f"{v.argmax_agree}/{v.argmax_rows}",
        v.inputs,
    )


def summarize(rows: Sequence[Row], acc: Sequence[Accuracy], header: Sequence[str]) -> str:
    """summary.md: per model the gain over the rates, then every row, then the accuracy."""
    per_model = []
    for name in dict.fromkeys(r.model for r in rows):
        mine = [r for r in rows if r.model == name]
        gains = [r.gain for r in mine]
        shares = [r.link_share for r in mine]
        per_model.append(
            [
                name,
                f"{min(gains):.3f} / {sum(gains) / len(gains):.3f} / {max(gains):.3f}",
                f"{min(shares):.2f} / {max(shares):.2f}",
                f"{sum(r.nfl32_s / r.plan16_s for r in mine) / len(mine):.3f}",
                f"{sum(r.nfl16_s / r.plan16_s for r in mine) / len(mine):.3f}",
            ]
        )
    lines = [*header, ""]
    lines.append(
        format_table(
            [
                "model",
                "fp32/fp16 plan min / mean / max",
                "link share min / max",
                "fp16 plan vs NFL fp32",
                "vs NFL fp16",
            ],
            per_model,
            markdown=True,
        )
    )
    lines += ["", "Every rate:", ""]
    lines.append(
        format_table(
            ["model", "MB/s", "fp32 ms", "fp16 ms", "gain", "link share", "cap", "fp16 plan"],
            [
                [
                    r.model,
                    f"{r.rate_MBps:g}",
                    f"{r.plan32_s * 1e3:.1f}",
                    f"{r.plan16_s * 1e3:.1f}",
                    f"{r.gain:.3f}",
                    f"{r.link_share:.2f}",
                    f"{r.cap:.3f}",
                    r.plan16,
                ]
                for r in rows
            ],
            markdown=True,
        )
    )
    if acc:
        lines += ["", "Output error of the float16 plan (onnxruntime, seeded inputs):", ""]
        lines.append(
            format_table(
                ["model", "plan", "inputs", "max abs err", "max rel err", "argmax unchanged"],
                [a.cells() for a in acc],
                markdown=True,
            )
        )
    lines += [
        "",
        "gain = float32 plan latency / float16 plan latency (each what flcompile emits); "
        "link share = the float32 plan's link busy time / its latency; cap = 1 / (1 - share/2), "
        "what halving the link alone gives the same plan; max rel err is relative to each "
        "output's largest value.",
    ]
    return "\n".join(lines) + "\n"


def build_parser() -> ToolParser:
    p = ToolParser(
        prog="send_dtype_gain.py",
        description="Predicted latency with float16 sends against float32 sends for each "
        "model and rate, and the float16 plans' output error; write send_dtype.csv and "
        "summary.md.",
        epilog="Example: python tools/send_dtype_gain.py --rates 1.1:3.0:0.1 -o /tmp/fp16",
    )
    p.add_argument(
        "--models",
        dest="models",
        type=model_list,
        default=list(models.NAMES),
        metavar="M1,M2,...",
        help=f"zoo models (default all: {','.join(models.NAMES)})",
    )
    add_rates_arg(p)
    p.add_argument(
        "--accuracy-models",
        dest="accuracy_models",
        type=model_list,
        default=[],
        metavar="M1,M2,...",
        help="also compile these with float16 sends and report their output error",
    )
    p.add_argument(
        "--accuracy-inputs",
        dest="accuracy_inputs",
        type=count(1),
        default=8,
        metavar="N",
        help="seeded inputs per accuracy model (default 8)",
    )
    p.add_argument(
        "--accuracy-rate",
        dest="accuracy_rate",
        type=positive,
        default=1.8,
        metavar="MB/s",
        help="the rate the accuracy models are planned at (default 1.8)",
    )
    add_cost_args(p)
    p.add_argument(
        "--edge-flops",
        dest="edge_flops",
        type=positive,
        metavar="FLOP/s",
        help="the edge's speed (default Table I's 4.32e9); a much faster edge leaves the "
        "link as the plans' bottleneck",
    )
    p.add_argument("-o", "--output", dest="out", required=True, help="output directory")
    add_hidden_model_args(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; returns the exit code."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        compute = compute_model(args.paper, args.edge_concurrency)
        if args.edge_flops is not None:
            compute = replace(compute, edge_flops=args.edge_flops)
        out = check_writable(args.out)
        rows: list[Row] = []
        for name in tqdm(args.models, desc="models", unit="model", disable=None):
            analysis = load_analysis(name, args.width, args.size)
            rows += gain_rows(name, compute, args.rates, analysis)
        small = (args.width, args.size)
        acc = [
            accuracy(n, compute, args.accuracy_rate, args.accuracy_inputs, small)
            for n in args.accuracy_models
        ]
        rerun = " ".join(sys.argv[1:] if argv is None else argv)
        header = [
            f"# float16 against float32 sends: {', '.join(args.models)}",
            "",
            f"- {edge_label(compute)}; f_end {compute.device_flops:g}, f_es "
            f"{compute.edge_flops:g} FLOP/s; no latency, result return ignored",
            f"- rates: {len(args.rates)} from {min(args.rates):g} to {max(args.rates):g} MB/s",
            f"- rerun: `python tools/send_dtype_gain.py {rerun}`",
        ]
        summary = summarize(rows, acc, header)

        def write(folder: Path) -> None:
            with (folder / "send_dtype.csv").open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=[*asdict(rows[0]), "gain", "cap"])
                writer.writeheader()
                for r in rows:
                    writer.writerow({**asdict(r), "gain": r.gain, "cap": r.cap})
            (folder / "summary.md").write_text(summary)

        write_output(out, write)
        print(summary)
        print(f"wrote {out / 'send_dtype.csv'}, {out / 'summary.md'}")
        return 0

    return run_main("send_dtype_gain.py", body)


if __name__ == "__main__":
    sys.exit(main())
