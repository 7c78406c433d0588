"""An emulated testbed: a compiled plan's edge and device on one machine, over a shaped link.

The experiment gets its own network namespace, whose loopback is shaped with `tc` (a token
bucket at --rate MB/s, 1 MB = 1e6 bytes, and an optional netem delay per packet); inside it
`flcompile serve OUT` listens on 127.0.0.1 and `flcompile run OUT` runs the device side with
a CPU cgroup whose quota makes it --slowdown times slower (cgroup v1 `cpu.cfs_quota_us`, v2
`cpu.max`; Table I's device is 4.32e9 / 2.23e8 ≈ 19.4× slower than its edge).
`--throttle compute` (the default) puts only the thread that runs the device stages in it
(`flcompile run --compute-cgroup`): the quota then stands for the device's FLOP rate
alone, and its network stack runs at this machine's speed, as a radio does beside a slow
CPU. `--throttle process` puts the whole device process in the cgroup, network stack
included: gRPC's work while a message drains then shares the quota with the stages, and
the link probe prices that work per message. On cgroup v2 (where one thread needs a
threaded cgroup) `compute` throttles the process, and says so. Traffic never
leaves that loopback. The device runs unpaced (the kernel is the link); the prediction is the
plan re-simulated at --rate. Everything it made (processes by pid, the cgroup, the namespace)
is removed in `finally`, on SIGINT and on SIGTERM. For tools/bench_runtime.py it also
measures the emulated link as the device sees it (`probe_link`: `flcompile profile
--server` as the device's network stack runs, in the device's cgroup only with `--throttle
process`, against a plan-less server in the namespace) and runs
a command in a throttled cgroup alone (`run_throttled`: the device's `flcompile profile`).

Where the machine does not allow it (not root, no `ip` or `tc`, no cpu cgroup controller)
it says so in one line and falls back to application pacing (`flcompile run --link-rate`),
with an unthrottled device.

Rerun:
    flcompile squeezenet --rate 1.8 --emit-stages -o sq.flc
    python tools/testbed.py sq.flc --rate 1.8 --frames 10 -o /tmp/testbed
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from _common import ToolParser, count, positive_float, run_main

from flcompile.costs import BYTES_PER_MB
from flcompile.deploy.plan_index import load_index
from flcompile.device.prediction import predicted
from flcompile.errors import BadInputError
from flcompile.serve import launcher

#: Table I: the edge's FLOP/s over the device's.
TABLE_I_SLOWDOWN = 4.32e9 / 2.23e8
#: The longest cfs period used (the kernel's default), and the kernel's smallest quota.
CPU_PERIOD_US = 100_000
MIN_QUOTA_US = 1_000
CGROUP_ROOT = Path("/sys/fs/cgroup")
HOST = "127.0.0.1"
REPORT = "run.json"
#: The device idles this long before each frame after the first (`flcompile run
#: --frame-gap`): a cgroup whose quota the previous frame overspent has paid it back, so
#: each frame starts on an idle device, as the plan's prediction assumes.
FRAME_GAP_S = 0.1
#: What the quota throttles: the thread that runs the device stages, or the whole process.
THROTTLES = ("compute", "process")
DEFAULT_THROTTLE = "compute"


@dataclass(frozen=True)
class Link:
    """The emulated link: a token bucket at `rate_MBps`, and `delay_ms` per packet."""

    rate_MBps: float
    delay_ms: float = 0.0


@dataclass(frozen=True)
class CpuGroup:
    """A cpu cgroup: its directory, the file that takes pids, and the cgroup version."""

    path: Path
    version: int

    @property
    def procs(self) -> Path:
        """The file a pid is written to, to move that process in."""
        return self.path / "cgroup.procs"


def namespace_name() -> str:
    """A network namespace name no other run uses."""
    return f"flc-tb-{os.getpid()}-{secrets.token_hex(3)}"


def tc_commands(link: Link) -> list[list[str]]:
    """The `tc` commands (run inside the namespace) that shape its loopback.

    A token bucket whose burst is a few packets, so that a message of B bytes takes about
    B / rate; with a delay, netem at the root delays every packet and the bucket is its child.
    """
    rate = int(link.rate_MBps * BYTES_PER_MB)
    burst = max(3000, rate // 250)
    limit = max(rate, 200_000)  # a second of queue: TCP's window fills it, nothing is dropped
    tbf = ["tbf", "rate", f"{rate}bps", "burst", str(burst), "limit", str(limit)]
    if link.delay_ms <= 0:
        return [["tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", *tbf]]
    netem = ["netem", "delay", f"{link.delay_ms:g}ms", "limit", "100000"]
    return [
        ["tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", *netem],
        ["tc", "qdisc", "add", "dev", "lo", "parent", "1:1", "handle", "10:", *tbf],
    ]


def namespace_setup(ns: str, link: Link) -> list[list[str]]:
    """Create the namespace, bring its loopback up at a 1500-byte MTU, and shape it.

    The MTU keeps each packet far below the bucket's burst (loopback's own is 64 KiB).
    """
    inside = ["ip", "netns", "exec", ns]
    return [
        ["ip", "netns", "add", ns],
        [*inside, "ip", "link", "set", "lo", "mtu", "1500", "up"],
        *([*inside, *cmd] for cmd in tc_commands(link)),
    ]


def cpu_limit(slowdown: float) -> tuple[int, int]:
    """The CPU quota and period (µs) that make a single-threaded process `slowdown` times slower.

    The period is the shortest whose quota is still the kernel's 1 ms floor: a process runs
    at full speed until its quota is spent, then waits for the next period, so a short
    period spreads the slowdown evenly over a millisecond-scale stage (at the default
    100 ms period and 19.4×, a stage ran 5 ms at full speed, then stalled 95 ms, and the
    device's sender thread stalled with it).

    Raises:
        BadInputError: `slowdown` is below 1.
    """
    if slowdown < 1:
        raise BadInputError(f"--slowdown {slowdown:g} is below 1", hint="give K >= 1")
    period = min(CPU_PERIOD_US, max(MIN_QUOTA_US, round(MIN_QUOTA_US * slowdown)))
    return max(MIN_QUOTA_US, round(period / slowdown)), period


def cpu_controller(root: Path = CGROUP_ROOT) -> tuple[Path, int] | None:
    """Where cpu cgroups are made and the cgroup version, or None if there is no cpu controller."""
    if (root / "cpu" / "cpu.cfs_quota_us").exists():
        return root / "cpu", 1
    controllers = root / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return root, 2
    return None


def not_permitted(root: Path = CGROUP_ROOT) -> str | None:
    """Why the testbed cannot use the kernel here (None: it can)."""
    if os.geteuid() != 0:
        return "not root"
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        return f"no `{missing[0]}` command"
    if cpu_controller(root) is None:
        return f"no cpu cgroup controller under {root}"
    return None


def make_cpu_group(name: str, slowdown: float, root: Path = CGROUP_ROOT) -> CpuGroup:
    """Create a cpu cgroup with the quota for `slowdown` (v1 cfs quota, v2 cpu.max).

    On v2 a child has `cpu.max` only where its parent hands the cpu controller down
    (`cgroup.subtree_control`); it is enabled there first if it is not.
    """
    found = cpu_controller(root)
    if found is None:
        raise BadInputError(f"no cpu cgroup controller under {root}")
    base, version = found
    subtree = base / "cgroup.subtree_control"
    if version == 2 and "cpu" not in subtree.read_text().split():
        subtree.write_text("+cpu")
    path = base / name
    path.mkdir()
    quota, period = cpu_limit(slowdown)
    if version == 1:
        (path / "cpu.cfs_period_us").write_text(str(period))
        (path / "cpu.cfs_quota_us").write_text(str(quota))
    else:
        (path / "cpu.max").write_text(f"{quota} {period}")
    return CpuGroup(path, version)


def remove_cpu_group(group: CpuGroup) -> None:
    """Kill whatever still runs in the cgroup (by pid) and remove it."""
    if not group.path.exists():
        return
    for _ in range(50):
        pids = [int(p) for p in group.procs.read_text().split()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    group.path.rmdir()


def remove_namespace(ns: str) -> None:
    """Kill the processes left in the namespace (by pid) and delete it."""
    listed = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    for pid in listed.stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def namespaces() -> list[str]:
    """The network namespaces that exist now."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]


def confinement(ns: str | None, group: CpuGroup | None) -> list[str]:
    """The command prefix that puts a process in the cgroup, then in the namespace.

    The process joins the cgroup itself (a shell writes its pid, then execs), so it is
    throttled from its first instruction; that comes first because `ip netns exec`
    remounts /sys, hiding the cgroups.
    """
    prefix = [] if group is None else ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group.procs)]
    return prefix + ([] if ns is None else ["ip", "netns", "exec", ns])


