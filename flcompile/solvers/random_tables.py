"""Seeded random cost tables for solver tests and benchmarks (never used by the compiler).

`random_reuse_table` adds edge-side reuse: random block tensors tiled on an unequal grid.

`random_table` turns random per-node costs into cumulative per-cut tables, as a real block
would give them: device seconds grow with the cut, edge seconds shrink, and the link
seconds are the size of whatever crosses the cut. `split_table` tiles an untiled block's
per-cut costs exactly in proportion to given shares (no halo, no latency), the setting in
which the fluid bound must lie below every schedule.
"""

from __future__ import annotations

import numpy as np

from flcompile.costs.link import LinkModel
from flcompile.costs.reuse import ReuseLinks, reuse_geometry
from flcompile.costs.table import CostTable


def random_table(
    rng: np.random.Generator,
    num_paths: int,
    num_cuts: int,
    edge_concurrency: int,
    *,
    zero_fraction: float = 0.0,
    similar: bool = False,
) -> CostTable:
    """A random table with cumulative per-cut costs.

    Args:
        rng: the random generator (seed it for reproducible tables).
        num_paths: P.
        num_cuts: K (the block has K - 1 nodes).
        edge_concurrency: the table's edge model.
        zero_fraction: this fraction of link and edge entries is set to 0 (sends of nothing,
            edge parts of nothing), to exercise the simulator's special cases.
        similar: paths share one block's costs up to ±5 % (like tiles of one grid) instead
            of being independent.

    Returns:
        The table; device_s[:, 0] == 0 and edge_s[:, K - 1] == 0.
    """
    nodes = num_cuts - 1
    shape = (1 if similar else num_paths, nodes)
    scale = rng.choice([0.3, 1.0, 3.0])
    dev_nodes = rng.random(shape) * rng.uniform(0.5, 3.0)
    edge_nodes = dev_nodes * rng.uniform(0.05, 1.0) * rng.uniform(0.5, 1.5, shape)
    sizes = rng.random((shape[0], num_cuts)) * rng.uniform(0.2, 3.0) * scale
    if similar:
        jitter = rng.uniform(0.95, 1.05, (3, num_paths, 1))
        dev_nodes, edge_nodes, sizes = (
            dev_nodes * jitter[0],
            edge_nodes * jitter[1],
            sizes * jitter[2],
        )
    zero = np.zeros((num_paths, 1))
    device = np.concatenate([zero, np.cumsum(dev_nodes, axis=1)], axis=1)
    edge = np.concatenate([np.cumsum(edge_nodes[:, ::-1], axis=1)[:, ::-1], zero], axis=1)
    link = sizes + np.zeros((num_paths, 1))
    if zero_fraction > 0:
        link = np.where(rng.random(link.shape) < zero_fraction, 0.0, link)
        edge = np.where(rng.random(edge.shape) < zero_fraction, 0.0, edge)
    return CostTable(device, link, edge, float(rng.random()), edge_concurrency)


def split_table(
    device_s: np.ndarray,
    link_s: np.ndarray,
    edge_s: np.ndarray,
    shares: np.ndarray,
    post_fuse_s: float,
    edge_concurrency: int,
) -> CostTable:
    """Tile an untiled block exactly in proportion to `shares`: path p costs share_p × block.

    Args:
        device_s: (K,) device seconds of the whole block per cut.
        link_s: (K,) link seconds of the whole block per cut.
        edge_s: (K,) edge seconds of the whole block per cut.
        shares: (P,) positive fractions of F's area, summing to 1.
        post_fuse_s: edge seconds after the fuse.
        edge_concurrency: the table's edge model.

    Returns:
        The (P, K) table.
    """
    shares = np.asarray(shares, float)[:, None]
    return CostTable(
        shares * np.asarray(device_s, float),
        shares * np.asarray(link_s, float),
        shares * np.asarray(edge_s, float),
        float(post_fuse_s),
        edge_concurrency,
    )


