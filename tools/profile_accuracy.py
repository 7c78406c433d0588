"""How well a measured profile predicts tiled stage models it was not fitted on.

For each model it measures, with onnxruntime's profiler, the model and the stage models
(`--emit-stages`) of its tiled rewrites at the given grids, as `flcompile profile` does;
then for each tiled grid it fits the laws on all the other measurements and predicts that
grid's stage models (the sum of their nodes). It prints the median and worst relative error
per model and grid, and over everything (target: median within 10 %, worst within 25 %),
for the per-kind laws planning uses, one overall law a + b·FLOPs + c·bytes, and one overall
a + b·FLOPs (what planning used before). Stages under the floor (50 µs: a device stage that
only slices the input tile) are reported by their largest absolute error instead.

    python tools/profile_accuracy.py --models alexnet,squeezenet,resnet18 --threads 1
"""

from __future__ import annotations

import statistics

from _common import ToolParser, add_hidden_model_args, add_models_arg, load_analysis

from flcompile.arg_types import count, grid
from flcompile.profile.accuracy import LAWS, Accuracy, held_out_accuracy
from flcompile.profile.variants import measure


def main(argv: list[str] | None = None) -> int:
    """Print the held-out stage errors per model and grid, then over all of them."""
    p = ToolParser(description=__doc__.splitlines()[0])
    add_models_arg(p, ["alexnet", "squeezenet", "resnet18"])
    p.add_argument("--threads", type=count(1), default=1)
    p.add_argument("--runs", type=count(1), default=7, help="timed runs per session")
    p.add_argument("--repeats", type=count(1), default=3, help="sessions per stage (median)")
    p.add_argument("--grids", type=grid, nargs="+", default=[(1, 2), (2, 2), (3, 3)])
    p.add_argument("--verbose", action="store_true", help="print every held-out stage")
    add_hidden_model_args(p)
    args = p.parse_args(argv)
    judged: dict[str, list[float]] = {law: [] for law in LAWS}
    small = []
    header = " ".join(f"{law:>17s}" for law in LAWS)
    print(f"{'model':11s} {'grid':>4s} {'stages':>6s} {header}   (median / worst)")
    for name in args.models:
        analysis = load_analysis(name, args.width, args.size)
        variants = measure(analysis, args.threads, ((1, 1), *args.grids), args.runs, args.repeats)
        accuracy = held_out_accuracy(variants)
        for g in accuracy.grids:
            cells = " ".join(_cell(accuracy, law, g) for law in LAWS)
            count_ = sum(1 for s in accuracy.judged if s.grid == g)
            print(f"{name:11s} {g:>4s} {count_:6d} {cells}")
            if args.verbose:
                _print_stages(accuracy, g)
        for law in LAWS:
            judged[law] += [s.error(law) for s in accuracy.judged]
        if accuracy.worst_small_abs_s() is not None:
            small.append(accuracy.worst_small_abs_s())
    for law, errors in judged.items():
        if errors:
            median, worst = statistics.median(errors), max(errors)
            print(f"{law}: median {median:.1%}, worst {worst:.1%} ({len(errors)} stages)")
    if small:
        print(f"stages under 50 us: largest absolute error {max(small) * 1e6:.1f} us")
    return 0


def _cell(accuracy: Accuracy, law: str, g: str) -> str:
    median, worst = accuracy.median(law, g), accuracy.worst(law, g)
    if median is None:
        return f"{'-':>17s}"
    return f"{median:7.1%} / {worst:7.1%}"


def _print_stages(accuracy: Accuracy, g: str) -> None:
    for s in accuracy.stages:
        if s.grid == g:
            predicted = " ".join(f"{s.predicted_s[law] * 1e6:9.0f}" for law in LAWS)
            print(f"    {s.stage:10s} measured {s.measured_s * 1e6:9.0f} us, predicted {predicted}")


if __name__ == "__main__":
    raise SystemExit(main())
