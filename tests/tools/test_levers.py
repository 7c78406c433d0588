"""tools/levers.py on a tiny case: each setting's latency is the default search's, in order."""

from __future__ import annotations

import csv

import levers
import pytest
from _common import load_analysis

from flcompile.costs import LinkModel, compute_model
from flcompile.search import solve

TINY = ["--width", "0.25", "--size", "64"]


def test_each_setting_is_the_search_with_its_levers(tmp_path, capsys):
    out = tmp_path / "levers"
    assert levers.main(["--models", "squeezenet", "--rates", "1.8", *TINY, "-o", str(out)]) == 0
    with (out / "levers.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    analysis = load_analysis("squeezenet", 0.25, 64)
    compute = compute_model(False, None)
    # The default setting is the search with its levers (the others differ only in options).
    options = levers.SETTINGS[levers.DEFAULT_SETTING]
    found = solve(analysis.space(compute, options), LinkModel(rate_MBps=1.8), "best")
    assert float(row[f"{levers.DEFAULT_SETTING}_s"]) == pytest.approx(found.predicted_s, rel=1e-12)
    assert found.predicted_s <= found.baselines.nfl.total_s
    latencies = [float(row[f"{key}_s"]) for key in levers.SETTINGS]
    assert all(0 < s <= float(row["nfl_s"]) + 1e-12 for s in latencies)
    paper, reuse, inter, fluid = (
        float(row[k]) for k in ("paper_s", "reuse_s", "inter_s", "fluid_s")
    )
    assert float(row["gap_closed"]) == pytest.approx((paper - inter) / (paper - fluid))
    assert float(row["reuse_gap_closed"]) == pytest.approx((paper - reuse) / (paper - fluid))
    assert inter <= reuse  # intermediate reuse only adds plans to the search
    assert float(row["space_s"]) <= inter  # the space bound lies below the default's plan
    assert "| squeezenet |" in capsys.readouterr().out
    assert (out / "summary.md").read_text().startswith("# Levers beyond the paper")
