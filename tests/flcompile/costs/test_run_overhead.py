"""The run overhead: what a stage run costs beyond its kernels, measured and fitted."""

from __future__ import annotations

import numpy as np
import pytest

from flcompile.costs.run_overhead import RunOverhead, fit_run_overhead
from flcompile.profile.trace import run_overheads


def _kernel(ts: int, dur: int) -> dict:
    return {"cat": "Node", "name": "n_kernel_time", "ts": ts, "dur": dur}


def test_each_runs_overhead_is_its_wall_time_less_the_kernels_inside_it():
    events = [
        {"cat": "Session", "name": "model_run", "ts": 100, "dur": 60},
        _kernel(110, 20),
        _kernel(140, 10),
        {"cat": "Session", "name": "model_run", "ts": 300, "dur": 40},
        _kernel(305, 30),
    ]
    got = run_overheads(events, [100e-6, 50e-6])
    assert got == pytest.approx([70e-6, 20e-6])
    assert run_overheads(events, [1e-3]) == []  # walls that do not match the trace's runs


def test_the_fit_recovers_a_known_law_and_a_run_of_no_nodes_costs_nothing():
    nodes = [1, 2, 4, 8, 19]
    law = fit_run_overhead([(n, 2e-5 + 5e-6 * n) for n in nodes] + [(0, 1.0)])
    assert law.s_per_run == pytest.approx(2e-5) and law.s_per_node == pytest.approx(5e-6)
    assert law.n == len(nodes)
    assert law.seconds(np.array([0.0, 3.0])) == pytest.approx([0.0, 3.5e-5])
    assert law.seconds(0) == 0.0
    assert fit_run_overhead([]) == RunOverhead()


def test_the_profiles_run_section_round_trips_and_refuses_what_is_not_a_cost():
    law = RunOverhead(1e-4, 2e-6, 5)
    assert RunOverhead.from_json(law.to_json()) == law
    assert RunOverhead.from_json(None) == RunOverhead()
    with pytest.raises(ValueError, match="not a cost"):
        RunOverhead.from_json({"s_per_run": -1.0, "s_per_node": 0.0, "n": 1})
