"""tools/throttle_quantum.py: a busy loop in a real testbed cgroup runs in bursts and stalls."""

from __future__ import annotations

import os

import pytest
import testbed
import throttle_quantum


def test_a_throttled_loop_gets_the_quotas_share_in_bursts_and_stalls(capsys) -> None:
    if testbed.not_permitted() is not None:
        pytest.skip(f"needs a cpu cgroup: {testbed.not_permitted()}")
    data = throttle_quantum.quantum(slowdown=4.0, seconds=0.5)
    assert len(data["stalls"]) >= 5  # a 4x quota stalls every period or few
    assert 0.15 < data["share"] < 0.35  # about a quarter of the CPU
    assert min(data["stalls"]) > throttle_quantum.STALL_S
    assert throttle_quantum.main(["--slowdown", "4", "--seconds", "0.3"]) == 0
    assert "stalls median" in capsys.readouterr().out
    ours = f"flc-tb-{os.getpid()}-"  # the cgroups this process made (testbed.namespace_name)
    base, _ = testbed.cpu_controller()
    leftovers = [p for p in os.listdir(base) if p.startswith(ours)]
    assert not leftovers, leftovers
