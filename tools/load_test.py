"""Load test: several devices at once against one `flcompile serve`, every output checked.

A zoo model (small variants with --width/--size) is compiled with --emit-stages, served by
`flcompile serve` on 127.0.0.1, and --devices device runners (threads of this process,
each with its own gRPC stream, client id and onnxruntime sessions) run --frames frames
each, one after another, as `flcompile run` does. Every frame has its own input (seed
10000·device + frame), and afterwards every answered frame's outputs are compared with the
original model on that input, as verification compares (docs/design.md §7): an answer
meant for another frame or device fails the comparison, so cross-talk cannot pass.

Reported: throughput (answered frames per second, all devices together), latency p50/p99
over every answered frame, failed frames, wrong outputs, and the serving process tree's
resident memory (flcompile serve, tritonserver and the stubs) when every device has done
--warmup frames and at the end. Targets: no wrong output, no failed frame, and memory
growth below 10 % from the warm-up to the end.

--restart-at N stops the server once every device has done N frames, and starts it again on
the same port while the devices go on: the frames caught by it fail with an error, none may
be answered wrongly, and frames must be answered again afterwards (the failed-frame and
memory targets are then not applied).

Rerun:
    python tools/load_test.py --model squeezenet --width 0.25 --size 96 --devices 4 \\
        --frames 200 -o /tmp/load_test
"""

from __future__ import annotations

import collections
import contextlib
import json
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from _common import (
    ToolParser,
    add_hidden_model_args,
    count,
    grid,
    model_source,
    positive_float,
    run_main,
    write_output,
)

from flcompile import cli, models
from flcompile.atomic_output import check_writable
from flcompile.deploy.plan_index import load_index
from flcompile.deploy.stage_models import device_models
from flcompile.device.client import EdgeClient
from flcompile.device.pacer import pacer_for
from flcompile.device.reference import Reference
from flcompile.device.report import latency_stats
from flcompile.device.runner import DeviceRunner, FrameRecord
from flcompile.errors import BadInputError
from flcompile.serve import launcher, processes
from flcompile.verify import make_feeds

RSS_GROWTH_TARGET = 0.10
BACKOFF_S = 0.5  # after a failed frame (the server is restarting), before the next


def seed_of(device: int, frame: int) -> int:
    """Each device's each frame gets its own input."""
    return 10_000 * device + frame


@dataclass
class Device:
    """One device thread's progress and frames."""

    index: int
    done: int = 0
    records: list[FrameRecord] = field(default_factory=list)
    error: str | None = None


def _parser() -> ToolParser:
    p = ToolParser(prog="load_test.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", dest="model", default="squeezenet", choices=models.NAMES)
    add_hidden_model_args(p)
    p.add_argument("--grid", dest="grid", type=grid, default=(2, 2), help="the plan's grid")
    p.add_argument(
        "--rate",
        dest="rate",
        type=positive_float,
        default=0.5,
        help="the rate the plan is compiled for (MB/s, default 0.5)",
    )
    p.add_argument("--devices", dest="devices", type=count(1), default=4)
    p.add_argument("--frames", dest="frames", type=count(1), default=200, help="frames per device")
    p.add_argument(
        "--warmup",
        dest="warmup",
        type=count(1),
        default=50,
        help="frames every device has done when memory is first measured",
    )
    p.add_argument("--instances", dest="instances", type=count(1), default=1)
    p.add_argument("--threads", dest="threads", type=count(1), default=1)
    p.add_argument(
        "--link-rate",
        dest="link_rate",
        type=positive_float,
        help="pace each device's sends at this rate (default: unpaced)",
    )
    p.add_argument(
        "--restart-at",
        dest="restart_at",
        type=count(1),
        metavar="N",
        help="restart the server once every device has done N frames",
    )
    p.add_argument("-o", "--output", dest="out", required=True, help="directory for load_test.json")
    return p


def _run_device(device: Device, index, stage_models, address: str, args) -> None:
    try:
        with contextlib.ExitStack() as stack:
            client = EdgeClient(address, index.name, timeout_s=60.0)
            stack.callback(client.close)
            pacer = pacer_for(args.link_rate)
            runner = DeviceRunner(
                index,
                stage_models,
                client,
                pacer,
                client_id=f"load-device-{device.index}",
                threads=args.threads,
                timeout_s=60.0,
                stack=stack,
            )
            for frame in range(args.frames):
                feeds = make_feeds(stage_models[0], seed=seed_of(device.index, frame))
                record = runner.run_frame(frame, feeds)
                device.records.append(record)
                device.done = frame + 1
                if not record.ok:
                    time.sleep(BACKOFF_S)
    except Exception as e:  # reported, and fails the run
        device.error = f"{type(e).__name__}: {e}"


def _answered_after_a_failure(records: list[FrameRecord]) -> int:
    """How many frames were answered after the device's first failed frame."""
    first = next((i for i, r in enumerate(records) if not r.ok), len(records))
    return sum(r.ok for r in records[first:])


def _wait_for(devices: list[Device], frames: int, threads: list[threading.Thread]) -> None:
    while min(d.done for d in devices) < frames and any(t.is_alive() for t in threads):
        time.sleep(0.05)


def _check(index, model_path: str, devices: list[Device], stage_models) -> int:
    """Compare every answered frame with the original on its input; return the wrong ones."""
    wrong = 0
    with contextlib.ExitStack() as stack:
        reference = Reference(index, model_path, rtol=1e-5, atol=1e-5, stack=stack)
        for device in devices:
            for record in device.records:
                if record.ok:
                    feeds = make_feeds(stage_models[0], seed=seed_of(device.index, record.frame))
                    wrong += not reference.check(record.frame, feeds, record.outputs).passed
    return wrong


