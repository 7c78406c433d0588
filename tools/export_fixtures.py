"""Write the real torchvision exports the tests compile, with both torch exporters.

Each file is a torchvision CNN with seeded random weights (`weights=None`: nothing is
downloaded), in eval mode, batch 1, input 1x3x224x224 float32, written by torch itself:

- `NAME.legacy.onnx`: the TorchScript-based exporter,
  `torch.onnx.export(..., dynamo=False, opset_version=17)`, input "input", output "output";
- `NAME.dynamo.onnx`: the torch.export-based exporter (`dynamo=True`), at its default opset
  and with the names it chooses.

Every file is checked with the ONNX checker and run in onnxruntime against torch's own
output before it is moved into place (`flcompile.verify.compare`, rtol = atol = 1e-4 scaled
to the output's magnitude: the exporters fold BatchNorm into the convolutions). Existing
files are kept unless --force is given.

torch, torchvision and onnxscript (which the dynamo exporter needs) are the optional extra
`fixtures`, never a dependency of flcompile: `pip install -e '.[fixtures]'` (made with
torch 2.14.1, torchvision 0.29.1, onnxscript 0.7.2). On Linux, PyPI's torch brings several GB
of CUDA libraries; PyTorch's CPU index avoids them: `pip install torch torchvision
--index-url https://download.pytorch.org/whl/cpu` first. The tests read the folder named by
FLCOMPILE_FIXTURES.

Rerun:
    python tools/export_fixtures.py /tmp/fixtures
    FLCOMPILE_FIXTURES=/tmp/fixtures python -m pytest tests/flcompile/test_compile_models.py
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
from _common import ToolParser, run_main

from flcompile.errors import UsageError, VerificationError
from flcompile.verify import compare, open_session

NAME = "export_fixtures"
INSTALL_HINT = "pip install -e '.[fixtures]'"
LEGACY_OPSET = 17
INPUT_SHAPE = (1, 3, 224, 224)
TOLERANCE = 1e-4


@dataclass(frozen=True)
class Export:
    """One fixture file: which torchvision model, written by which exporter."""

    model: str
    exporter: str  # "legacy" or "dynamo"

    @property
    def file_name(self) -> str:
        """The file name the tests look for."""
        return f"{self.model}.{self.exporter}.onnx"


# The exports tests/flcompile/test_compile_models.py compiles (its FIXTURE_FILES).
EXPORTS = (
    Export("squeezenet1_1", "legacy"),
    Export("squeezenet1_1", "dynamo"),
    Export("resnet18", "legacy"),
    Export("mobilenet_v2", "dynamo"),
    Export("googlenet", "legacy"),
)
BY_FILE = {e.file_name: e for e in EXPORTS}
# Constructor arguments that only silence torchvision's warnings; the defaults are the same.
MODEL_KWARGS = {"googlenet": {"init_weights": True}}


def import_torch() -> tuple[ModuleType, ModuleType]:
    """torch and torchvision, checking that the dynamo exporter's onnxscript is there too.

    Raises:
        UsageError: one of them is missing, naming the extra that installs them.
    """
    modules = []
    for name in ("torch", "torchvision", "onnxscript"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError as e:
            raise UsageError(f"{name} is not installed", hint=f"install: {INSTALL_HINT}") from e
    return modules[0], modules[1]


@contextlib.contextmanager
def scratch_file(target: Path) -> Iterator[Path]:
    """A temporary path beside `target`, removed unless the body moved it into place."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def export_one(torch, torchvision, spec: Export, target: Path, seed: int) -> float:
    """Build `spec`'s model with seeded weights, export it, check it, move it to `target`.

    Returns:
        The max error of onnxruntime's output relative to torch's output magnitude.

    Raises:
        VerificationError: onnxruntime's output differs from torch's.
    """
    torch.manual_seed(seed)
    model = torchvision.models.get_model(
        spec.model, weights=None, **MODEL_KWARGS.get(spec.model, {})
    )
    model.eval()
    x = torch.randn(*INPUT_SHAPE)
    with torch.no_grad():
        expected = model(x).numpy()
    with scratch_file(target) as tmp:
        if spec.exporter == "legacy":
            with warnings.catch_warnings():  # it warns that it is the legacy one: we know
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.onnx.export(
                    model,
                    (x,),
                    str(tmp),
                    dynamo=False,
                    opset_version=LEGACY_OPSET,
                    input_names=["input"],
                    output_names=["output"],
                )
        else:
            program = torch.onnx.export(model, (x,), dynamo=True, verbose=False)
            program.save(str(tmp), external_data=False)
        onnx.checker.check_model(str(tmp), full_check=True)
        with open_session(tmp) as session:
            (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        result = compare("output", np.asarray(got), expected, rtol=TOLERANCE, atol=TOLERANCE)
        if not result.passed:
            raise VerificationError(
                f"{spec.file_name}: onnxruntime differs from torch "
                f"(max rel err {result.max_rel_err:.3g} > {TOLERANCE:g}); not written"
            )
        os.replace(tmp, target)
    return result.max_rel_err


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = ToolParser(prog=NAME, description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="folder to write the exports into (created if absent)")
    p.add_argument(
        "--only",
        dest="only",
        nargs="+",
        choices=sorted(BY_FILE),
        metavar="FILE",
        help=f"write only these files (default: all of {', '.join(BY_FILE)})",
    )
    p.add_argument("--seed", dest="seed", type=int, default=0, help="torch seed (default 0)")
    p.add_argument(
        "--force", dest="force", action="store_true", help="replace files of these names"
    )
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Export the requested files into args.out; return the exit code."""
    specs = [BY_FILE[name] for name in args.only] if args.only else list(EXPORTS)
    out: Path = args.out
    existing = [s.file_name for s in specs if (out / s.file_name).exists()]
    if existing and not args.force:
        raise UsageError(
            f"{out} already holds {', '.join(existing)}", hint="pass --force to replace them"
        )
    torch, torchvision = import_torch()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create {out}: {e.strerror or e}") from e
    for spec in specs:
        started = time.perf_counter()
        try:
            err = export_one(torch, torchvision, spec, out / spec.file_name, args.seed)
        except OSError as e:
            raise UsageError(f"cannot write {out / spec.file_name}: {e.strerror or e}") from e
        size = (out / spec.file_name).stat().st_size / 1e6
        print(
            f"wrote {out / spec.file_name} ({size:.1f} MB, max rel err vs torch {err:.2g}, "
            f"{time.perf_counter() - started:.1f} s)"
        )
    print(f"run the tests on them: FLCOMPILE_FIXTURES={out} python -m pytest")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: one line and exit 2 when torch is missing or the folder is unusable."""
    args = parse_args(argv)
    return run_main(NAME, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
