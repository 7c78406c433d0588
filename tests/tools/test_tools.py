"""Each tool in tools/ run on a tiny case: small zoo variants (hidden --width/--size), few
rates, grids up to 2x2. The checks are the contracts the sweep's numbers must keep: opt
equals BF where BF runs, MW never beats BF, the lower bound is below every plan, and the
sweep's "best" rows are what flcompile's own search finds.
"""

from __future__ import annotations

import csv
import math

import _common
import bench_compile
import bench_solvers
import pytest
import sweep

from flcompile.costs import LinkModel
from flcompile.search import SearchOptions

TINY = ["--width", "0.25", "--size", "64"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REQUIRED = {
    "model",
    "rate_MBps",
    "tiles",
    "solver",
    "grid",
    "F",
    "predicted_s",
    "nfl_s",
    "lower_bound_s",
    "lower_bound_space_s",
    "solve_s",
}


def _read_csv(path):
    with path.open() as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One tiny sweep: alexnet (BF admits every F at 2x2) and squeezenet (BF refuses some)."""
    out = tmp_path_factory.mktemp("sweep")
    argv = ["--models", "alexnet,squeezenet", "--rates", "1.1,2.5", "--max-grid", "2x2"]
    assert sweep.main([*argv, *TINY, "-o", str(out)]) == 0
    return out


def test_sweep_csv_rows_and_columns(swept):
    columns, rows = _read_csv(swept / "sweep.csv")
    assert set(columns) >= REQUIRED
    assert len(rows) == 2 * 2 * len(sweep.SOLVER_ROWS)
    keys = {(r["model"], float(r["rate_MBps"]), r["solver"]) for r in rows}
    assert keys == {
        (m, rate, s)
        for m in ("alexnet", "squeezenet")
        for rate in (1.1, 2.5)
        for s in sweep.SOLVER_ROWS
    }


def test_sweep_solver_contracts(swept):
    _, rows = _read_csv(swept / "sweep.csv")
    by = {(r["model"], r["rate_MBps"], r["solver"]): r for r in rows}
    compared = 0
    for (model, rate, solver), r in by.items():
        predicted = float(r["predicted_s"])
        assert math.isfinite(predicted), r
        assert float(r["lower_bound_s"]) <= predicted * (1 + 1e-12), r
        # Every row's plan lies in the searched space (grids up to --max-grid).
        assert float(r["lower_bound_space_s"]) <= predicted * (1 + 1e-12), r
        if solver != "bf_2x2":
            continue
        # Per F the tool itself checks opt == BF and MW >= BF; it notes any violation.
        assert "opt != bf" not in r["note"] and "mw < bf" not in r["note"], r
        bf = predicted
        opt = float(by[(model, rate, "opt_2x2")]["predicted_s"])
        mw = float(by[(model, rate, "mw_2x2")]["predicted_s"])
        assert opt <= bf * (1 + 1e-9)
        if "refused" not in r["note"]:  # BF ran on every F: the best over F must agree too
            assert opt == pytest.approx(bf, rel=1e-9, abs=0)
            assert mw >= bf * (1 - 1e-9)
            compared += 1
        kxk = float(by[(model, rate, "opt_kxk")]["predicted_s"])
        assert kxk <= float(by[(model, rate, "uniform_kxk")]["predicted_s"]) * (1 + 1e-12)
        assert kxk <= min(opt, float(by[(model, rate, "mw_kxk")]["predicted_s"])) * (1 + 1e-12)
    assert compared >= 2  # alexnet's two rates


def test_sweep_outputs(swept):
    assert (swept / "sweep.png").read_bytes().startswith(PNG_MAGIC)
    summary = (swept / "summary.md").read_text()
    assert "edge model: serial (edge_concurrency 1)" in summary
    assert "| alexnet |" in summary and "| squeezenet |" in summary


@pytest.mark.parametrize(("paper", "tiles"), [(False, "free"), (True, "uniform")])
def test_sweep_best_matches_search(paper, tiles):
    """The sweep's rows from one space solved per rate are what a compile's search finds."""
    analysis = _common.load_analysis("squeezenet", 0.25, 64)
    compute = _common.compute_model(paper, None)
    space = analysis.space(compute, SearchOptions(max_grid=(3, 3), tiles=tiles))
    rows, _ = sweep.sweep_rate("squeezenet", space, 1.7, (2, 2), tiles)
    by = {r.solver: r for r in rows}
    assert all(r.tiles == tiles for r in rows)
    if tiles == "free":  # here the boundary search finds a faster plan with unequal tiles
        assert by["opt_kxk"].predicted_s < by["uniform_kxk"].predicted_s
        assert "unequal tiles" in by["opt_kxk"].note
    for solver, row, searched in (
        ("best", "opt_kxk", tiles),
        ("mw", "mw_kxk", "uniform"),
        ("best", "uniform_kxk", "uniform"),
    ):
        options = SearchOptions(solver, max_grid=(2, 2), tiles=searched)
        found = analysis.search(compute, LinkModel(1.7), options)
        assert by[row].predicted_s == found.fused.predicted_s
        assert found.fused.candidate.tensor == by[row].F
        assert by[row].grid == _common.grid_text(found.fused.tiling.grid)
        assert by[row].lower_bound_s == found.lower_bound_s
        # The rows carry the default search's space bound (which covers its unequal tilings
        # too); it is below every plan of that search.
        if solver == "best" and searched == tiles:
            assert by[row].lower_bound_space_s == found.lower_bound_space_s
        assert by[row].lower_bound_space_s <= by["opt_kxk"].predicted_s + 1e-12
        assert by["nfl"].predicted_s == found.baselines.nfl.total_s


def test_bench_solvers_prints_quality(capsys):
    argv = ["--models", "alexnet", "--grids", "2x2,3x3", "--repeats", "1", *TINY]
    assert bench_solvers.main([*argv, "--tiles", "free", "--search-repeats", "1"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("alexnet")]
    assert len(lines) == 3  # two grids, and the whole search
    two = dict(zip(bench_solvers.HEADERS, lines[0].split(), strict=True))
    assert two["grid"] == "2x2"
    assert float(two["opt/BF"]) == pytest.approx(1.0, abs=5e-5)
    assert float(two["MW/BF"]) >= 1.0
    # Unequal tiles never lose to opt on equal ones (the search keeps its seed).
    assert float(two["opt/free"]) >= 1.0 and float(two["free ms"]) > 0
    search = dict(zip(bench_solvers.SEARCH_HEADERS, lines[2].split(), strict=True))
    assert float(search["uniform/free"]) >= 1.0
    assert float(search["whole search s"]) >= float(search["free solve s"]) > 0


def test_bench_compile_csv(tmp_path, capsys):
    argv = ["--models", "squeezenet", "--repeats", "1", "--runs", "1", "--max-grid", "2x2"]
    assert bench_compile.main([*argv, *TINY, "-o", str(tmp_path)]) == 0
    columns, rows = _read_csv(tmp_path / "bench_compile.csv")
    phases = {f"{p}_s" for p in bench_compile.PHASES}
    assert set(columns) >= phases | {"total_s", "cpu_s", "mw_search_s"}
    assert len(rows) == 1 and rows[0]["verified"] == "True"
    assert float(rows[0]["total_s"]) >= float(rows[0]["plan_s"]) > 0
    assert float(rows[0]["cpu_s"]) > 0
    assert "MW search" in capsys.readouterr().out
    assert bench_compile.main([*argv, *TINY, "--no-search", "-o", str(tmp_path)]) == 0
    _, rows = _read_csv(tmp_path / "bench_compile.csv")
    assert rows[0]["mw_search_s"] == "nan" and float(rows[0]["total_s"]) > 0
    assert "no search" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("tool", "argv"),
    [
        (sweep, ["--rates", "3.0:1.1:0.1", "-o", "x"]),
        (sweep, ["--models", "lenet", "-o", "x"]),
        (bench_solvers, ["--grids", "2y2"]),
        (bench_compile, ["--repeats", "0"]),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tool, argv, capsys):
    with pytest.raises(SystemExit) as e:
        tool.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error:" in err


@pytest.mark.parametrize("tool", [sweep, bench_compile])
def test_tools_never_write_into_a_users_folder(tool, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    argv = ["--models", "squeezenet", "--rates", "1.8"] if tool is sweep else ["--repeats", "1"]
    assert tool.main([*argv, *TINY, "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not an flcompile output" in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_rate_list():
    rates = _common.rate_list("1.1:3.0:0.1")
    assert len(rates) == 20 and rates[0] == 1.1 and rates[-1] == 3.0
    assert _common.rate_list("1.3,1.8") == [1.3, 1.8]


def test_bound_gap_orders_its_latencies(capsys) -> None:
    import bound_gap

    assert bound_gap.main(["--models", "squeezenet", "--rate", "1.8", "--exact-grids", "2x2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    row = next(line for line in lines if line.startswith("squeezenet")).split()
    fluid, halo, space, best, nfl, best_over_space, space_over_fluid = map(float, row[1:8])
    assert fluid <= best <= nfl  # the bound is below the plan, and the plan never above NFL
    assert space <= best  # no plan of the space beats the space bound
    assert halo > fluid  # real tiles pay halos the fluid relaxation does not
    assert best_over_space == pytest.approx(best / space, abs=2e-3)
    assert space_over_fluid == pytest.approx(space / fluid, abs=2e-3)
    # --exact-grids: BF's proven optimum of a 2x2 table, at or above that table's bound
    exact = lines[-1].split(": ", 1)[1]
    assert lines[-1].split()[1] == "2x2:"
    optimum, table, ratio = (float(part.split()[-1]) for part in exact.split(", "))
    assert 0 < table <= optimum + 1e-6
    assert ratio == pytest.approx(optimum / table, rel=1e-3)


def test_profile_accuracy_holds_out_stage_models(capsys) -> None:
    import profile_accuracy

    argv = ["--models", "squeezenet", "--grids", "1x2", "--runs", "1", "--repeats", "1"]
    assert profile_accuracy.main([*argv, "--verbose", *TINY]) == 0
    out = capsys.readouterr().out
    assert any(line.split()[:2] == ["squeezenet", "1x2"] for line in out.splitlines())
    assert "edge_fuse" in out and "device_p0" in out  # the held-out grid's stage models
    for law in ("per_kind", "laws_only", "overall", "overall_flops"):
        assert f"{law}: median" in out
