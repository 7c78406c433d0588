"""The whole pass: load → normalize → analyse → search → emit → verify → time → write.

`compile_model` is what `flcompile MODEL --rate R -o OUT` runs. Output is all or nothing: the
files are written to a temporary directory beside OUT, verified there, and renamed into place.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import onnx
import onnx_graphsurgeon as gs
from tqdm import tqdm

from flcompile.atomic_output import atomic_directory, check_writable
from flcompile.costs import ComputeModel, LinkModel
from flcompile.costs.untiled import ModelCosts, SingleCut, model_costs
from flcompile.emit import (
    STAGES_JSON,
    Emitted,
    check_emitted,
    emit_fused,
    emit_single_cut,
    fused_prefix,
    to_model,
)
from flcompile.errors import BadInputError, VerificationError, user_path_errors
from flcompile.load import LoadedModel, load_model
from flcompile.model_io import file_sizes, save_model
from flcompile.output_guard import check_protected
from flcompile.passes.fusable import Candidate, FusablePrefix, find_candidates, find_prefix
from flcompile.passes.normalize import normalize
from flcompile.plan_json import build_plan_json
from flcompile.schedule import PathTimes, Timeline
from flcompile.search import SearchOptions, SearchResult, SearchSpace, build_space, solve
from flcompile.simulate import simulate
from flcompile.timeline_plot import plot_timelines
from flcompile.timing import MeasuredTimes, time_split
from flcompile.verify import (
    FusedCheck,
    SessionCache,
    VerifyOptions,
    VerifyResult,
    make_feeds,
    verify_split,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompileOptions:
    """Everything `compile_model` needs besides the model and the output directory."""

    compute: ComputeModel = field(default_factory=ComputeModel)
    link: LinkModel = field(default_factory=lambda: LinkModel(rate_MBps=1.8))
    search: SearchOptions = field(default_factory=SearchOptions)
    input_shapes: dict | None = None
    verify: bool = True
    seed: int = 0
    input_path: str | None = None
    rtol: float = 1e-5
    atol: float = 1e-5
    runs: int = 10
    device_threads: int = 1
    edge_threads: int | None = None
    emit_stages: bool = False
    emit_tiled: bool = False
    debug: bool = False
    progress: bool = False


@dataclass(frozen=True, eq=False)
class Analysis:
    """A loaded model in the tiler's canonical form, with its prefix and candidates."""

    loaded: LoadedModel
    normalized: onnx.ModelProto
    graph: gs.Graph
    prefix: FusablePrefix
    candidates: list[Candidate]
    costs: ModelCosts

    def space(
        self, compute: ComputeModel, options: SearchOptions, *, progress: bool = False
    ) -> SearchSpace:
        """This model's search space (see `flcompile.search.build_space`)."""
        args = (self.graph, self.prefix, self.candidates, self.costs, compute, options)
        return build_space(*args, progress=progress)

    def search(
        self,
        compute: ComputeModel,
        link: LinkModel,
        options: SearchOptions,
        *,
        progress: bool = False,
    ) -> SearchResult:
        """The plan search: this model's space solved at `link` with `options.solver`."""
        space = self.space(compute, options, progress=progress)
        return solve(space, link, options.solver, progress=progress)


@dataclass(frozen=True, eq=False)
class CompileResult:
    """What a compile produced, for the CLI summary, tools and tests."""

    analysis: Analysis
    result: SearchResult
    plan: dict
    timeline: Timeline
    verify: VerifyResult | None
    measured: MeasuredTimes | None
    phase_s: dict[str, float]
    out_dir: Path | None
    written: dict[str, int] = field(default_factory=dict)  # OUT's files: relative path -> bytes


def analyse(loaded: LoadedModel) -> Analysis:
    """Normalize the model and find its fusable prefix, candidate F tensors and node costs.

    Normalizing keeps every inferred shape: it folds constants and bypasses nodes but makes
    no new activation tensors, so no second inference is needed.
    """
    graph = gs.import_onnx(loaded.model)
    normalize(graph)
    normalized = to_model(graph, loaded.model)
    prefix = find_prefix(graph, loaded.path)
    candidates = find_candidates(graph, prefix)
    return Analysis(loaded, normalized, graph, prefix, candidates, model_costs(graph))


def single_cut_timeline(cut: SingleCut) -> Timeline:
    """A plan without fused layers as a one-path timeline: device, then link, then edge."""
    d = cut.device_s
    link_end = d + cut.link_s
    end = link_end + cut.edge_s
    return Timeline((PathTimes(0, 0.0, d, d, link_end, link_end, end),), end, end + cut.return_s)


