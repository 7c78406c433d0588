"""tools/testbed.py: the commands it builds, its cleanup, and one real run through a tc-shaped
loopback (skipped where namespaces, tc or cgroups are not permitted)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest
import testbed

from flcompile import cli, models
from flcompile.errors import BadInputError

PLAN_RATE = 0.5  # MB/s: the 2x2 plan of SqueezeNet (width 0.25, 96²) sends 11.6 kB paths
SMALL_RATE = 0.2  # MB/s: the link, where such a path takes 58 ms


def test_tc_shapes_the_loopback_with_a_token_bucket_at_the_rate() -> None:
    (cmd,) = testbed.tc_commands(testbed.Link(1.8))
    assert cmd[:7] == ["tc", "qdisc", "add", "dev", "lo", "root", "handle"]
    assert cmd[cmd.index("tbf") + 1 : cmd.index("tbf") + 3] == ["rate", "1800000bps"]
    burst = int(cmd[cmd.index("burst") + 1])
    assert 1514 < burst <= 8000  # above one packet at MTU 1500, far below a message


def test_a_delay_puts_netem_at_the_root_and_the_bucket_below_it() -> None:
    netem, tbf = testbed.tc_commands(testbed.Link(1.1, delay_ms=5))
    assert netem[netem.index("netem") :][:3] == ["netem", "delay", "5ms"]
    assert "root" in netem and "tbf" not in netem
    assert tbf[tbf.index("parent") + 1] == "1:1" and "tbf" in tbf


def test_the_namespace_is_made_then_its_loopback_brought_up_then_shaped() -> None:
    steps = testbed.namespace_setup("ns1", testbed.Link(3.0))
    assert steps[0] == ["ip", "netns", "add", "ns1"]
    assert steps[1][:4] == ["ip", "netns", "exec", "ns1"] and steps[1][-1] == "up"
    assert steps[2][:5] == ["ip", "netns", "exec", "ns1", "tc"]


def test_the_quota_and_period_make_the_device_k_times_slower() -> None:
    # The shortest period whose quota is the kernel's 1 ms floor: the slowdown is spread
    # over the millisecond-scale stages instead of a 100 ms stall.
    assert testbed.cpu_limit(testbed.TABLE_I_SLOWDOWN) == (1_000, round(1_000 * 4.32e9 / 2.23e8))
    assert testbed.cpu_limit(2.0) == (1_000, 2_000)
    assert testbed.cpu_limit(1.0) == (1_000, 1_000)
    # Beyond 100x the default 100 ms period caps it, and the floor caps the slowdown.
    assert testbed.cpu_limit(1e6) == (testbed.MIN_QUOTA_US, testbed.CPU_PERIOD_US)
    for k in (1.5, 4.0, 19.4, 77.7):
        quota, period = testbed.cpu_limit(k)
        assert period / quota == pytest.approx(k, rel=1e-3)
    with pytest.raises(BadInputError, match="below 1"):
        testbed.cpu_limit(0.5)


def test_the_cpu_controller_is_found_on_cgroup_v1_and_v2_or_reported_missing(tmp_path) -> None:
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert testbed.cpu_controller(v1) == (v1 / "cpu", 1)
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("cpuset cpu io memory\n")
    assert testbed.cpu_controller(v2) == (v2, 2)
    (v2 / "cgroup.controllers").write_text("cpuset io memory\n")
    assert testbed.cpu_controller(v2) is None


@pytest.mark.parametrize("version", [1, 2])
def test_the_cgroup_gets_the_quota_in_its_versions_file(tmp_path, version) -> None:
    if version == 1:
        (tmp_path / "cpu").mkdir()
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    else:
        (tmp_path / "cgroup.controllers").write_text("cpu\n")
        (tmp_path / "cgroup.subtree_control").write_text("cpu memory\n")
    group = testbed.make_cpu_group("g", 4.0, root=tmp_path)
    assert group.version == version
    if version == 1:
        assert (group.path / "cpu.cfs_quota_us").read_text() == "1000"
        assert (group.path / "cpu.cfs_period_us").read_text() == "4000"
    else:
        assert (group.path / "cpu.max").read_text() == "1000 4000"


def test_a_hybrid_host_throttles_through_its_v1_cpu_hierarchy(tmp_path) -> None:
    # v1 controllers beside a v2 mount at unified/ (this CI machine's layout): v1 is used.
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("")
    assert testbed.cpu_controller(tmp_path) == (tmp_path / "cpu", 1)


def test_on_v2_the_cpu_controller_is_handed_down_before_the_group_is_made(tmp_path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory\n")
    (tmp_path / "cgroup.subtree_control").write_text("memory\n")
    group = testbed.make_cpu_group("g", 19.4, root=tmp_path)
    # cgroupfs takes "+cpu" as "enable cpu for the children"; a plain file just holds it.
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu"
    assert group == testbed.CpuGroup(tmp_path / "g", 2)
    assert (group.path / "cpu.max").read_text() == "1000 19400"


def test_not_root_is_reported_in_one_line(monkeypatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert testbed.not_permitted() == "not root"


def test_no_cpu_controller_is_reported(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(testbed.shutil, "which", lambda tool: f"/usr/sbin/{tool}")
    assert "no cpu cgroup controller" in testbed.not_permitted(tmp_path)


def test_the_device_joins_the_cgroup_before_entering_the_namespace(tmp_path) -> None:
    group = testbed.CpuGroup(tmp_path / "g", 1)
    prefix = testbed.confinement("ns1", group)
    argv = testbed.device_command(
        Path("p.flc"), "127.0.0.1:9", frames=3, report=Path("r.json"), prefix=prefix
    )
    # `ip netns exec` remounts /sys, so the cgroup is joined first, by the process itself.
    assert argv[:2] == ["sh", "-c"] and argv[3] == str(tmp_path / "g" / "cgroup.procs")
    assert argv[4:8] == ["ip", "netns", "exec", "ns1"]
    run = argv[8:]
    assert run[:4] == [sys.executable, "-m", "flcompile", "run"]
    assert run[run.index("--frames") + 1] == "3" and "--link-rate" not in run
    # Each frame starts on an idle device: the cgroup has paid back what the last overspent.
    assert run[run.index("--frame-gap") + 1] == f"{testbed.FRAME_GAP_S:g}"


def test_with_compute_throttle_only_the_stages_thread_joins_the_cgroup(tmp_path) -> None:
    group = testbed.CpuGroup(tmp_path / "g", 1)
    prefix = testbed.device_confinement("ns1", group, "compute")
    # The process stays unthrottled; nsenter (not `ip netns exec`) keeps /sys in view.
    assert prefix == ["nsenter", "--net=/run/netns/ns1"]
    argv = testbed.device_command(
        Path("p.flc"),
        "127.0.0.1:9",
        frames=1,
        report=Path("r.json"),
        prefix=prefix,
        compute_cgroup=group.path,
    )
    assert argv[argv.index("--compute-cgroup") + 1] == str(group.path)
    assert testbed.device_confinement("ns1", group, "process") == testbed.confinement("ns1", group)
    assert testbed.device_confinement(None, None, "compute") == []


def test_on_cgroup_v2_the_compute_throttle_falls_back_to_the_process(tmp_path, capsys) -> None:
    assert testbed.throttle_for("compute", testbed.CpuGroup(tmp_path, 1)) == "compute"
    assert testbed.throttle_for("compute", testbed.CpuGroup(tmp_path, 2)) == "process"
    assert capsys.readouterr().out.startswith("testbed: cgroup v2: throttling the whole")
    with pytest.raises(BadInputError, match="--throttle"):
        testbed.throttle_for("device", None)


def test_the_fallback_paces_in_the_application() -> None:
    argv = testbed.device_command(
        Path("p.flc"), "127.0.0.1:9", frames=1, report=Path("r.json"), link_rate=1.8
    )
    assert argv[0] == sys.executable and argv[argv.index("--link-rate") + 1] == "1.8"
    assert testbed.confinement(None, None) == []
    assert testbed.confinement("ns1", None) == ["ip", "netns", "exec", "ns1"]


def test_a_refused_kernel_step_removes_what_was_made(monkeypatch) -> None:
    removed = []
    monkeypatch.setattr(testbed, "namespace_setup", lambda ns, link: [["true"], ["false"]])
    monkeypatch.setattr(testbed, "remove_namespace", removed.append)
    with pytest.raises(BadInputError, match="`false` failed"), contextlib.ExitStack() as stack:
        testbed.kernel_side(stack, testbed.Link(1.0), 2.0)
    assert len(removed) == 1 and removed[0].startswith("flc-tb-")


def test_sigterm_becomes_an_interrupt_and_the_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), testbed.terminated_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the signal interrupts this
    assert signal.getsignal(signal.SIGTERM) == before


def test_link_times_start_each_path_when_the_previous_one_arrived() -> None:
    events = [
        {"kind": "send", "path": 0, "start": 0.0, "bytes": 200_000},
        {"kind": "send", "path": 1, "start": 0.05, "bytes": 100_000},
        {"kind": "edge", "path": 0, "received": 0.11},
        {"kind": "edge", "path": 1, "received": 0.16},
    ]
    report = {"frames": [{"frame": 0, "ok": True, "events": events}]}
    rows = testbed.link_times(report, 2.0)
    assert [r["path"] for r in rows] == [0, 1]
    assert rows[0]["measured_s"] == pytest.approx(0.11) and rows[0]["expected_s"] == 0.1
    assert rows[1]["measured_s"] == pytest.approx(0.05) and rows[1]["expected_s"] == 0.05


# --- a real run --------------------------------------------------------------------------------


def _kernel_or_skip() -> None:
    reason = testbed.not_permitted()
    if reason is not None:
        pytest.skip(f"the testbed needs namespaces, tc and a cpu cgroup: {reason}")
    probe = testbed.namespace_name()
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"`ip netns add` is not permitted here: {made.stderr.strip()}")
    subprocess.run(["ip", "netns", "del", probe], check=True)


def _ours(pid: int) -> tuple[set[str], set[str]]:
    """The namespaces and cgroups that the testbed running as process `pid` made.

    Only its own: another testbed on the machine (a benchmark, another test run) makes and
    removes its own at any time.
    """
    prefix = f"flc-tb-{pid}-"
    found = testbed.cpu_controller()
    groups = {p.name for p in found[0].iterdir()} if found else set()
    return (
        {n for n in testbed.namespaces() if n.startswith(prefix)},
        {g for g in groups if g.startswith(prefix)},
    )


DELAY_MS = 40.0


def _connect_ms(ns: str) -> float:
    """The median time of a TCP connect to a listener on 127.0.0.1, inside namespace `ns`."""
    code = (
        "import socket, statistics, time\n"
        "server = socket.socket(); server.bind(('127.0.0.1', 0)); server.listen(16)\n"
        "times = []\n"
        "for _ in range(7):\n"
        "    c = socket.socket(); t = time.perf_counter()\n"
        "    c.connect(server.getsockname()); times.append(time.perf_counter() - t); c.close()\n"
        "print(statistics.median(times) * 1e3)\n"
    )
    argv = ["ip", "netns", "exec", ns, sys.executable, "-c", code]
    return float(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


def test_the_delay_holds_every_packet_on_the_namespaces_loopback() -> None:
    if os.geteuid() != 0 or not all(map(testbed.shutil.which, ("ip", "tc"))):
        pytest.skip("needs root, `ip` and `tc` to make a network namespace and shape it")
    ns = testbed.namespace_name()
    steps = testbed.namespace_setup(ns, testbed.Link(100.0, delay_ms=DELAY_MS))
    try:
        made = subprocess.run(steps[0], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"`ip netns add` is not permitted here: {made.stderr.strip()}")
        subprocess.run(steps[1], check=True)  # lo up
        unshaped = _connect_ms(ns)
        for step in steps[2:]:
            done = subprocess.run(step, capture_output=True, text=True)
            if "unknown" in done.stderr:  # e.g. "Specified qdisc kind is unknown."
                pytest.skip(f"this kernel has no netem qdisc (sch_netem): {done.stderr.strip()}")
            assert done.returncode == 0, done.stderr
        delayed = _connect_ms(ns)
    finally:
        testbed.remove_namespace(ns)
    # A connect waits for the SYN and the SYN-ACK, each held DELAY_MS on lo's way out.
    assert unshaped < DELAY_MS / 4
    assert 2 * DELAY_MS * 0.95 <= delayed < 2 * DELAY_MS + 200
    assert ns not in testbed.namespaces()


def test_a_delay_the_fallback_cannot_emulate_is_said() -> None:
    line = testbed.fallback_line("not root", testbed.Link(1.8, delay_ms=5))
    assert line.endswith("device unthrottled, and no 5 ms delay")
    assert "delay" not in testbed.fallback_line("not root", testbed.Link(1.8))


@pytest.fixture(scope="module")
def any_small_plan(tmp_path_factory) -> Path:
    pytest.importorskip("pytriton", reason="the serve extra is not installed")
    pytest.importorskip("tritonclient.grpc", reason="the device extra is not installed")
    tmp = tmp_path_factory.mktemp("testbed")
    onnx.save(models.build("squeezenet", width=0.25, size=96), str(tmp / "sq.onnx"))
    out = tmp / "sq.flc"
    argv = [str(tmp / "sq.onnx"), "--rate", str(PLAN_RATE), "--grid", "2x2", "--emit-stages"]
    assert cli.main([*argv, "--runs", "0", "-q", "-o", str(out)]) == 0
    return out


@pytest.fixture
def small_plan(any_small_plan) -> Path:
    _kernel_or_skip()
    return any_small_plan


def test_without_the_kernel_it_says_so_and_paces_in_the_application(
    any_small_plan, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(testbed, "not_permitted", lambda: "not root")
    link = testbed.Link(SMALL_RATE)
    summary = testbed.testbed(any_small_plan, tmp_path / "res", link, frames=2)
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("testbed:")]
    assert line == testbed.fallback_line("not root", link) and "--link-rate 0.2" in line
    assert summary["mode"] == "application pacing (not root)" and summary["slowdown"] == 1.0
    report = json.loads((tmp_path / "res" / "run.json").read_text())
    assert report["link_rate_MBps"] == SMALL_RATE  # the token bucket paced the sends
    assert 0.8 < summary["link_ratio_median"] < 1.5


# The default throttle (compute) runs live in the default test run, the other one in the
# slow step; the compute throttle's own move is tested live below (one thread in, one out).
@pytest.mark.parametrize("throttle", ["compute", pytest.param("process", marks=pytest.mark.slow)])
def test_a_real_run_takes_the_tc_rate_and_leaves_nothing_behind(
    small_plan, tmp_path, throttle: str
) -> None:
    link = testbed.Link(SMALL_RATE)
    summary = testbed.testbed(
        small_plan, tmp_path / "res", link, frames=3, slowdown=4.0, throttle=throttle
    )
    assert summary["mode"] == "kernel" and summary["median_latency_s"] > 0
    assert summary["throttle"] == throttle
    big = [r for r in summary["link"] if r["bytes"] > 10_000]
    assert len(big) >= 3 * 2
    # Unshaped, loopback moves 11.6 kB in well under a millisecond; shaped, no path beats
    # B / rate (less the bucket's first burst). A single path may take longer than the link
    # alone: the throttled device's sender waits out its cgroup's quota period (3 ms at
    # slowdown 4), and a loaded machine delays the edge's handler; the median is the
    # link's own time (gRPC's and TCP's headers included).
    for row in big:
        assert row["measured_s"] / row["expected_s"] > 0.7, row
    assert 0.8 < summary["link_ratio_median"] < 1.5
    assert (tmp_path / "res" / "run.json").exists() and summary["leftover_processes"] == []
    assert _ours(os.getpid()) == (set(), set())


@pytest.mark.slow
def test_sigterm_mid_run_tears_everything_down(small_plan, tmp_path) -> None:
    script = Path(testbed.__file__)
    argv = [sys.executable, str(script), str(small_plan), "--rate", "0.2", "--frames", "1000"]
    tool = subprocess.Popen([*argv, "-o", str(tmp_path / "res")], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(_ours(tool.pid)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert any(_ours(tool.pid)), "the testbed never made its namespace"
    time.sleep(15)  # the server and the device are up
    tool.send_signal(signal.SIGTERM)
    _, err = tool.communicate(timeout=120)
    assert tool.returncode == 130 and "interrupted" in err
    assert _ours(tool.pid) == (set(), set())


def test_a_throttled_command_runs_in_its_own_cgroup_which_is_removed_after() -> None:
    if testbed.not_permitted() is not None:
        pytest.skip(f"needs a cpu cgroup: {testbed.not_permitted()}")
    code = "print(open('/proc/self/cgroup').read())"
    text = testbed.run_throttled([sys.executable, "-c", code], 4.0)
    # v1 "N:cpu:/flc-tb-…" (or cpu,cpuacct), v2 "0::/flc-tb-…"; other controllers stay put.
    inside = [x for x in text.splitlines() if f":/flc-tb-{os.getpid()}-" in x]
    assert inside and all(":cpu" in x or x.startswith("0::") for x in inside), text
    assert _ours(os.getpid()) == (set(), set())


def test_the_compute_throttle_moves_only_the_calling_thread(tmp_path) -> None:
    if testbed.not_permitted() is not None:
        pytest.skip(f"needs a cpu cgroup: {testbed.not_permitted()}")
    if testbed.cpu_controller()[1] != 1:
        pytest.skip("a thread alone moves into a cgroup on v1 only")
    code = (
        "import sys, threading\n"
        "from flcompile.device.compute_cgroup import join_compute_cgroup\n"
        "other = threading.Thread(target=threading.Event().wait, daemon=True); other.start()\n"
        "join_compute_cgroup(sys.argv[1])\n"
        "read = lambda t: open(f'/proc/self/task/{t}/cgroup').read()\n"
        "print(read(threading.get_native_id())); print('OTHER'); print(read(other.native_id))\n"
    )
    with contextlib.ExitStack() as stack:
        group = testbed.make_cpu_group(testbed.namespace_name(), 4.0)
        stack.callback(testbed.remove_cpu_group, group)
        done = subprocess.run(
            [sys.executable, "-c", code, str(group.path)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    mine, other = done.stdout.split("OTHER")
    name = f":/{group.path.name}"
    assert any(":cpu" in x and x.endswith(name) for x in mine.splitlines()), mine
    assert not any(x.endswith(name) for x in other.splitlines()), other
    assert _ours(os.getpid()) == (set(), set())


def test_the_link_probe_through_the_shaped_namespace_measures_the_tc_rate(small_plan, tmp_path):
    link = testbed.Link(SMALL_RATE)
    options = ["--sizes", "1", "16", "48", "--rounds", "3"]
    profile = testbed.probe_link(link, tmp_path / "link.json", slowdown=4.0, probe_options=options)
    assert profile["kind"] == "link-profile" and profile["paced_MBps"] is None  # tc, not paced
    # Unshaped, loopback is hundreds of MB/s (tests/flcompile/deploy/test_link_probe.py).
    assert 0.7 * SMALL_RATE < profile["link"]["rate_MBps"] < 1.3 * SMALL_RATE
    assert _ours(os.getpid()) == (set(), set())


@pytest.mark.slow  # the fallback's live run is tested in the default run (above)
def test_without_the_kernel_the_link_probe_paces_in_the_application(
    any_small_plan, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(testbed, "not_permitted", lambda: "not root")
    options = ["--sizes", "1", "16", "48", "--rounds", "3"]
    link = testbed.Link(SMALL_RATE)
    profile = testbed.probe_link(link, tmp_path / "l.json", probe_options=options)
    assert "falling back to application pacing" in capsys.readouterr().out
    assert profile["paced_MBps"] == SMALL_RATE
    assert 0.7 * SMALL_RATE < profile["link"]["rate_MBps"] < 1.3 * SMALL_RATE