# Which cost rows the paths of a table share: the exact search may only treat paths as
# interchangeable when all three rows are equal, so tables sharing one or two rows catch a
# symmetry break that compares too little.
SHARED_ROWS = ("none", "device", "device+link", "device+edge", "link+edge", "all")


def table_sharing_rows(rng: np.random.Generator, shared: str, concurrency: int) -> CostTable:
    """A random table of 2-4 paths and 2-3 cuts whose paths copy path 0's `shared` rows.

    Args:
        rng: the random generator.
        shared: one of SHARED_ROWS.
        concurrency: the table's edge model.

    Returns:
        The table (10 % of its link and edge entries are 0).
    """
    num_paths, num_cuts = int(rng.integers(2, 5)), int(rng.integers(2, 4))
    table = random_table(rng, num_paths, num_cuts, concurrency, zero_fraction=0.1)
    rows = {"device": table.device_s, "link": table.link_s, "edge": table.edge_s}
    for name in rows:
        if name in shared or shared == "all":
            rows[name] = np.repeat(rows[name][:1], num_paths, axis=0)
    return CostTable(rows["device"], rows["link"], rows["edge"], table.post_fuse_s, concurrency)


def _axis_intervals(rng: np.random.Generator, parts: int, size: int) -> np.ndarray:
    """(parts, 2) monotone intervals of [0, size) with random (unequal) cores and halos."""
    cuts = np.sort(rng.choice(np.arange(1, size), parts - 1, replace=False)) if parts > 1 else []
    bounds = np.concatenate([[0], cuts, [size]])
    halo = rng.integers(0, max(size // 3, 1) + 1)
    return np.stack(
        [np.maximum(bounds[:-1] - halo, 0), np.minimum(bounds[1:] + halo, size)], axis=1
    )


def random_reuse_table(
    rng: np.random.Generator,
    grid: tuple[int, int],
    num_cuts: int,
    edge_concurrency: int,
    *,
    rate_MBps: float = 1.0,
) -> CostTable:
    """A random table with edge-side reuse: a chain of block tensors tiled on an unequal grid.

    Tensor t crosses cut t (and, at random, cut t + 1 too, like a skip connection); each
    tensor's regions are a grid of overlapping intervals of random sizes and halos.

    Args:
        rng: the random generator.
        grid: (rows, columns) of paths.
        num_cuts: K; the block has K tensors.
        edge_concurrency: the table's edge model.
        rate_MBps: the link rate.

    Returns:
        The table, its `reuse` set.
    """
    rows, cols = grid
    num_paths = rows * cols
    regions = np.zeros((num_cuts, num_paths, 4), np.int64)
    for t in range(num_cuts):
        hs = _axis_intervals(rng, rows, int(rng.integers(rows + 1, 3 * rows + 8)))
        ws = _axis_intervals(rng, cols, int(rng.integers(cols + 1, 3 * cols + 8)))
        for p in range(num_paths):
            regions[t, p] = (*hs[p // cols], *ws[p % cols])
    crossing = np.eye(num_cuts, dtype=bool)
    skips = rng.random(num_cuts - 1) < 0.3
    crossing[1:, :-1] |= np.diag(skips)
    geometry = reuse_geometry(
        [f"t{t}" for t in range(num_cuts)], regions, rng.uniform(0.2, 1.0, num_cuts), crossing
    )
    link = LinkModel(rate_MBps * 1e-6)  # bytes of order 1-100 cost seconds of that order
    full = np.zeros((num_paths, num_cuts))
    for p in range(num_paths):
        for k in range(num_cuts):
            full[p, k] = sum(geometry.piece_bytes(p, t, 0) for t in np.flatnonzero(crossing[k]))
    base = random_table(rng, num_paths, num_cuts, edge_concurrency)
    return CostTable(
        base.device_s,
        np.asarray(link.send_s(full), float),
        base.edge_s,
        base.post_fuse_s,
        base.edge_concurrency,
        grid=grid,
        reuse=ReuseLinks(geometry, link),
        waits=True,
    )
