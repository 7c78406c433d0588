"""The two plan kinds behind one `Plan`: same surface, consistent words and numbers."""

from __future__ import annotations

import pytest

from flcompile import models
from flcompile.compile import analyse
from flcompile.costs import ComputeModel, LinkModel
from flcompile.load import LoadedModel, infer_shapes
from flcompile.plan_json import KEYS
from flcompile.plans import FusedPlan, Plan, SingleCutPlan
from flcompile.search import SearchOptions


@pytest.fixture(scope="module")
def analysis():
    model = models.build("squeezenet", width=0.25, size=64)
    return analyse(LoadedModel(infer_shapes(model, "t"), "zoo:t", "0", "t"))


def _plan(analysis, rate: float = 1.8, **options):
    link = LinkModel(rate_MBps=rate)
    return analysis.search(ComputeModel(), link, SearchOptions(max_grid=(3, 3), **options)).plan


def _members(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")}


def test_both_kinds_provide_every_member_of_the_protocol() -> None:
    wanted = _members(Plan)
    assert {"emit", "json_section", "summary_lines", "timeline", "title"} <= wanted
    for kind in (FusedPlan, SingleCutPlan):
        provided = _members(kind) | set(kind.__dataclass_fields__)
        assert wanted <= provided, kind.__name__


def test_the_kinds_are_chosen_by_the_search(analysis) -> None:
    fused = _plan(analysis, grid=(2, 2))
    assert isinstance(fused, FusedPlan) and fused.verify_tensor == fused.candidate.tensor
    nfl = _plan(analysis, solver="nfl")
    assert isinstance(nfl, SingleCutPlan) and nfl.verify_tensor is None
    assert nfl.reason == "--solver nfl"
    slow = _plan(analysis, rate=1e-3)  # sending anything costs more than computing it all
    assert isinstance(slow, SingleCutPlan) and slow.cut.label == "local-only"
    assert slow.reason == "a single cut is faster than every fused-layer plan"


@pytest.mark.parametrize("options", [{"grid": (2, 2)}, {"solver": "nfl"}])
def test_each_kind_agrees_with_itself(analysis, options) -> None:
    plan = _plan(analysis, **options)
    assert plan.timeline().finish == pytest.approx(plan.predicted_s, rel=1e-12)
    section = plan.json_section()
    assert set(section) == {
        "solver",
        "fused",
        "paths",
        "nfl_plan",
        "post_fuse_edge_s",
        "return_s",
    }
    assert set(section) < set(KEYS) and section["solver"] == plan.solver
    assert plan.metadata(1.0)["predicted_s"] == f"{plan.predicted_s:.6g}"
    words = plan.summary_lines(section)
    assert words[0].startswith("plan       ")
    assert (section["fused"] is None) == (section["nfl_plan"] is not None)
    assert plan.title() and plan.measured_meaning() and plan.describe()