def _summary_metadata(result: SearchResult) -> dict:
    if result.use_fused:
        plan = result.fused
        return {
            "plan": "fused",
            "fused_tensor": plan.candidate.tensor,
            "grid": "x".join(map(str, plan.tiling.grid)),
            "solver": plan.solver,
            "predicted_s": f"{plan.predicted_s:.6g}",
            "nfl_s": f"{result.baselines.nfl.total_s:.6g}",
        }
    return {
        "plan": "single-cut",
        "cut": result.baselines.nfl.label,
        "predicted_s": f"{result.predicted_s:.6g}",
    }


class _Phases:
    """Wall time per phase, and a status line (stderr) naming the phase that is running."""

    LABELS: ClassVar[dict[str, str]] = {
        "load": "loading and normalizing",
        "plan": "planning",
        "rewrite": "rewriting",
        "write": "writing",
        "verify": "verifying in onnxruntime",
        "time": "timing in onnxruntime",
    }

    def __init__(self, progress: bool) -> None:
        self.seconds: dict[str, float] = {}
        self.status = tqdm(
            total=0, bar_format="flcompile: {desc}…", disable=not progress, leave=False
        )

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.status.set_description_str(self.LABELS[name])
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def close(self) -> None:
        """Clear the status line."""
        self.status.close()


def _nfl_segments(cut: SingleCut) -> list[tuple[str, float, float, str]]:
    t = single_cut_timeline(cut).paths[0]
    return [
        ("device", t.device_start, t.device_end, "local"),
        ("link", t.link_start, t.link_end, "send"),
        ("edge", t.edge_start, t.edge_end, "rest"),
    ]


def compile_model(
    source: str, out_dir: str | Path | None, options: CompileOptions
) -> CompileResult:
    """Compile `source` (a file or zoo name) into OUT: device/edge models, plan, plot.

    Args:
        source: an .onnx path or a zoo model name.
        out_dir: where the results go; None plans and verifies in a scratch dir, writing nothing.
        options: the cost models, search space and checks.

    Returns:
        The plan and what verification and timing measured.

    Raises:
        FlCompileError: a user error (exit 2), failed verification (exit 3) or a bug (exit 4).
    """
    inputs = [p for p in (source, options.input_path) if p is not None and os.path.lexists(p)]
    if out_dir is not None:
        check_writable(out_dir, protected=inputs)
    phases = _Phases(options.progress)
    try:
        with phases("load"):
            loaded = load_model(source, input_shapes=options.input_shapes)
            inputs += loaded.data_files
            if out_dir is not None:
                check_protected(Path(os.path.abspath(out_dir)), loaded.data_files)
            analysis = analyse(loaded)
            feeds = make_feeds(loaded.model, seed=options.seed, input_path=options.input_path)
        with phases("plan"):
            result = analysis.search(
                options.compute, options.link, options.search, progress=options.progress
            )
        with phases("rewrite"):
            emitted, timeline = _emit(analysis, result, options)
        with (
            _target_dir(out_dir) as target,
            atomic_directory(target, protected=inputs) as tmp,
            SessionCache() as sessions,  # closed first: verification and timing share it
        ):
            verified, measured, plan = _write_and_check(
                tmp,
                target,
                inputs,
                loaded,
                result,
                emitted,
                timeline,
                feeds,
                options,
                phases,
                sessions,
            )
    finally:
        phases.close()
    out = Path(out_dir) if out_dir is not None else None
    written = file_sizes(out) if out is not None else {}
    return CompileResult(
        analysis, result, plan, timeline, verified, measured, phases.seconds, out, written
    )


def _emit(
    analysis: Analysis, result: SearchResult, options: CompileOptions
) -> tuple[Emitted, Timeline]:
    """The chosen plan's models and simulated timeline."""
    summary = _summary_metadata(result)
    if result.use_fused:
        plan = result.fused
        emitted = emit_fused(analysis.normalized, plan, summary, stages=options.emit_stages)
        return emitted, simulate(plan.table, plan.schedule)
    cut = result.baselines.nfl
    emitted = emit_single_cut(analysis.normalized, cut, analysis.costs.nodes, summary)
    return emitted, single_cut_timeline(cut)


@contextmanager
def _target_dir(out_dir: str | Path | None) -> Iterator[Path]:
    """OUT itself, or a scratch directory removed afterwards when there is no OUT."""
    if out_dir is not None:
        yield Path(out_dir)
        return
    with tempfile.TemporaryDirectory(prefix="flcompile-") as scratch:
        yield Path(scratch) / "out"