def throttle_for(throttle: str, group: CpuGroup | None) -> str:
    """The throttle the testbed can apply: `compute` needs cgroup v1, where a thread id
    alone moves into a cgroup; on v2 it throttles the process, after saying so in one line."""
    if throttle not in THROTTLES:
        raise BadInputError(f"--throttle {throttle}: not one of {', '.join(THROTTLES)}")
    if throttle == "compute" and group is not None and group.version != 1:
        print("testbed: cgroup v2: throttling the whole device process (--throttle process)")
        return "process"
    return throttle


def stage_cgroup(group: CpuGroup | None, throttle: str) -> Path | None:
    """The cgroup the device's stage thread joins by itself (`flcompile run
    --compute-cgroup`): the device's with `compute`, else None (the whole process is in it)."""
    return group.path if group is not None and throttle == "compute" else None


def device_confinement(ns: str | None, group: CpuGroup | None, throttle: str) -> list[str]:
    """The device's command prefix: its whole process in the cgroup (`confinement`), or with
    `compute` only the namespace, entered with nsenter, which, unlike `ip netns exec`, keeps
    /sys (and the cgroup `flcompile run --compute-cgroup` names) in view."""
    if stage_cgroup(group, throttle) is None:
        return confinement(ns, group)
    return [] if ns is None else ["nsenter", f"--net=/run/netns/{ns}"]


