"""How coarsely the testbed's CPU quota slows its device: the bursts and stalls of a busy loop.

A cpu cgroup's quota is enforced when the scheduler accounts the group's runtime, which a
process that computes without blocking meets at the scheduler's tick: it runs past its
quota until the next tick, then stalls until the group has paid the overrun back out of
later periods. The emulated device therefore computes in bursts of a few ms at this
machine's full speed, separated by stalls of tens of ms, not at a steady 1/K of the CPU;
a device stage shorter than one burst-and-stall cycle ends early or late by up to a
stall. This tool runs a busy loop in a testbed cgroup (`testbed.run_throttled`, the
quota for `--slowdown`) and prints the bursts' and stalls' medians and maxima, and the
CPU share it got against the quota's.

    python tools/throttle_quantum.py --slowdown 19.4 --seconds 3
"""

from __future__ import annotations

import json
import statistics
import sys

import testbed
from _common import ToolParser, positive_float, run_main

#: The busy loop: a gap in the wall clock longer than this is a stall (seconds).
STALL_S = 5e-4

LOOP = """
import json, time
runs, stalls = [], []
last = start = time.perf_counter()
end = start + {seconds}
while last < end:
    now = time.perf_counter()
    if now - last > {stall}:
        runs.append(last - start)
        stalls.append(now - last)
        start = now
    last = now
print(json.dumps({{"runs": runs, "stalls": stalls, "seconds": {seconds}}}))
"""


def quantum(slowdown: float, seconds: float) -> dict:
    """The bursts and stalls of a busy loop in a cgroup `slowdown` times slower.

    Args:
        slowdown: the quota's slowdown (`testbed.make_cpu_group`).
        seconds: how long the loop runs (wall).

    Returns:
        `runs` and `stalls` (seconds each) and `share`, the CPU share the loop got.
    """
    code = LOOP.format(seconds=seconds, stall=STALL_S)
    text = testbed.run_throttled([sys.executable, "-c", code], slowdown)
    data = json.loads(text.strip().splitlines()[-1])
    data["share"] = sum(data["runs"]) / seconds
    return data


def main(argv: list[str] | None = None) -> int:
    """Print the throttled loop's bursts and stalls."""
    p = ToolParser(description=__doc__.splitlines()[0])
    p.add_argument("--slowdown", type=positive_float, default=testbed.TABLE_I_SLOWDOWN)
    p.add_argument("--seconds", type=positive_float, default=3.0, help="how long the loop runs")
    args = p.parse_args(argv)
    return run_main("throttle_quantum.py", lambda: _report(args.slowdown, args.seconds))


def _report(slowdown: float, seconds: float) -> int:
    data = quantum(slowdown, seconds)
    runs, stalls = data["runs"], data["stalls"]
    if not stalls:
        print(f"no stall in {seconds:g} s: the loop ran unthrottled")
        return 0
    print(
        f"slowdown {slowdown:g}: {len(stalls)} stalls in {seconds:g} s; "
        f"bursts median {statistics.median(runs) * 1e3:.2f} ms (max {max(runs) * 1e3:.2f}), "
        f"stalls median {statistics.median(stalls) * 1e3:.1f} ms "
        f"(max {max(stalls) * 1e3:.1f}); CPU share {data['share']:.4f} "
        f"(the quota's {1 / slowdown:.4f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
