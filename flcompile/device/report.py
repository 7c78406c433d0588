"""The run report (`--report run.json`) and the lines `flcompile run` prints.

Top level: `frames` (every frame: its latency, error, check and events), `median_latency_s`
(measured end to end, over the frames that succeeded), `predicted_s` (the plan at the
link rate of the run) and their `ratio`; docs/design.md §11 lists every field.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from flcompile.device.owned_files import PRODUCER, write_file
from flcompile.device.reference import FrameCheck
from flcompile.device.runner import FrameRecord

SCHEMA = 1
CLOCK = (
    "event times are seconds from the frame's start on the device; the edge's are "
    "converted from its clock, taken to be the device's"
)


def latency_stats(latencies: Sequence[float]) -> dict[str, float | None]:
    """Median, 99th percentile (nearest rank) and mean of some latencies (None if empty)."""
    if not latencies:
        return {"median_latency_s": None, "p99_latency_s": None, "mean_latency_s": None}
    ordered = sorted(latencies)
    rank = max(0, int(np.ceil(0.99 * len(ordered))) - 1)
    return {
        "median_latency_s": statistics.median(ordered),
        "p99_latency_s": ordered[rank],
        "mean_latency_s": statistics.fmean(ordered),
    }


def build_report(
    *,
    out: Path,
    model: str,
    server: str,
    client: str,
    threads: int,
    link_rate_MBps: float | None,
    plan_rate_MBps: float,
    predicted_s: float,
    records: Sequence[FrameRecord],
    checks: dict[int, FrameCheck],
) -> dict:
    """The report of a run.

    Args:
        out: the plan's OUT directory.
        model: the plan's Triton model name.
        server: HOST:PORT.
        client: this device's name in the requests.
        threads: onnxruntime threads of the device stages.
        link_rate_MBps: the application's pacing rate (None: unpaced).
        plan_rate_MBps: the rate the plan was compiled for.
        predicted_s: the plan's latency at the run's link rate.
        records: the frames.
        checks: the frames' checks by frame id (empty without --check).

    Returns:
        The JSON-ready report.
    """
    ok = [r.latency_s for r in records if r.ok]
    stats = latency_stats(ok)
    median = stats["median_latency_s"]
    return {
        "producer": PRODUCER,
        "kind": "run",
        "schema": SCHEMA,
        "out": str(out),
        "model": model,
        "server": server,
        "client": client,
        "threads": threads,
        "link_rate_MBps": link_rate_MBps,
        "plan_rate_MBps": plan_rate_MBps,
        "predicted_s": predicted_s,
        **stats,
        "ratio": None if median is None else median / predicted_s,
        "frames_ok": len(ok),
        "frames_failed": len(records) - len(ok),
        "check": None
        if not checks
        else {
            "passed": all(c.passed for c in checks.values()),
            "frames_checked": len(checks),
        },
        "clock": CLOCK,
        "frames": [
            {
                "frame": r.frame,
                "ok": r.ok,
                "error": r.error,
                "latency_s": r.latency_s if r.ok else None,
                "start_epoch_s": r.start_epoch_s,
                "check": checks[r.frame].to_json() if r.frame in checks else None,
                "events": list(r.events),
            }
            for r in records
        ],
    }


def write_report(path: Path, report: dict) -> None:
    """Write the report as JSON (replacing only a report flcompile wrote)."""
    text = json.dumps(report, indent=1) + "\n"
    write_file(path, "json", "--report", lambda tmp: tmp.write_text(text, encoding="utf-8"))


def frame_line(record: FrameRecord, predicted_s: float, check: FrameCheck | None) -> str:
    """One frame's line: its latency, the prediction and their ratio (or its error)."""
    if not record.ok:
        return f"frame {record.frame}: failed: {record.error}"
    line = (
        f"frame {record.frame}: {record.latency_s * 1e3:.2f} ms, predicted "
        f"{predicted_s * 1e3:.2f} ms, ratio {record.latency_s / predicted_s:.3f}"
    )
    if check is not None:
        line += ", check " + ("ok" if check.passed else f"FAILED on {check.failed_tensor}")
    return line