def device_command(
    out: Path,
    address: str,
    *,
    frames: int,
    report: Path,
    prefix: Sequence[str] = (),
    link_rate: float | None = None,
    frame_gap: float = FRAME_GAP_S,
    compute_cgroup: Path | None = None,
) -> list[str]:
    """`flcompile run` against `address`, under `prefix` (see `device_confinement`), its
    stages' thread in `compute_cgroup` if given."""
    run = [sys.executable, "-m", "flcompile", "run", str(out), "--server", address]
    run += ["--frames", str(frames), "--report", str(report), "--frame-gap", f"{frame_gap:g}"]
    if link_rate is not None:
        run += ["--link-rate", f"{link_rate:g}"]
    if compute_cgroup is not None:
        run += ["--compute-cgroup", str(compute_cgroup)]
    return [*prefix, *run]


@contextlib.contextmanager
def terminated_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt (as SIGINT does), so every `finally` runs."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_checked(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise BadInputError(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")


def _run_device(argv: list[str], timeout_s: float) -> tuple[int, str]:
    device = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        text, _ = device.communicate(timeout=timeout_s)
        return device.returncode, text
    except subprocess.TimeoutExpired:
        raise BadInputError(f"flcompile run did not finish within {timeout_s:g} s") from None
    finally:
        if device.poll() is None:
            device.kill()
            device.wait(timeout=10)


def link_times(report: dict, rate_MBps: float) -> list[dict]:
    """Per path of every answered frame: its bytes, the time it took to reach the edge's
    handler (from when the sender took it, or when the previous path arrived if later),
    and bytes / rate."""
    rows = []
    for frame in report["frames"]:
        if not frame["ok"]:
            continue
        sends = {e["path"]: e for e in frame["events"] if e["kind"] == "send"}
        edges = {e["path"]: e for e in frame["events"] if e["kind"] == "edge"}
        previous = None
        for path, send in sorted(sends.items(), key=lambda kv: kv[1]["start"]):
            if path not in edges:
                continue
            begin = send["start"] if previous is None else max(send["start"], previous)
            arrived = edges[path]["received"]
            rows.append(
                {
                    "frame": frame["frame"],
                    "path": path,
                    "bytes": send["bytes"],
                    "measured_s": arrived - begin,
                    "expected_s": send["bytes"] / (rate_MBps * BYTES_PER_MB),
                }
            )
            previous = arrived
    return rows


def fallback_line(reason: str, link: Link) -> str:
    """The one line that says the kernel cannot be used here, and what is done instead."""
    lost = f", and no {link.delay_ms:g} ms delay" if link.delay_ms > 0 else ""
    return (
        f"testbed: {reason}: no namespace, tc or cgroup here; falling back to application "
        f"pacing (flcompile run --link-rate {link.rate_MBps:g}), device unthrottled{lost}"
    )


def kernel_side(stack: contextlib.ExitStack, link: Link, slowdown: float) -> tuple[str, CpuGroup]:
    """Make the shaped namespace and the cgroup, removed when `stack` closes.

    Raises:
        BadInputError, OSError: the kernel refused a step; what was made is removed.
    """
    with contextlib.ExitStack() as made:
        ns = namespace_name()
        made.callback(remove_namespace, ns)
        for argv in namespace_setup(ns, link):
            _run_checked(argv)
        group = make_cpu_group(ns, slowdown)
        made.callback(remove_cpu_group, group)
        stack.push(made.pop_all())
    return ns, group


