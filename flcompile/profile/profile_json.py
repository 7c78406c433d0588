"""The profile file: versioned JSON of the fitted laws, where they were measured, and how
accurate they are. `"producer": "flcompile"` marks it as flcompile's, to be replaced only
by flcompile (`flcompile.device.owned_files`)."""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from pathlib import Path

import onnxruntime as ort

from flcompile import __version__
from flcompile.errors import BadInputError
from flcompile.profile.accuracy import Accuracy
from flcompile.profile.law import CostLaw

SCHEMA = 1
KIND = "profile"


def machine() -> dict:
    """Where the profile was measured."""
    return {
        "node": platform.node(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
    }


def profile_dict(model: str, threads: int, laws: Mapping[str, CostLaw], accuracy: Accuracy) -> dict:
    """The profile's content.

    Args:
        model: the model it was measured on.
        threads: onnxruntime's intra-op threads.
        laws: op type -> law.
        accuracy: the held-out accuracy.

    Returns:
        The JSON object.
    """
    return {
        "schema": SCHEMA,
        "kind": KIND,
        "producer": "flcompile",
        "version": __version__,
        "model": model,
        "threads": threads,
        "machine": machine(),
        "laws": {op: law.to_json() for op, law in laws.items()},
        "accuracy": accuracy.to_json(),
    }


def read_laws(path: str | Path) -> tuple[dict[str, CostLaw], dict]:
    """The laws of a profile file, and the whole profile.

    Args:
        path: the profile.

    Returns:
        (op type -> law, the parsed JSON).

    Raises:
        BadInputError: the file cannot be read or is not a profile of this schema.
    """
    hint = "write one with: flcompile profile MODEL -o FILE"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadInputError(f"{path}: cannot read the profile ({e})", hint=hint) from e
    if not isinstance(data, dict) or data.get("kind") != KIND or data.get("schema") != SCHEMA:
        raise BadInputError(f"{path}: not a schema-{SCHEMA} flcompile profile", hint=hint)
    try:
        laws = {
            op: CostLaw(float(v["a_s"]), float(v["b_s_per_flop"]), int(v["n"]))
            for op, v in data["laws"].items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise BadInputError(f"{path}: malformed laws ({e})", hint=hint) from e
    return laws, data
