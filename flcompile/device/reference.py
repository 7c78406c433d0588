"""`flcompile run --check`: the original model, run here, as the reference for every frame.

The original is the model plan.json names (or `--model`), and must be the very file the
plan was compiled from (its sha256 is checked). Outputs are compared as verification
compares them (docs/design.md §7), with the same default tolerances (2^-8 for float16 sends).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from flcompile.costs.wire import DEFAULT_SEND_DTYPE
from flcompile.deploy.plan_index import PlanIndex
from flcompile.errors import BadInputError
from flcompile.load import load_model
from flcompile.send_accuracy import default_tolerance
from flcompile.verify import TensorComparison, compare, open_session


@dataclass(frozen=True)
class FrameCheck:
    """How one frame's outputs compared with the original's."""

    frame: int
    passed: bool
    max_abs_err: float
    max_rel_err: float
    failed_tensor: str | None

    def to_json(self) -> dict:
        """The frame's `check` entry in the report."""
        finite = lambda x: x if math.isfinite(x) else None  # noqa: E731
        return {
            "passed": self.passed,
            "max_abs_err": finite(self.max_abs_err),
            "max_rel_err": finite(self.max_rel_err),
            "failed_tensor": self.failed_tensor,
        }


class Reference:
    """The original model in an onnxruntime session.

    Args:
        index: the plan.
        model: the original's path or zoo name (default: the one plan.json names).
        rtol: relative tolerance (None: verification's default for the plan's send dtype).
        atol: absolute tolerance, scaled to each reference's magnitude (None: as rtol).
        stack: owns the session.

    Raises:
        BadInputError: the model is missing or is not the one the plan was compiled from.
    """

    def __init__(
        self,
        index: PlanIndex,
        model: str | None,
        *,
        rtol: float | None,
        atol: float | None,
        stack: contextlib.ExitStack,
    ) -> None:
        source = model or str(index.plan["model"]["path"]).removeprefix("zoo:")
        try:
            loaded = load_model(source)
        except BadInputError as e:
            raise BadInputError(
                f"--check needs the original model; {e.message}",
                hint="pass it with --model PATH",
            ) from e
        if loaded.sha256 != index.plan["model"]["sha256"]:
            raise BadInputError(
                f"--check: {loaded.path} is not the model {index.out} was compiled from "
                "(its sha256 differs)",
                hint="pass the original with --model PATH",
            )
        self._session = stack.enter_context(open_session(loaded.model))
        send_dtype = index.plan["link"].get("send_dtype", DEFAULT_SEND_DTYPE)
        tolerance = default_tolerance(send_dtype)
        self.rtol = tolerance if rtol is None else rtol
        self.atol = tolerance if atol is None else atol

    def check(
        self, frame: int, feeds: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]
    ) -> FrameCheck:
        """Compare one frame's outputs with the original's on the same input.

        Args:
            frame: the frame id.
            feeds: the frame's input.
            outputs: what the server answered, by output name.

        Returns:
            The comparison (a missing output fails it).
        """
        names = [o.name for o in self._session.get_outputs()]
        wanted = {i.name: feeds[i.name] for i in self._session.get_inputs()}
        reference = dict(zip(names, self._session.run(names, wanted), strict=True))
        results: list[TensorComparison | None] = [
            compare(n, outputs[n], reference[n], rtol=self.rtol, atol=self.atol)
            if n in outputs
            else None
            for n in names
        ]
        failed = next(
            (n for n, r in zip(names, results, strict=True) if r is None or not r.passed), None
        )
        done = [r for r in results if r is not None]
        return FrameCheck(
            frame,
            failed is None,
            max((r.max_abs_err for r in done), default=0.0),
            max((r.max_rel_err for r in done), default=0.0),
            failed,
        )