def confined(
    stack: contextlib.ExitStack, link: Link, slowdown: float
) -> tuple[str | None, CpuGroup | None, str | None]:
    """The shaped namespace and the device's cgroup, or why not (said in one line).

    Returns:
        (namespace, cgroup, None), removed when `stack` closes; or (None, None, reason)
        where the kernel cannot be used, after printing `fallback_line`.
    """
    reason = not_permitted()
    if reason is None:
        try:
            return (*kernel_side(stack, link, slowdown), None)
        except (BadInputError, OSError) as e:
            reason = str(e).splitlines()[0]
    print(fallback_line(reason, link))
    return None, None, reason


def _server(stack: contextlib.ExitStack, outs: list[Path], ns: str | None):
    """`flcompile serve OUTS` on 127.0.0.1 in the namespace, stopped when `stack` closes."""
    port = launcher.free_port(HOST)  # the namespace's loopback is empty: any port is free
    server = launcher.start(outs, host=HOST, port=port, prefix=confinement(ns, None))
    stack.callback(server.stop)
    return server


def probe_link(
    link: Link,
    result: Path,
    *,
    slowdown: float = TABLE_I_SLOWDOWN,
    probe_options: Sequence[str] = (),
    timeout_s: float = 300.0,
    throttle: str = DEFAULT_THROTTLE,
) -> dict:
    """Measure the emulated link as the device sees it: `flcompile profile --server`.

    An edge server with no plan (the probe model only) runs in the shaped namespace, and
    the probe runs as the device's network stack would: unthrottled with `compute`, in the
    device's cgroup with `process`; without the kernel, the probe paces in the application
    at the link's rate, as the device then does.

    Args:
        link: the link to emulate.
        result: the link profile to write.
        slowdown: the device's cgroup quota, as in `testbed`.
        probe_options: more `flcompile profile --server` options (e.g. --rounds).
        timeout_s: how long the probe may take.
        throttle: what the device's quota throttles (`THROTTLES`).

    Returns:
        The link profile written.

    Raises:
        BadInputError: the probe failed.
    """
    result.parent.mkdir(parents=True, exist_ok=True)
    with terminated_as_interrupt(), contextlib.ExitStack() as stack:
        ns, group, reason = confined(stack, link, slowdown)
        server = _server(stack, [], ns)
        argv = [sys.executable, "-m", "flcompile", "profile", "--server", server.address]
        argv += ["-o", str(result), *probe_options]
        if reason is not None:
            argv += ["--link-rate", f"{link.rate_MBps:g}"]
        probed = None if stage_cgroup(group, throttle_for(throttle, group)) else group
        code, text = _run_device([*confinement(ns, probed), *argv], timeout_s)
        if code != 0:
            raise BadInputError(f"the link probe exited {code}: {text.strip()[-500:]}")
    return json.loads(result.read_text())


def run_throttled(argv: Sequence[str], slowdown: float, timeout_s: float = 1800.0) -> str:
    """Run `argv` in a cpu cgroup that makes it `slowdown` times slower (no namespace).

    For measuring the device's profile on the device the testbed emulates. Without the
    kernel's cgroups it runs unthrottled, after saying so in one line.

    Returns:
        What it printed.

    Raises:
        BadInputError: it failed.
    """
    with terminated_as_interrupt(), contextlib.ExitStack() as stack:
        reason = not_permitted()
        group = None
        if reason is None:
            try:
                group = make_cpu_group(namespace_name(), slowdown)
                stack.callback(remove_cpu_group, group)
            except OSError as e:
                reason = str(e).splitlines()[0]
        if reason is not None:
            print(f"testbed: {reason}: no cpu cgroup here; running unthrottled")
        code, text = _run_device([*confinement(None, group), *argv], timeout_s)
    if code != 0:
        raise BadInputError(f"`{' '.join(argv[2:5])}` exited {code}: {text.strip()[-500:]}")
    return text


def _summarise(report: dict, plan: dict, link: Link, plan_link: bool = False) -> dict:
    rows = link_times(report, link.rate_MBps)
    prediction = predicted(plan, None if plan_link else link.rate_MBps)[0].finish
    ratios = [r["measured_s"] / r["expected_s"] for r in rows]
    return {
        "rate_MBps": link.rate_MBps,
        "delay_ms": link.delay_ms,
        "median_latency_s": report["median_latency_s"],
        "predicted_s": prediction,
        "ratio": report["median_latency_s"] / prediction,
        "link_ratio_median": statistics.median(ratios) if ratios else None,
        "link": rows,
    }