def _write_and_check(
    tmp: Path,
    target: Path,
    inputs: list[str],
    loaded: LoadedModel,
    result: SearchResult,
    emitted: Emitted,
    timeline: Timeline,
    feeds: dict,
    options: CompileOptions,
    phases: _Phases,
    sessions: SessionCache,
) -> tuple[VerifyResult | None, MeasuredTimes | None, dict]:
    """Write the models into `tmp`, check and verify them there, time them, write the plan."""
    fused = result.fused.candidate.tensor if result.use_fused and options.verify else None
    with phases("verify"):  # before writing: saving with external data rewrites the protos
        tiled_prefix = fused_prefix(emitted.tiled, fused) if fused else None
        original_prefix = fused_prefix(loaded.model, fused) if fused else None
    with phases("write"), _writing(target):
        for name, model in [
            ("device.onnx", emitted.device),
            ("edge.onnx", emitted.edge),
            *([("tiled.onnx", emitted.tiled)] if options.emit_tiled else []),
            *emitted.stages.items(),
        ]:
            written = save_model(model, tmp / name)
            check_emitted(tmp / name if written is None else written, name)
        if emitted.stages_json is not None:
            (tmp / STAGES_JSON).write_text(json.dumps(emitted.stages_json, indent=2) + "\n")
    original = loaded.original
    verified = None
    if options.verify:
        with phases("verify"):
            check = VerifyOptions(
                rtol=options.rtol,
                atol=options.atol,
                seed=options.seed,
                device_threads=options.device_threads,
                edge_threads=options.edge_threads,
                fused=FusedCheck(fused, tiled_prefix, original_prefix) if fused else None,
            )
            verified = verify_split(
                original,
                tmp / "device.onnx",
                tmp / "edge.onnx",
                feeds,
                options=check,
                sessions=sessions,
            )
        if not verified.passed:
            _keep_failed(tmp, target, inputs, options.debug)
            verified.raise_if_failed(loaded.path)
    measured = None
    if options.runs > 0:
        with phases("time"):
            measured = time_split(
                original,
                tmp / "device.onnx",
                tmp / "edge.onnx",
                feeds,
                device_threads=options.device_threads,
                edge_threads=options.edge_threads,
                runs=options.runs,
                sessions=sessions,
            )
    with phases("write"), _writing(target):
        plan = build_plan_json(
            loaded,
            result,
            options.compute,
            options.link,
            options.search.solver,
            timeline if result.use_fused else None,
            verified.to_json() if verified else None,
            measured.to_json() if measured else None,
        )
        (tmp / "plan.json").write_text(json.dumps(plan, indent=2) + "\n")
        plot_timelines(
            tmp / "timeline.png",
            timeline,
            nfl_segments=_nfl_segments(result.baselines.nfl),
            title=f"{loaded.name}: {_title(result)}",
            post_fuse_s=result.fused.table.post_fuse_s if result.use_fused else 0.0,
            labels=None if result.use_fused else {0: result.baselines.nfl.label},
            plan_label=None if result.use_fused else "plan without fused layers",
        )
    return verified, measured, plan


def _title(result: SearchResult) -> str:
    if result.use_fused:
        plan = result.fused
        r, c = plan.tiling.grid
        return f"{plan.solver} {r}x{c} at {plan.candidate.tensor}"
    return f"no fused layers ({result.baselines.nfl.label})"


def _writing(target: Path) -> AbstractContextManager[None]:
    """A failed write into OUT's temp dir (full disk, quota) is the user's to fix: exit 2."""
    return user_path_errors(target, "write the output", hint="check the free space")


def _keep_failed(tmp: Path, target: Path, inputs: list[str], debug: bool) -> None:
    """With --debug, copy the models that failed verification to OUT.failed for inspection.

    OUT.failed follows OUT's rules: only a missing, empty or earlier flcompile output is
    replaced; otherwise the models are not kept, and the log says why.
    """
    if not debug:
        return
    failed = target.with_name(target.name + ".failed")
    try:
        with atomic_directory(failed, protected=inputs) as keep, _writing(failed):
            shutil.copytree(tmp, keep, dirs_exist_ok=True)
    except BadInputError as e:
        log.error("the models that failed verification were not kept: %s", e.one_line())
        return
    log.error("the models that failed verification are in %s", failed)


__all__ = ["CompileOptions", "CompileResult", "VerificationError", "analyse", "compile_model"]
