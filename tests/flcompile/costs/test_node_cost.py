"""The compute model from options, its kind, and the edge model's words."""

from __future__ import annotations

import pytest

from flcompile.costs import (
    PAPER_DEVICE_FLOPS,
    PAPER_EDGE_FLOPS,
    ComputeModel,
    compute_model,
    edge_model_words,
)


def test_compute_model_defaults_to_table_i_and_a_serial_edge() -> None:
    assert compute_model() == ComputeModel(PAPER_DEVICE_FLOPS, PAPER_EDGE_FLOPS, 0.0, 0.0, 1)
    assert compute_model(paper=True).edge_concurrency == 0
    assert compute_model(True, 3).edge_concurrency == 3  # --edge-concurrency wins over --paper
    given = compute_model(device_flops=1e9, edge_flops=2e9, overhead_dev_s=0.1)
    assert (given.device_flops, given.edge_flops, given.overhead_dev_s) == (1e9, 2e9, 0.1)


def test_seconds_are_overheads_plus_flops_over_speed() -> None:
    model = ComputeModel(device_flops=1e3, edge_flops=1e4, overhead_dev_s=0.5, overhead_edge_s=2)
    assert model.device_s(2e3, nodes=2) == pytest.approx(3.0)
    assert model.edge_s(2e4, nodes=3) == pytest.approx(8.0)
    assert model.kind == "analytic"


@pytest.mark.parametrize(
    ("k", "words"), [(0, "unlimited (paper's Eq. 4)"), (1, "serial"), (4, "4 paths at once")]
)
def test_edge_model_words(k: int, words: str) -> None:
    assert edge_model_words(k) == words
