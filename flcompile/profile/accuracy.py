"""How well a profile predicts models it was not fitted on: leave one tiled grid out.

For each tiled variant, the laws are fitted on every other variant and predict its total
node time; the relative error is |predicted − measured| / measured.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from flcompile.profile.law import fit_laws, predict_s
from flcompile.profile.variants import Variant


@dataclass(frozen=True)
class Accuracy:
    """Held-out relative errors, one per tiled grid ("RxC" -> error)."""

    errors: dict[str, float]

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
        }


def held_out_accuracy(variants: Sequence[Variant]) -> Accuracy:
    """Each tiled variant's total node time predicted by the laws of all the others.

    Args:
        variants: the measured variants (the untiled one is never held out).

    Returns:
        The relative errors.
    """
    errors = {}
    for held in variants:
        if held.grid == (1, 1) or held.total_s <= 0:
            continue
        laws = fit_laws(s for v in variants if v is not held for s in v.samples)
        predicted = predict_s(laws, held.samples)
        errors[f"{held.grid[0]}x{held.grid[1]}"] = abs(predicted - held.total_s) / held.total_s
    return Accuracy(errors)