def _load_test(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="flc-load-") as tmp:
        model_path = model_source(args.model, args.width, args.size, Path(tmp))
        plan_dir = Path(tmp) / "plan.flc"
        argv = [model_path, "--rate", str(args.rate), "--grid", f"{args.grid[0]}x{args.grid[1]}"]
        if cli.main([*argv, "-o", str(plan_dir), "--emit-stages", "--runs", "0", "-q"]) != 0:
            raise BadInputError(f"compiling {args.model} failed")
        index = load_index(plan_dir)
        stage_models = device_models(index)
        options = ["--instances", str(args.instances), "--threads", str(args.threads)]
        server = launcher.start([plan_dir], options=options)
        stopped: list[launcher.ServeProcess] = []
        try:
            devices = [Device(i) for i in range(args.devices)]
            threads = [
                threading.Thread(
                    target=_run_device, args=(d, index, stage_models, server.address, args)
                )
                for d in devices
            ]
            start = time.monotonic()
            for t in threads:
                t.start()
            if args.restart_at:
                _wait_for(devices, args.restart_at, threads)
                server.stop()
                stopped.append(server)
                host, port = server.address.rsplit(":", 1)
                server = launcher.start([plan_dir], host=host, port=int(port), options=options)

            _wait_for(devices, args.warmup, threads)
            rss_warm = processes.tree_rss_bytes(server.pid)
            for t in threads:
                t.join()
            wall = time.monotonic() - start
            rss_end = processes.tree_rss_bytes(server.pid)
        finally:
            server.stop()
        wrong = _check(index, model_path, devices, stage_models)
        leftovers = [f"{p.name} ({p.pid})" for s in [*stopped, server] for p in s.leftovers]
    records = [r for d in devices for r in d.records]
    answered = [r.latency_s for r in records if r.ok]
    growth = (rss_end - rss_warm) / rss_warm if rss_warm else None
    first_error = next((r.error for r in records if not r.ok), None)
    recovered = sum(_answered_after_a_failure(d.records) for d in devices)
    return {
        "model": args.model,
        "width": args.width,
        "size": args.size,
        "plan": index.name,
        "paths": len(index.paths),
        "devices": args.devices,
        "frames_per_device": args.frames,
        "instances": args.instances,
        "threads": args.threads,
        "link_rate_MBps": args.link_rate,
        "restarts": len(stopped),
        "answered_after_restart": recovered,
        "wall_s": wall,
        "frames": len(records),
        "frames_answered": len(answered),
        "frames_failed": len(records) - len(answered),
        "first_error": first_error,
        "errors": dict(collections.Counter(r.error for r in records if not r.ok).most_common(5)),
        "wrong_outputs": wrong,
        "device_errors": [d.error for d in devices if d.error],
        "throughput_fps": len(answered) / wall if wall else None,
        **{k.replace("latency_s", "s"): v for k, v in latency_stats(answered).items()},
        "rss_warm_bytes": rss_warm,
        "rss_end_bytes": rss_end,
        "rss_growth": growth,
        "warmup_frames": args.warmup,
        "leftover_processes": leftovers,
    }


def _verdict(result: dict, restarted: bool) -> list[str]:
    """The targets the run missed (empty: all met)."""
    missed = []
    if result["wrong_outputs"]:
        missed.append(f"{result['wrong_outputs']} wrong output(s)")
    if result["device_errors"]:
        missed.append(f"device errors: {result['device_errors']}")
    if result["leftover_processes"]:
        missed.append(f"processes outlived the server: {result['leftover_processes']}")
    if restarted:
        if not result["frames_failed"]:
            missed.append("no frame failed: the restart came after the devices were done")
        if not result["answered_after_restart"]:
            missed.append("no frame was answered after the restart")
        return missed
    if result["frames_failed"]:
        missed.append(f"{result['frames_failed']} failed frame(s): {result['first_error']}")
    if result["rss_growth"] is None or result["rss_growth"] >= RSS_GROWTH_TARGET:
        missed.append(f"memory grew {result['rss_growth']} (target < {RSS_GROWTH_TARGET})")
    return missed


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load test; 0 when every target is met, 1 when one is missed."""
    args = _parser().parse_args(argv)

    def body() -> int:
        check_writable(args.out)
        result = _load_test(args)
        missed = _verdict(result, bool(args.restart_at))
        result["targets_missed"] = missed
        text = json.dumps(result, indent=1) + "\n"
        write_output(Path(args.out), lambda tmp: (tmp / "load_test.json").write_text(text))
        print(
            f"load_test: {result['devices']} devices x {result['frames_per_device']} frames, "
            f"{result['paths']} paths each ({result['plan']}), {result['instances']} instance(s)\n"
            f"  answered {result['frames_answered']} / {result['frames']}, "
            f"failed {result['frames_failed']}, wrong outputs {result['wrong_outputs']}, "
            f"restarts {result['restarts']}\n"
            f"  throughput {result['throughput_fps']:.1f} frames/s; latency p50 "
            f"{(result['median_s'] or 0) * 1e3:.2f} ms, p99 {(result['p99_s'] or 0) * 1e3:.2f} ms\n"
            f"  server memory {result['rss_warm_bytes'] / 2**20:.1f} MiB after "
            f"{result['warmup_frames']} frames, {result['rss_end_bytes'] / 2**20:.1f} MiB at the "
            f"end ({(result['rss_growth'] or 0) * 100:+.1f} %)\n"
            f"  targets: {'met' if not missed else 'MISSED: ' + '; '.join(missed)}"
        )
        return 0 if not missed else 1

    return run_main("load_test.py", body)


if __name__ == "__main__":
    sys.exit(main())
