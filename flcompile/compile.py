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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import onnx
import onnx_graphsurgeon as gs
from tqdm import tqdm

from flcompile.atomic_output import atomic_directory, check_writable
from flcompile.costs import ComputeModel, LinkModel
from flcompile.costs.untiled import ModelCosts, model_costs
from flcompile.costs.wire import DEFAULT_SEND_DTYPE
from flcompile.emit import STAGES_JSON, Emitted, check_emitted, fused_prefix, to_model
from flcompile.errors import BadInputError, VerificationError, user_path_errors
from flcompile.load import LoadedModel, load_model
from flcompile.model_io import file_sizes, save_model
from flcompile.output_guard import check_protected
from flcompile.passes.fusable import Candidate, FusablePrefix, find_candidates, find_prefix
from flcompile.passes.normalize import normalize
from flcompile.plan_json import build_plan_json
from flcompile.plans import single_cut_segments
from flcompile.schedule import Timeline
from flcompile.search import SearchOptions, SearchResult, SearchSpace, build_space, solve
from flcompile.send_accuracy import EXACT_TOLERANCE, default_tolerance
from flcompile.timeline_layout import layout_timelines
from flcompile.timeline_plot import plot_timelines
from flcompile.timing import MeasuredTimes, TimingOptions, time_split
from flcompile.verify import (
    FusedCheck,
    SessionCache,
    VerifyOptions,
    VerifyResult,
    make_feeds,
    verify_split_inputs,
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
    rtol: float | None = None  # None: the default for the plan's send dtype
    atol: float | None = None
    verify_inputs: int = 1
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
        return build_space(self, compute, options, progress=progress)

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
            options = replace(options, compute=options.compute.for_model(analysis.costs.keys))
            feeds = make_feeds(loaded.model, seed=options.seed, input_path=options.input_path)
            more = [
                make_feeds(loaded.model, seed=options.seed + i)
                for i in range(1, options.verify_inputs)
            ]
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
            job = _Job(
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
                more,
            )
            verified, measured, plan = _write_and_check(job)
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
    plan = result.plan
    summary = plan.metadata(result.baselines.nfl.total_s)
    send_dtype = result.send_dtype
    if send_dtype != DEFAULT_SEND_DTYPE:
        summary["send_dtype"] = send_dtype
    emitted = plan.emit(
        analysis.normalized,
        analysis.costs.nodes,
        summary,
        stages=options.emit_stages,
        send_dtype=send_dtype,
    )
    return emitted, plan.timeline()


@contextmanager
def _target_dir(out_dir: str | Path | None) -> Iterator[Path]:
    """OUT itself, or a scratch directory removed afterwards when there is no OUT."""
    if out_dir is not None:
        yield Path(out_dir)
        return
    with tempfile.TemporaryDirectory(prefix="flcompile-") as scratch:
        yield Path(scratch) / "out"


@dataclass(frozen=True, eq=False)
class _Job:
    """One compile's state while its outputs are written into `tmp` and checked there."""

    tmp: Path
    target: Path
    inputs: list[str]
    loaded: LoadedModel
    result: SearchResult
    emitted: Emitted
    timeline: Timeline
    feeds: dict
    options: CompileOptions
    phases: _Phases
    sessions: SessionCache
    more_feeds: list[dict] = field(default_factory=list)  # --verify-inputs beyond the first


def _write_and_check(job: _Job) -> tuple[VerifyResult | None, MeasuredTimes | None, dict]:
    """Write the models into `tmp`, check and verify them there, time them, write the plan."""
    with job.phases("verify"):  # before writing: saving with external data rewrites the protos
        prefixes = _fused_prefixes(job)
    with job.phases("write"), _writing(job.target):
        _write_models(job)
    verified = _verify(job, prefixes)
    measured = _time(job)
    with job.phases("write"), _writing(job.target):
        plan = _write_plan(job, verified, measured)
        _plot(job)
    return verified, measured, plan


def _fused_prefixes(job: _Job) -> tuple[onnx.ModelProto | None, onnx.ModelProto | None]:
    """The tiled and original models' parts up to the plan's verify tensor, if it has one."""
    fused = job.result.plan.verify_tensor if job.options.verify else None
    if fused is None:
        return None, None
    return fused_prefix(job.emitted.tiled, fused), fused_prefix(job.loaded.model, fused)


def _write_models(job: _Job) -> None:
    """Save every emitted model (and stages.json) into `tmp`, each checked by onnx.checker."""
    emitted, tmp = job.emitted, job.tmp
    for name, model in [
        ("device.onnx", emitted.device),
        ("edge.onnx", emitted.edge),
        *([("tiled.onnx", emitted.tiled)] if job.options.emit_tiled else []),
        *emitted.stages.items(),
    ]:
        written = save_model(model, tmp / name)
        check_emitted(tmp / name if written is None else written, name)
    if emitted.stages_json is not None:
        (tmp / STAGES_JSON).write_text(json.dumps(emitted.stages_json, indent=2) + "\n")


def _verify(
    job: _Job, prefixes: tuple[onnx.ModelProto | None, onnx.ModelProto | None]
) -> VerifyResult | None:
    """Verify the written split against the original; a failure raises (exit 3)."""
    options = job.options
    if not options.verify:
        return None
    tiled_prefix, original_prefix = prefixes
    fused = job.result.plan.verify_tensor
    tolerance = default_tolerance(job.result.send_dtype)
    exact = (_given(options.rtol, EXACT_TOLERANCE), _given(options.atol, EXACT_TOLERANCE))
    check = VerifyOptions(
        rtol=_given(options.rtol, tolerance),
        atol=_given(options.atol, tolerance),
        seed=options.seed,
        device_threads=options.device_threads,
        edge_threads=options.edge_threads,
        fused=FusedCheck(fused, tiled_prefix, original_prefix, exact) if fused else None,
        cast_sends=tuple(job.emitted.cast_sends),
    )
    with job.phases("verify"):
        verified = verify_split_inputs(
            job.loaded.original,
            job.tmp / "device.onnx",
            job.tmp / "edge.onnx",
            [job.feeds, *job.more_feeds],
            options=check,
            sessions=job.sessions,
        )
    if not verified.passed:
        _keep_failed(job.tmp, job.target, job.inputs, options.debug)
        verified.raise_if_failed(job.loaded.path)
    return verified


def _given(value: float | None, default: float) -> float:
    """An option's value, or its default when it was not given."""
    return default if value is None else value


def _time(job: _Job) -> MeasuredTimes | None:
    """Time the written split and the original in onnxruntime (None with --runs 0)."""
    options = job.options
    if options.runs <= 0:
        return None
    with job.phases("time"):
        return time_split(
            job.loaded.original,
            job.tmp / "device.onnx",
            job.tmp / "edge.onnx",
            job.feeds,
            options=TimingOptions(
                runs=options.runs,
                device_threads=options.device_threads,
                edge_threads=options.edge_threads,
            ),
            sessions=job.sessions,
        )


def _write_plan(job: _Job, verified: VerifyResult | None, measured: MeasuredTimes | None) -> dict:
    """Write plan.json into `tmp`; returns its content."""
    plan = build_plan_json(
        job.loaded,
        job.result,
        job.options.compute,
        job.options.link,
        verified.to_json() if verified else None,
        measured.to_json() if measured else None,
    )
    (job.tmp / "plan.json").write_text(json.dumps(plan, indent=2) + "\n")
    return plan


def _plot(job: _Job) -> None:
    """Draw timeline.png: the chosen plan above the best single cut."""
    plan = job.result.plan
    nfl = single_cut_segments(job.result.baselines.nfl)
    layout = layout_timelines(job.timeline, nfl, **plan.plot_options())
    plot_timelines(job.tmp / "timeline.png", layout, title=f"{job.loaded.name}: {plan.title()}")


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
