"""How well a profile predicts stage models it was not fitted on: leave one tiled grid out.

For each tiled grid, the laws are fitted on every other measured model (the untiled model
and the other grids' stages) and predict each of that grid's stage models (`--emit-stages`:
what the runtime runs): the sum of its nodes' predicted seconds against the sum measured.
The relative error is |predicted − measured| / measured. Three laws are compared on the same
measurements: what planning uses (`flcompile.costs.profiled`: the per-kind laws, and the
measured time of a node of a size the profile timed), the per-kind laws alone, one overall
law a + b·FLOPs + c·bytes, and one a + b·FLOPs (what planning used before).

Stages shorter than `floor_s` (a device stage that only slices the input tile: a few
microseconds, where onnxruntime's profiler counts whole microseconds) are reported by their
absolute error and left out of the median and worst.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flcompile.costs.node_key import OVERALL
from flcompile.profile.law import (
    CostLaw,
    Sample,
    fit_group,
    fit_law,
    fit_laws,
    predict_s,
    size_table,
)
from flcompile.profile.variants import Variant

#: Stages measured shorter than this are judged by absolute error (see the module's doc).
FLOOR_S = 50e-6
#: The predictions compared: per kind with the measured sizes (what planning uses), the
#: per-kind laws alone, one overall law, one FLOPs-only law (what planning used before).
LAWS = ("per_kind", "laws_only", "overall", "overall_flops")


@dataclass(frozen=True)
class StageError:
    """One held-out stage model: measured and predicted seconds by each of `LAWS`."""

    grid: str
    stage: str
    measured_s: float
    predicted_s: dict[str, float]

    def error(self, law: str = "per_kind") -> float:
        """The relative error of `law`'s prediction."""
        return abs(self.predicted_s[law] - self.measured_s) / self.measured_s


@dataclass(frozen=True)
class Accuracy:
    """Every held-out stage's error, and the summaries over those at or above `floor_s`."""

    stages: tuple[StageError, ...]
    floor_s: float = FLOOR_S

    @property
    def judged(self) -> tuple[StageError, ...]:
        """The stages at or above the floor."""
        return tuple(s for s in self.stages if s.measured_s >= self.floor_s)

    def median(self, law: str = "per_kind", grid: str | None = None) -> float | None:
        """The median relative error (of one grid's stages), or None with none judged."""
        errors = self._errors(law, grid)
        return statistics.median(errors) if errors else None

    def worst(self, law: str = "per_kind", grid: str | None = None) -> float | None:
        """The largest relative error (of one grid's stages), or None with none judged."""
        errors = self._errors(law, grid)
        return max(errors) if errors else None

    def worst_small_abs_s(self) -> float | None:
        """The largest absolute error of a stage below the floor (per-kind laws)."""
        small = [abs(s.predicted_s["per_kind"] - s.measured_s) for s in self.stages]
        small = [e for e, s in zip(small, self.stages, strict=True) if s.measured_s < self.floor_s]
        return max(small) if small else None

    @property
    def grids(self) -> tuple[str, ...]:
        """The held-out grids, in order."""
        return tuple(dict.fromkeys(s.grid for s in self.stages))

    def _errors(self, law: str, grid: str | None) -> list[float]:
        return [s.error(law) for s in self.judged if grid is None or s.grid == grid]

    def to_json(self) -> dict:
        """The accuracy as the profile stores it."""
        return {
            "method": "leave one tiled grid out: each stage model's total node time",
            "floor_s": self.floor_s,
            "median_rel_error": self.median(),
            "worst_rel_error": self.worst(),
            "per_grid": {
                g: {law: [self.median(law, g), self.worst(law, g)] for law in LAWS}
                for g in self.grids
            },
            "overall_law": [self.median("overall"), self.worst("overall")],
            "overall_flops_law": [self.median("overall_flops"), self.worst("overall_flops")],
            "worst_small_stage_abs_s": self.worst_small_abs_s(),
            "stages": [
                {"grid": s.grid, "stage": s.stage, "measured_s": s.measured_s, **s.predicted_s}
                for s in self.stages
            ],
        }


def fitted_laws(samples: Sequence[Sample]) -> dict[str, tuple[dict[str, CostLaw], dict | None]]:
    """Each of `LAWS` fitted on `samples`: (law key -> law, the overall law under OVERALL;
    the measured sizes, or None where the law alone predicts)."""
    overall = fit_group(samples)
    flops_only = fit_law([s.flops for s in samples], [s.seconds for s in samples])
    per_kind = {**fit_laws(samples), OVERALL: overall}
    return {
        "per_kind": (per_kind, size_table(samples)),
        "laws_only": (per_kind, None),
        "overall": ({OVERALL: overall}, None),
        "overall_flops": ({OVERALL: flops_only}, None),
    }


def held_out_accuracy(variants: Sequence[Variant], floor_s: float = FLOOR_S) -> Accuracy:
    """Each tiled grid's stage models predicted by the laws fitted on all the others.

    Args:
        variants: the measured grids (the untiled model is never held out).
        floor_s: stages shorter than this are judged by absolute error.

    Returns:
        The errors.
    """
    errors = []
    for held in variants:
        if held.grid == (1, 1):
            continue
        laws = fitted_laws([s for v in variants if v is not held for s in v.samples])
        grid = f"{held.grid[0]}x{held.grid[1]}"
        errors += [
            StageError(grid, stage.name, stage.total_s, _predict(laws, stage.samples))
            for stage in held.stages
            if stage.total_s > 0
        ]
    return Accuracy(tuple(errors), floor_s)


def _predict(laws: Mapping[str, tuple], samples) -> dict[str, float]:
    return {name: predict_s(law, samples, sizes) for name, (law, sizes) in laws.items()}
