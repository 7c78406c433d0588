"""The KServe v2 conventions of a split plan's requests (docs/design.md §11).

One Triton model per compiled plan, named by `model_name`. Its inputs are the tensors every
path sends, by their names in the plan, each optional; a request carries one path's tensors
and three request parameters: `client` (a string naming the device), `frame` (an integer)
and `path` (the path's grid index). Every response carries `fl_timings`, float64 rows of
(path, received, start, end) in the server's clock (seconds since the epoch); a row whose
path is -1 is the fuse and the rest of the model. The response to a frame's last path also
carries the model's outputs, and holds the rows of every path of the frame.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import PurePosixPath

import numpy as np

CLIENT = "client"
FRAME = "frame"
PATH = "path"
TIMINGS = "fl_timings"
TIMING_COLUMNS = ("path", "received", "start", "end")
FUSE_ROW = -1

#: The server's status model: no inputs; int64 outputs of shape (1,).
STATUS_MODEL = "flcompile_status"
STATUS_OUTPUTS = ("frames_open", "frames_done", "frames_expired", "requests_failed", "rss_bytes")

#: The link probe's sink model: a uint8 vector in, its length (int64, shape (1,)) out, so
#: a request's time is the payload's way to the server plus a fixed cost, not a reply's.
PROBE_MODEL = "flcompile_probe"
PROBE_INPUT = "payload"
PROBE_OUTPUT = "received_bytes"

_ERROR = re.compile(r"EdgeRequestError: ([^\n]+)")


class EdgeRequestError(ValueError):
    """A request the edge refuses: unknown path or frame, wrong tensors, duplicate, order.

    Its class name is part of the protocol: a client finds the message after
    "EdgeRequestError: " in the error text Triton returns.
    """


def model_name(plan: dict) -> str:
    """The Triton model name of a compiled plan: its model's stem and a digest of the plan.

    The digest covers what decides the wire format and the result (the source model's
    sha256, F, the grid, and every path's tile, order, cut and sends), not timings, so the
    device and the server agree on it from their own copies of OUT, and a device with a
    different plan is refused instead of answered wrongly.

    Args:
        plan: a loaded plan.json.

    Returns:
        A name matching Triton's ^[A-Za-z0-9._-]+$.
    """
    identity = {
        "model": plan["model"]["sha256"],
        "fused": plan["fused"] and {k: plan["fused"][k] for k in ("tensor", "grid")},
        "paths": [
            [
                p["index"],
                p["tile"],
                p["order"],
                p["device_nodes"],
                [s["tensor"] for s in p["sends"]],
            ]
            for p in plan["paths"]
        ],
        "nfl": plan["nfl_plan"] and [plan["nfl_plan"]["device_nodes"], plan["nfl_plan"]["sends"]],
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    stem = PurePosixPath(str(plan["model"]["path"]).removeprefix("zoo:")).name
    stem = re.sub(r"\.onnx$", "", stem)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-") or "model"
    return f"{stem}-{digest}"


def timing_rows(rows: list[tuple[float, float, float, float]]) -> np.ndarray:
    """`fl_timings` from (path, received, start, end) rows."""
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(TIMING_COLUMNS))


def error_message(text: str) -> str:
    """The refusal's own message out of the error text a client receives.

    Triton wraps a Python backend's exception in a traceback; this keeps the message.
    Other errors (Triton's own checks of names, shapes and dtypes; connection failures)
    are returned as their first line.

    Args:
        text: the error text, e.g. str(InferenceServerException).

    Returns:
        One line.
    """
    found = _ERROR.findall(text)
    if found:
        return found[-1].strip()
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"