def testbed(
    out: Path,
    result_dir: Path,
    link: Link,
    *,
    frames: int = 5,
    slowdown: float = TABLE_I_SLOWDOWN,
    timeout_s: float = 900.0,
    plan_link: bool = False,
    throttle: str = DEFAULT_THROTTLE,
) -> dict:
    """Run the plan in OUT through the emulated link; returns the summary (also written).

    Args:
        out: a compiled plan's directory.
        result_dir: where run.json and testbed.json go (created).
        link: the link to emulate.
        frames: frames the device runs.
        slowdown: how many times slower the device is than this machine.
        timeout_s: how long the device may take, start-up included.
        plan_link: predict with the plan's own link (compiled with a link profile measured
            on this emulated link, `probe_link`) instead of re-simulating at link's rate.
        throttle: what the device's quota throttles (`THROTTLES`).

    Returns:
        The summary: measured median, prediction, link check and how the run was made.

    Raises:
        BadInputError: the plan cannot be loaded, or the device run failed.
    """
    index = load_index(out)
    result_dir.mkdir(parents=True, exist_ok=True)
    report_path = result_dir / REPORT
    with terminated_as_interrupt(), contextlib.ExitStack() as stack:
        ns, group, reason = confined(stack, link, slowdown)
        server = _server(stack, [out], ns)
        pacing = link.rate_MBps if reason is not None else None
        throttle = throttle_for(throttle, group)
        argv = device_command(
            out,
            server.address,
            frames=frames,
            report=report_path,
            prefix=device_confinement(ns, group, throttle),
            link_rate=pacing,
            compute_cgroup=stage_cgroup(group, throttle),
        )
        code, text = _run_device(argv, timeout_s)
        if code != 0:
            raise BadInputError(f"flcompile run exited {code}: {text.strip()[-500:]}")
    summary = {
        "out": str(out),
        "mode": "kernel" if reason is None else f"application pacing ({reason})",
        "slowdown": slowdown if reason is None else 1.0,
        "throttle": throttle if reason is None else None,
        "frames": frames,
        **_summarise(json.loads(report_path.read_text()), index.plan, link, plan_link),
        "leftover_processes": [p.pid for p in server.leftovers],
    }
    (result_dir / "testbed.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _parser() -> ToolParser:
    p = ToolParser(prog="testbed.py", description=__doc__.split("\n\n")[0])
    p.add_argument("out", metavar="OUT", help="a compiled plan's directory")
    p.add_argument("--rate", dest="rate", type=positive_float, required=True, help="MB/s")
    p.add_argument("--delay-ms", dest="delay_ms", type=float, default=0.0, help="netem delay")
    p.add_argument("--frames", dest="frames", type=count(1), default=5)
    p.add_argument(
        "--slowdown",
        dest="slowdown",
        type=positive_float,
        default=TABLE_I_SLOWDOWN,
        help=f"the device is K times slower (default Table I's {TABLE_I_SLOWDOWN:.1f})",
    )
    add_throttle_arg(p)
    p.add_argument("-o", dest="result", required=True, help="directory for run.json, testbed.json")
    return p


def add_throttle_arg(p: ToolParser) -> None:
    """`--throttle compute|process` (see the module's doc)."""
    p.add_argument(
        "--throttle",
        dest="throttle",
        choices=THROTTLES,
        default=DEFAULT_THROTTLE,
        help="what the device's CPU quota throttles: only the thread that runs its stages "
        "(default), or its whole process, network stack included",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the testbed CLI; returns the exit code."""
    args = _parser().parse_args(argv)

    def body() -> int:
        link = Link(args.rate, args.delay_ms)
        s = testbed(
            Path(args.out),
            Path(args.result),
            link,
            frames=args.frames,
            slowdown=args.slowdown,
            throttle=args.throttle,
        )
        link_ratio = s["link_ratio_median"]
        print(
            f"testbed ({s['mode']}): median {s['median_latency_s'] * 1e3:.2f} ms, predicted "
            f"{s['predicted_s'] * 1e3:.2f} ms at {s['rate_MBps']:g} MB/s, ratio {s['ratio']:.3f}; "
            f"link time / (bytes / rate): median "
            + ("n/a" if link_ratio is None else f"{link_ratio:.2f}")
            + f"; wrote {args.result}"
        )
        return 0

    return run_main("testbed.py", body)


if __name__ == "__main__":
    sys.exit(main())
