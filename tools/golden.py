"""Golden outputs: compile small zoo models with fixed options and checksum every emitted file.

A refactoring must leave the CLI's outputs byte for byte the same. This tool runs the
`flcompile` command (in-process, with `--runs 0`) on each case below, with the zoo models
built at width 0.25 and 64×64 inputs so the whole set takes seconds, and records a SHA-256
of every file it writes into tests/data/golden.json:

- ONNX models (device, edge, tiled, stages/*) and timeline.png: their bytes;
- plan.json: the file as flcompile writes it after removing what varies from run to run
  (`search.seconds`, the `verify` and `measured` sections, and the model's temporary
  directory in `model.path`); each top-level key is also hashed on its own, so a
  difference names the keys that changed.

    python tools/golden.py --check     # compare with tests/data/golden.json; exit 1 on change
    python tools/golden.py --update    # rewrite it after an intended change of the outputs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx

from flcompile import models
from flcompile.cli import main as flcompile_main

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "data" / "golden.json"
WIDTH = 0.25
SIZE = 64
COMMON = ("--runs", "0", "-q")
RATE = ("--rate", "1.8")


@dataclass(frozen=True)
class Case:
    """One compile: a zoo model (small variant) and the options after MODEL."""

    name: str
    model: str
    options: tuple[str, ...]


CASES = (
    *(Case(m, m, RATE) for m in models.NAMES),
    Case("yolov2-paper", "yolov2", ("--paper",)),
    Case("squeezenet-grid2x2-stages", "squeezenet", (*RATE, "--grid", "2x2", "--emit-stages")),
    Case("resnet18-nfl", "resnet18", (*RATE, "--solver", "nfl")),
    Case(
        "alexnet-costs",
        "alexnet",
        (
            *RATE,
            "--latency",
            "0.002",
            "--return-rate",
            "3",
            "--overhead-dev",
            "1e-4",
            "--overhead-edge",
            "1e-5",
            "--edge-concurrency",
            "2",
        ),
    ),
)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stable_plan(plan: dict) -> dict:
    """plan.json without the fields that differ between identical runs."""
    plan = dict(plan)
    plan.pop("verify", None)
    plan.pop("measured", None)
    plan["search"] = {k: v for k, v in plan["search"].items() if k != "seconds"}
    plan["model"] = {**plan["model"], "path": Path(plan["model"]["path"]).name}
    return plan


def digest(out: Path) -> dict:
    """The checksums of one output directory: per file, and per top-level key of plan.json."""
    files, plan_keys = {}, {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        data = path.read_bytes()
        if rel == "plan.json":
            plan = stable_plan(json.loads(data))
            data = (json.dumps(plan, indent=2) + "\n").encode()
            plan_keys = {k: _sha256(json.dumps(v).encode()) for k, v in plan.items()}
        files[rel] = _sha256(data)
    return {"files": files, "plan.json keys": plan_keys}


def run_case(case: Case, work: Path) -> dict:
    """Compile one case into `work` and return its digest.

    Raises:
        RuntimeError: flcompile exited with a non-zero code.
    """
    source = work / f"{case.model}.onnx"
    if not source.exists():
        onnx.save(models.build(case.model, width=WIDTH, size=SIZE), str(source))
    out = work / f"{case.name}.flc"
    argv = [str(source), *case.options, *COMMON, "-o", str(out)]
    code = flcompile_main(argv)
    if code != 0:
        raise RuntimeError(f"flcompile {' '.join(argv)} exited with {code}")
    return {"argv": [f"{case.model}.onnx", *case.options, *COMMON], **digest(out)}


def collect(cases: Sequence[Case]) -> dict:
    """Every case's digest, compiled in a scratch directory."""
    with tempfile.TemporaryDirectory(prefix="flgolden-") as tmp:
        return {case.name: run_case(case, Path(tmp)) for case in cases}


def differences(expected: dict, actual: dict) -> list[str]:
    """One line per case, file or plan.json key whose checksum changed, appeared or vanished."""
    lines = []
    for name in sorted(expected.keys() | actual.keys()):
        if name not in actual or name not in expected:
            lines.append(f"{name}: case {'missing' if name not in actual else 'new'}")
            continue
        old, new = expected[name], actual[name]
        if old["argv"] != new["argv"]:
            lines.append(f"{name}: options changed: {old['argv']} -> {new['argv']}")
        for section in ("files", "plan.json keys"):
            for key in sorted(old[section].keys() | new[section].keys()):
                before, after = old[section].get(key), new[section].get(key)
                if before != after:
                    what = "missing" if after is None else "new" if before is None else "differs"
                    label = f"plan.json[{key!r}]" if section != "files" else key
                    lines.append(f"{name}: {label} {what}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Check or update the golden checksums; returns the exit code (1 when they differ)."""
    p = argparse.ArgumentParser(prog="golden.py", description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="compare with the golden file")
    mode.add_argument("--update", action="store_true", help="rewrite the golden file")
    p.add_argument(
        "--cases",
        type=lambda s: s.split(","),
        help="comma list of case names to run (default all; --check only)",
    )
    p.add_argument("--golden", type=Path, default=GOLDEN, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    cases = [c for c in CASES if args.cases is None or c.name in args.cases]
    if args.cases is not None and (args.update or len(cases) != len(set(args.cases))):
        p.error(f"--cases: choose from {','.join(c.name for c in CASES)} (and only with --check)")
    actual = collect(cases)
    if args.update:
        args.golden.parent.mkdir(parents=True, exist_ok=True)
        args.golden.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
        print(f"wrote {args.golden} ({len(actual)} cases)")
        return 0
    expected = json.loads(args.golden.read_text())
    if args.cases is not None:
        expected = {k: v for k, v in expected.items() if k in args.cases}
    diff = differences(expected, actual)
    for line in diff:
        print(line)
    print(f"golden: {len(actual)} case(s), {'differences above' if diff else 'all equal'}")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
