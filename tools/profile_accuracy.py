"""How well a measured profile predicts tiled models it was not fitted on.

For each model it measures, with onnxruntime's profiler, the model and its tiled rewrites at
the given grids (as `flcompile profile` does), then for each tiled grid fits the per-op laws
on all the other measured models and predicts that grid's total node time. It prints the
relative error per model and grid, and the median and worst over all of them (target:
median within 10 %, worst within 25 %).

    python tools/profile_accuracy.py --models alexnet,squeezenet,resnet18 --threads 1
"""

from __future__ import annotations

import statistics

from _common import ToolParser, add_models_arg

from flcompile.arg_types import count, grid
from flcompile.compile import analyse
from flcompile.load import load_model
from flcompile.profile.accuracy import held_out_accuracy
from flcompile.profile.variants import measure
from flcompile.verify import make_feeds


def main() -> None:
    """Print the held-out error per model and grid, then the median and worst."""
    p = ToolParser(description=__doc__.splitlines()[0])
    add_models_arg(p, ["alexnet", "squeezenet", "resnet18"])
    p.add_argument("--threads", type=count(1), default=1)
    p.add_argument("--runs", type=count(1), default=7)
    p.add_argument("--grids", type=grid, nargs="+", default=[(1, 2), (2, 2), (3, 3)])
    args = p.parse_args()
    errors, overall = [], []
    print(f"{'model':12s} {'grid':>5s} {'per-op law':>10s} {'overall law':>11s}")
    for name in args.models:
        loaded = load_model(name)
        variants = measure(
            analyse(loaded),
            make_feeds(loaded.model),
            args.threads,
            ((1, 1), *args.grids),
            args.runs,
        )
        accuracy = held_out_accuracy(variants)
        for g, error in accuracy.errors.items():
            errors.append(error)
            overall.append(accuracy.overall_errors[g])
            print(f"{name:12s} {g:>5s} {error:10.1%} {overall[-1]:11.1%}")
    if errors:
        for label, values in (("per-op laws", errors), ("overall law", overall)):
            median, worst = statistics.median(values), max(values)
            print(f"{label}: median {median:.1%}, worst {worst:.1%} ({len(values)} held out)")


if __name__ == "__main__":
    main()
