"""Shared test configuration: the hypothesis profiles (FLCOMPILE_HYPOTHESIS_PROFILE picks one),
and tools/ on sys.path, so tests import the scripts there as they import each other."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

TOOLS = Path(__file__).resolve().parents[1] / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

# "ci": few examples, no deadline (ONNX Runtime sessions vary in start-up time) and a fixed
# derivation of examples, so a CI run is deterministic. "slow": a wide search, for -m slow.
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=_QUIET,
)
settings.register_profile("slow", max_examples=500, deadline=None, suppress_health_check=_QUIET)
settings.load_profile(os.environ.get("FLCOMPILE_HYPOTHESIS_PROFILE", "ci"))


def _without_local_constants() -> None:
    """Keep hypothesis from drawing constants out of the source of our own modules.

    Hypothesis (6.131 on) now and then draws an integer, float or string from the literals
    of every non-test module imported so far, so under derandomize the examples still
    depended on which test files were collected. It has no setting for this: hand it an
    empty pool (its fixed global constants stay).
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - a hypothesis without the feature
        return
    if not hasattr(providers, "_get_local_constants"):  # pragma: no cover - ditto
        return
    empty = providers.Constants()
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE.cache.clear()


_without_local_constants()
