"""How well a profile predicts models it was not fitted on: leave one tiled grid out.

For each tiled variant, the laws are fitted on every other variant and predict its total
node time; the relative error is |predicted − measured| / measured. It is measured for the
per-op-type laws and for the one overall law (the law planning uses).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from flcompile.profile.law import Sample, fit_laws, predict_s
from flcompile.profile.variants import Variant


@dataclass(frozen=True)
class Accuracy:
    """Held-out relative errors, one per tiled grid ("RxC" -> error).

    Attributes:
        errors: with a law per op type.
        overall_errors: with one law for every node (as planning uses).
    """

    errors: dict[str, float]
    overall_errors: dict[str, float] = field(default_factory=dict)

    @property
    def median(self) -> float | None:
        """The median relative error, or None with nothing held out."""
        return statistics.median(self.errors.values()) if self.errors else None

    @property
    def worst(self) -> float | None:
        """The largest relative error, or None with nothing held out."""
        return max(self.errors.values()) if self.errors else None

    def to_json(self) -> dict:
        """The accuracy as the profile stores it."""
        return {
            "method": "leave one tiled grid out: total node time",
            "median_rel_error": self.median,
            "worst_rel_error": self.worst,
            "per_grid": self.errors,
            "overall_law_per_grid": self.overall_errors,
        }


def held_out_accuracy(variants: Sequence[Variant]) -> Accuracy:
    """Each tiled variant's total node time predicted by the laws of all the others.

    Args:
        variants: the measured variants (the untiled one is never held out).

    Returns:
        The relative errors.
    """
    errors: tuple[dict[str, float], dict[str, float]] = ({}, {})
    for held in variants:
        if held.grid == (1, 1) or held.total_s <= 0:
            continue
        rest = [s for v in variants if v is not held for s in v.samples]
        grid = f"{held.grid[0]}x{held.grid[1]}"
        for relabel, out in zip((_same, _overall), errors, strict=True):
            predicted = predict_s(fit_laws(map(relabel, rest)), map(relabel, held.samples))
            out[grid] = abs(predicted - held.total_s) / held.total_s
    return Accuracy(*errors)


def _same(sample: Sample) -> Sample:
    return sample


def _overall(sample: Sample) -> Sample:
    return replace(sample, op_type="*")
