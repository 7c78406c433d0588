"""The link profile file: versioned JSON of the link law fitted by `flcompile profile --server`.

`{"schema": 1, "kind": "link-profile", "producer": "flcompile", ..., "link": {"rate_MBps",
"latency_s", "bytes_per_MB", "points": [{"bytes", "median_s", "n"}], "worst_error"}}`.
An optional `"device"` section (`flcompile.profile.device_send`) holds the device's own
seconds per message and per byte; a file without it means none.
`flcompile MODEL --link-profile FILE` plans with its rate, latency and device work.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from flcompile import __version__
from flcompile.costs import BYTES_PER_MB
from flcompile.errors import BadInputError
from flcompile.profile.device_send import DeviceSend
from flcompile.profile.link_fit import LinkFit
from flcompile.profile.profile_json import machine

SCHEMA = 1
KIND = "link-profile"


def link_profile_dict(
    server: str, fit: LinkFit, paced_MBps: float | None, device: DeviceSend | None = None
) -> dict:
    """The link profile's content.

    Args:
        server: HOST:PORT that was probed.
        fit: the fitted law and its points.
        paced_MBps: the application pacing the probe used (`--link-rate`), or None.
        device: the device's own work per message, or None.

    Returns:
        The JSON object.
    """
    return {
        "schema": SCHEMA,
        "kind": KIND,
        "producer": "flcompile",
        "version": __version__,
        "server": server,
        "paced_MBps": paced_MBps,
        "machine": machine(),
        "link": {
            "rate_MBps": fit.rate_MBps,
            "latency_s": fit.latency_s,
            "bytes_per_MB": BYTES_PER_MB,
            "points": [{"bytes": p.nbytes, "median_s": p.median_s, "n": p.n} for p in fit.points],
            "worst_error": fit.worst_error(),
        },
        **({"device": device.to_json()} if device is not None else {}),
    }


def read_link(path: str | Path) -> dict[str, float]:
    """The link law of a link profile file, as `LinkModel` fields.

    Args:
        path: the file `flcompile profile --server` wrote.

    Returns:
        rate_MBps, latency_s, device_s_per_message and device_s_per_byte (0 without a
        `device` section).

    Raises:
        BadInputError: the file cannot be read, is not a link profile of this schema, or
            holds no positive rate and non-negative latency and device work.
    """
    hint = "write one with: flcompile profile --server HOST:PORT -o FILE"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadInputError(f"--link-profile {path}: cannot be read ({e})", hint=hint) from e
    if not isinstance(data, dict) or data.get("kind") != KIND or data.get("schema") != SCHEMA:
        raise BadInputError(
            f"--link-profile {path}: not a schema-{SCHEMA} flcompile link profile", hint=hint
        )
    try:
        rate, latency = float(data["link"]["rate_MBps"]), float(data["link"]["latency_s"])
        device = data.get("device") or {}
        per_message = float(device.get("s_per_message", 0.0))
        per_byte = float(device.get("s_per_byte", 0.0))
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise BadInputError(f"--link-profile {path}: malformed link ({e})", hint=hint) from e
    if not (math.isfinite(rate) and math.isfinite(latency) and rate > 0 and latency >= 0):
        raise BadInputError(
            f"--link-profile {path}: rate {rate:g} MB/s and latency {latency:g} s are not a link",
            hint=hint,
        )
    if not all(math.isfinite(v) and v >= 0 for v in (per_message, per_byte)):
        raise BadInputError(
            f"--link-profile {path}: the device's work per message "
            f"({per_message:g} s + {per_byte:g} s/byte) is not a cost",
            hint=hint,
        )
    return {
        "rate_MBps": rate,
        "latency_s": latency,
        "device_s_per_message": per_message,
        "device_s_per_byte": per_byte,
    }
