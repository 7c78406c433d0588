"""`flcompile run OUT --server HOST:PORT`: run a compiled plan's device side against its edge.

Per frame it prints the measured end-to-end latency, the predicted one and their ratio.
Exit codes: 0 every frame answered (and checked), 1 some frames failed on the way (the
server refused them or went away; each is printed), 2 bad usage or no server, 3 --check
found a wrong output, 4 a bug.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from flcompile.arg_types import count, host_port, non_negative, positive
from flcompile.command import OneLineParser, require_extra, run_guarded
from flcompile.deploy.plan_index import PlanIndex, load_index
from flcompile.deploy.stage_models import device_models
from flcompile.device.compute_cgroup import join_compute_cgroup
from flcompile.device.owned_files import check_writable, write_file
from flcompile.errors import VerificationError
from flcompile.verify import ModelLike, load_structure, make_feeds

log = logging.getLogger("flcompile")

DESCRIPTION = """\
Run the device side of a compiled plan against `flcompile serve` on the edge: the device
stages run path by path in the plan's order, and each path's tensors are sent as soon as
its stage ends, while the next path computes. Prints each frame's measured latency, the
plan's predicted latency and their ratio."""

TIMELINE = "timeline_measured.png"


def build_parser() -> argparse.ArgumentParser:
    """The options of `flcompile run`."""
    p = OneLineParser(
        prog="flcompile run",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("out", metavar="OUT", help="the compiled plan's directory")
    p.add_argument(
        "--server",
        dest="server",
        type=host_port,
        required=True,
        metavar="HOST:PORT",
        help="the edge server's gRPC address",
    )
    p.add_argument(
        "--input",
        dest="input_path",
        metavar="FILE.npy",
        help="the input of every frame (default: seeded random, a new one per frame)",
    )
    p.add_argument(
        "--seed",
        dest="seed",
        type=count(0),
        default=0,
        metavar="N",
        help="frame i's random input uses seed N + i (default 0)",
    )
    p.add_argument(
        "--frames",
        dest="frames",
        type=count(1),
        default=1,
        metavar="N",
        help="frames to run, one after another (default 1)",
    )
    p.add_argument(
        "--frame-gap",
        dest="frame_gap",
        type=non_negative,
        default=0.0,
        metavar="S",
        help="idle S seconds before each frame after the first, its input made (default 0): "
        "the prediction is for a frame that starts on an idle device, as a camera's "
        "frames come apart",
    )
    p.add_argument(
        "--threads",
        dest="threads",
        type=count(1),
        default=1,
        metavar="T",
        help="onnxruntime threads of the device stages (default 1)",
    )
    p.add_argument(
        "--link-rate",
        dest="link_rate",
        type=positive,
        metavar="MB/s",
        help="pace the sends at this rate in the application (token bucket; 1 MB = 1e6 "
        "bytes); the prediction then uses it too. Default: unpaced, predicted at the "
        "plan's rate",
    )
    p.add_argument(
        "--compute-cgroup",
        dest="compute_cgroup",
        metavar="DIR",
        help="for an emulated slow device: the thread that runs the device stages (only "
        "it, not the network's threads) joins this cpu cgroup before the first frame",
    )
    p.add_argument(
        "--report",
        dest="report",
        metavar="FILE.json",
        help="write every frame's events and the medians as JSON",
    )
    p.add_argument(
        "--timeline",
        dest="timeline",
        metavar="FILE.png",
        help=f"draw the median frame above the predicted timeline (default: {TIMELINE} "
        "beside --report)",
    )
    p.add_argument(
        "--save-output",
        dest="save_output",
        metavar="FILE.npz",
        help="write the last frame's outputs by output name (numpy.savez)",
    )
    p.add_argument(
        "--check",
        dest="check",
        action="store_true",
        help="compare every frame's outputs with the original model run here",
    )
    p.add_argument(
        "--model",
        dest="model",
        metavar="PATH",
        help="the original model for --check (default: the one plan.json names)",
    )
    for flag in ("rtol", "atol"):
        p.add_argument(
            f"--{flag}",
            dest=flag,
            type=non_negative,
            metavar="X",
            help=f"--check's {flag} (default as verification: 1e-5, or 2^-8 for a plan "
            "with float16 sends)",
        )
    p.add_argument(
        "--timeout",
        dest="timeout",
        type=positive,
        default=60.0,
        metavar="S",
        help="seconds to wait for a frame's answers (default 60)",
    )
    p.add_argument("-q", "--quiet", dest="quiet", action="store_true", help="print errors only")
    p.add_argument("--debug", dest="debug", action="store_true", help="tracebacks")
    return p


def main(argv: Sequence[str]) -> int:
    """Run `flcompile run`; returns the exit code."""
    argv = list(argv)
    return run_guarded(lambda: _run(argv), debug="--debug" in argv, interrupted="interrupted")


def _frame_feeds(first: ModelLike, args: argparse.Namespace):
    """A function: frame id -> the frame's input (the model is read once, here)."""
    if args.input_path:
        fixed = make_feeds(first, input_path=args.input_path)
        return lambda frame: fixed
    structure = load_structure(first)
    return lambda frame: make_feeds(structure, seed=args.seed + frame)


def _run(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.ERROR if args.quiet else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    require_extra("tritonclient.grpc", "device", "run")
    from flcompile.device.client import EdgeClient
    from flcompile.device.pacer import pacer_for
    from flcompile.device.prediction import predicted
    from flcompile.device.reference import Reference
    from flcompile.device.report import build_report, frame_line
    from flcompile.device.runner import DeviceRunner

    timeline = args.timeline or (str(Path(args.report).parent / TIMELINE) if args.report else None)
    report_path = args.report and check_writable(args.report, "json", "--report")
    timeline_path = timeline and check_writable(timeline, "png", "--timeline")
    save_path = args.save_output and check_writable(args.save_output, "npz", "--save-output")
    index = load_index(args.out)
    prediction = predicted(index.plan, args.link_rate)
    predicted_s = prediction[0].finish
    client = EdgeClient(args.server, index.name, timeout_s=args.timeout)
    client_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    records, checks = [], {}
    with contextlib.ExitStack() as stack:
        stack.callback(client.close)
        client.check()
        models = device_models(index)
        feeds_of = _frame_feeds(models[0], args)
        reference = (
            Reference(index, args.model, rtol=args.rtol, atol=args.atol, stack=stack)
            if args.check
            else None
        )
        pacer = pacer_for(args.link_rate)
        runner = DeviceRunner(
            index,
            models,
            client,
            pacer,
            client_id=client_id,
            threads=args.threads,
            timeout_s=args.timeout,
            stack=stack,
        )
        if args.compute_cgroup:
            join_compute_cgroup(args.compute_cgroup)
        for frame in range(args.frames):
            feeds = feeds_of(frame)
            if frame:
                time.sleep(args.frame_gap)
            record = runner.run_frame(frame, feeds)
            if reference is not None and record.ok:
                checks[frame] = reference.check(frame, feeds, record.outputs)
            records.append(record)
            if not args.quiet:
                print(frame_line(record, predicted_s, checks.get(frame)), flush=True)
    report = build_report(
        out=index.out,
        model=index.name,
        server=args.server,
        client=client_id,
        threads=args.threads,
        link_rate_MBps=args.link_rate,
        plan_rate_MBps=index.plan["link"]["rate_MBps"],
        predicted_s=predicted_s,
        records=records,
        checks=checks,
    )
    wrote = _write_outputs(
        index, records, report, prediction, report_path, timeline_path, save_path, args
    )
    if not args.quiet:
        print(_summary(report, wrote, args))
    return _exit_code(records, checks)


def _write_outputs(
    index: PlanIndex, records, report, prediction, report_path, timeline_path, save_path, args
) -> list[str]:
    from flcompile.device.report import write_report
    from flcompile.device.timeline import plot_measured

    wrote = []
    if report_path:
        write_report(report_path, report)
        wrote.append(str(report_path))
    ok = [r for r in records if r.ok]
    if timeline_path and ok:
        median = sorted(ok, key=lambda r: r.latency_s)[(len(ok) - 1) // 2]
        rate = f"paced at {args.link_rate:g} MB/s" if args.link_rate else "unpaced link"
        plot_measured(
            timeline_path,
            median,
            index,
            prediction,
            title=f"{index.name}: measured against predicted ({rate})",
            heading=f"measured: frame {median.frame}, the median of {len(ok)}",
        )
        wrote.append(str(timeline_path))
    if save_path and records and records[-1].ok:
        outputs = records[-1].outputs

        def save(tmp: Path) -> None:
            with tmp.open("wb") as f:
                np.savez(f, **outputs)

        write_file(save_path, "npz", "--save-output", save)
        wrote.append(str(save_path))
    return wrote


def _summary(report: dict, wrote: list[str], args: argparse.Namespace) -> str:
    n = len(report["frames"])
    median = report["median_latency_s"]
    rate = (
        f"at {args.link_rate:g} MB/s"
        if args.link_rate
        else (f"at the plan's {report['plan_rate_MBps']:g} MB/s; the link was not paced")
    )
    text = f"run: {report['frames_ok']} of {n} frame(s) answered"
    if median is not None:
        text += (
            f"; median {median * 1e3:.2f} ms, predicted {report['predicted_s'] * 1e3:.2f} ms "
            f"({rate}), ratio {report['ratio']:.3f}"
        )
    if report["check"] is not None:
        text += "; check " + ("passed" if report["check"]["passed"] else "FAILED")
    if wrote:
        text += f"; wrote {', '.join(wrote)}"
    return text


def _exit_code(records, checks) -> int:
    bad = next((c for c in checks.values() if not c.passed), None)
    if bad is not None:
        raise VerificationError(
            f"frame {bad.frame}: output '{bad.failed_tensor}' differs from the original model's "
            f"(max abs err {bad.max_abs_err:.3g}, max rel err {bad.max_rel_err:.3g})",
            hint="the edge server may serve another plan or be broken",
        )
    failed = [r for r in records if not r.ok]
    if failed:
        print(
            f"flcompile: error: {len(failed)} of {len(records)} frame(s) failed; first: "
            f"frame {failed[0].frame}: {failed[0].error}",
            file=sys.stderr,
        )
        return 1
    return 0
