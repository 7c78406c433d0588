"""Shared test configuration: the hypothesis profiles (FLCOMPILE_HYPOTHESIS_PROFILE picks one),
tools/ on sys.path, so tests import the scripts there as they import each other, and the
tests that run alone when pytest-xdist runs the suite on several workers (`ALONE`)."""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
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


# Tests that run servers, the link emulation or a CPU quota, or that time real work: under
# pytest-xdist (the default run, `-n 2`) they all go to one worker (their session fixtures,
# such as the live Triton server, are built once) and each runs alone, the other workers
# waiting, so that what they measure is not shared with other tests.
ALONE = (
    "tests/flcompile/deploy/",
    "tests/flcompile/serve/",
    "tests/flcompile/profile/",
    "tests/flcompile/device/test_compute_cgroup.py",
    "tests/tools/test_testbed.py",
    "tests/tools/test_throttle_quantum.py",
    "tests/tools/test_bench_runtime.py",
    "tests/tools/test_load_test.py",
    "tests/tools/test_tools.py::test_profile",
)


def is_alone(nodeid: str) -> bool:
    """Whether the test `nodeid` runs alone (`ALONE`)."""
    return nodeid.startswith(ALONE)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if is_alone(item.nodeid):
            item.add_marker(pytest.mark.xdist_group("alone"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    with _turn(item.config, alone=is_alone(item.nodeid)):  # xdist's "@alone" suffix ends it
        yield


@contextmanager
def _turn(config: pytest.Config, alone: bool) -> Iterator[None]:
    """Hold the test lock for one test: shared, or exclusive for a test that runs alone.

    A readers-writer lock of two flock files in the temporary folder: a test that runs
    alone takes the gate first and keeps it while it waits, so the other workers start no
    new test until it has run. The files are the machine's, not the run's, so two suite
    runs at once also keep out of each other's measurements. Without xdist nothing is shared.
    """
    if not hasattr(config, "workerinput"):
        yield
        return
    folder = Path(tempfile.gettempdir())
    with (
        open(folder / "flcompile-tests.gate", "a") as gate,
        open(folder / "flcompile-tests.lock", "a") as lock,
    ):
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        finally:
            if not alone:
                fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            fcntl.flock(gate, fcntl.LOCK_UN)
