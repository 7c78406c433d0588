"""Tests for the per-path Pareto filtering of cuts."""

from __future__ import annotations

import numpy as np

from flcompile.costs.table import CostTable
from flcompile.simulate import makespan
from flcompile.solvers.pareto import dominated_mask, pareto_cuts, replacement_cuts
from flcompile.solvers.random_tables import random_table


def test_hand_example():
    # Path 0, cuts as (device, link, edge):
    #   0: (0, 5, 3)   kept
    #   1: (1, 5, 3)   dominated by 0 (more device, same rest)
    #   2: (1, 2, 2)   kept
    #   3: (1, 2, 2)   exact tie with 2: the lower index is kept
    #   4: (3, 1, 0)   kept
    # Should become: cuts (0, 2, 4); 1 -> 0, 3 -> 2.
    device = np.array([[0.0, 1, 1, 1, 3]])
    link = np.array([[5.0, 5, 2, 2, 1]])
    edge = np.array([[3.0, 3, 2, 2, 0]])
    table = CostTable(device, link, edge, 0.0, 1)
    assert dominated_mask(table).tolist() == [[False, True, False, True, False]]
    assert pareto_cuts(table)[0].tolist() == [0, 2, 4]
    assert replacement_cuts(table)[0].tolist() == [0, 0, 2, 2, 4]


def test_replacements_never_finish_later():
    rng = np.random.default_rng(31)
    for _ in range(100):
        table = random_table(rng, int(rng.integers(1, 6)), int(rng.integers(1, 7)), 1)
        # Random tables are rarely dominated; squash some costs to make dominance common.
        table = CostTable(
            np.round(table.device_s, 0),
            np.round(table.link_s, 0),
            np.round(table.edge_s, 0),
            0.0,
            int(rng.integers(0, 3)),
        )
        keep = pareto_cuts(table)
        repl = replacement_cuts(table)
        for p, ks in enumerate(keep):
            assert len(ks) >= 1
            assert set(repl[p]) <= set(ks)
        order = rng.permutation(table.num_paths)
        cuts = rng.integers(0, table.num_cuts, table.num_paths)
        better = repl[np.arange(table.num_paths), cuts]
        assert makespan(table, order, better) <= makespan(table, order, cuts)
