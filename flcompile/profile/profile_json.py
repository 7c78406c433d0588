"""The profile file: versioned JSON of the fitted laws, where they were measured, and how
accurate they are. `"producer": "flcompile"` marks it as flcompile's, to be replaced only
by flcompile (`flcompile.device.owned_files`)."""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from flcompile import __version__
from flcompile.costs.node_key import OVERALL
from flcompile.costs.run_overhead import RunOverhead
from flcompile.errors import BadInputError
from flcompile.profile.law import CostLaw

if TYPE_CHECKING:
    from flcompile.profile.accuracy import Accuracy

SCHEMA = 2
#: Schemas `read_laws` reads: 1 had laws per op type without a bytes term.
READABLE_SCHEMAS = (1, 2)
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


def profile_dict(
    model: str,
    threads: int,
    laws: Mapping[str, CostLaw],
    overall: CostLaw,
    accuracy: Accuracy,
    sizes: Mapping[str, np.ndarray] | None = None,
    run: RunOverhead | None = None,
) -> dict:
    """The profile's content.

    Args:
        model: the model it was measured on.
        threads: onnxruntime's intra-op threads.
        laws: law key (op type, or op type and kernel) -> law.
        overall: one law fitted over every node (what planning uses).
        accuracy: the held-out accuracy.
        sizes: law key -> rows of (FLOPs, bytes, seconds) measured (`law.size_table`).
        run: what a stage run costs beyond its nodes, or None (not measured).

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
        "overall": overall.to_json(),
        "sizes": {key: rows.tolist() for key, rows in (sizes or {}).items()},
        "accuracy": accuracy.to_json(),
        **({} if run is None else {"run": run.to_json()}),
    }


def _law(value: object) -> CostLaw:
    return CostLaw(
        float(value["a_s"]),
        float(value["b_s_per_flop"]),
        int(value["n"]),
        float(value.get("c_s_per_byte", 0.0)),
    )


def read_laws(path: str | Path) -> tuple[dict[str, CostLaw], dict]:
    """The laws of a profile file, and the whole profile.

    Args:
        path: the profile.

    Returns:
        (law key -> law, with the overall law under `OVERALL`; the parsed JSON).

    Raises:
        BadInputError: the file cannot be read or is not a profile of this schema.
    """
    hint = "write one with: flcompile profile MODEL -o FILE"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadInputError(f"{path}: cannot read the profile ({e})", hint=hint) from e
    schema = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("kind") != KIND or schema not in READABLE_SCHEMAS:
        raise BadInputError(f"{path}: not a schema-{SCHEMA} flcompile profile", hint=hint)
    try:
        laws = {op: _law(v) for op, v in data["laws"].items()}
        laws[OVERALL] = _law(data["overall"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise BadInputError(f"{path}: malformed laws ({e})", hint=hint) from e
    return laws, data


def read_sizes(data: dict, path: str | Path) -> dict[str, np.ndarray]:
    """The measured sizes of a parsed profile: law key -> (M, 3) FLOPs, bytes, seconds.

    Raises:
        BadInputError: they are malformed.
    """
    try:
        sizes = {
            key: np.array(rows, float).reshape(-1, 3) for key, rows in data.get("sizes", {}).items()
        }
    except (TypeError, ValueError, AttributeError) as e:
        raise BadInputError(f"{path}: malformed sizes ({e})", hint="profile again") from e
    return sizes


def read_run(data: dict, path: str | Path) -> RunOverhead:
    """The run overhead of a parsed profile (0 when it has none: profiles before it).

    Raises:
        BadInputError: it is malformed.
    """
    try:
        return RunOverhead.from_json(data.get("run"))
    except (KeyError, TypeError, ValueError) as e:
        raise BadInputError(f"{path}: malformed run overhead ({e})", hint="profile again") from e


def read_overall(path: str | Path) -> CostLaw:
    """The overall law of a profile file (see `read_laws` for the errors)."""
    return read_laws(path)[0][OVERALL]
