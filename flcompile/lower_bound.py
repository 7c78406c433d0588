"""The fluid lower bound ("physical limit", docs/design.md §4) of one fused tensor F, closed form.

Relaxation: infinitely fine tiles, no halo redundancy, a fraction α_k of F's area sent at
cut k. Device, link and edge then each need a total of Σα_k·(their cost at cut k), and no
schedule can finish before the busiest of them has done its share, plus what runs after
the fuse:

    LB = min over α in the simplex of max(Σα_k D_k, Σα_k L_k, Σα_k E_k / c) + post_fuse_s

where c is the number of edge servers (edge_concurrency k > 1: the k servers share the
work, so at best they finish it in 1/k of the time); with edge_concurrency 0 (unlimited)
the edge term is dropped. This is a linear program (a matrix game: α against the m terms);
a basic optimal solution has at most m nonzero α_k, m = number of terms in the max (2 or
3). Every vertex is the unique solution of: support S (|S| <= m), Σ_S α = 1 and |S| - 1
equalities between |S| of the terms. `min_max` enumerates all of them, solving each tiny
system in closed form (no LP library), and keeps the best feasible point: the LP optimum is
one of them, so the minimum is exact. Enumerating all triples of K cuts costs O(K³), so
`_solve` runs that enumeration on a few cuts at a time (column generation, exact by LP
duality): a block with K = 150 cuts takes about 1-2 ms instead of half a second.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

from flcompile.errors import InternalError


@dataclass(frozen=True)
class FluidBound:
    """The fluid lower bound and the mix of cuts that attains it.

    Attributes:
        value: the bound in seconds (post_fuse_s included).
        cuts: the cuts in the optimal mix, increasing (at most 2, or 3 with an edge term).
        alphas: the fraction of F's area sent at each of `cuts`; positive, summing to 1.
    """

    value: float
    cuts: tuple[int, ...]
    alphas: tuple[float, ...]


@functools.lru_cache(maxsize=64)
def _combinations(num_cuts: int, size: int) -> np.ndarray:
    """All increasing `size`-tuples of cut indices, as an (n, size) array."""
    combos = list(itertools.combinations(range(num_cuts), size))
    return np.array(combos, dtype=np.intp).reshape(len(combos), size)


def _terms(
    device_s: np.ndarray, link_s: np.ndarray, edge_s: np.ndarray, edge_concurrency: int
) -> np.ndarray:
    """The (m, K) per-cut terms of the max: device, link and (unless unlimited) edge / c."""
    rows = [np.asarray(device_s, float), np.asarray(link_s, float)]
    if edge_concurrency != 0:
        rows.append(np.asarray(edge_s, float) / edge_concurrency)
    shapes = {r.shape for r in rows} | {np.shape(edge_s)}
    if len(shapes) != 1 or rows[0].ndim != 1 or rows[0].size == 0:
        raise InternalError(f"fluid bound needs three equal-length 1-D cost arrays, got {shapes}")
    if edge_concurrency < 0:
        raise InternalError(f"edge_concurrency must be >= 0, got {edge_concurrency}")
    return np.stack(rows)


def _vertices(terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate vertex of min over α of max_r (terms @ α)_r, α in the simplex.

    A vertex has a support S of at most 3 columns (in our use the rows or the columns
    number at most 3) and |S| rows that are equal there; solving Σ_S α = 1 and those
    |S| - 1 equalities gives α. Returns (supports (n, 3), -1 padded; alphas (n, 3)).
    """
    num_rows, num_cols = terms.shape
    supports = [np.pad(np.arange(num_cols)[:, None], ((0, 0), (0, 2)), constant_values=-1)]
    alphas = [np.pad(np.ones((num_cols, 1)), ((0, 0), (0, 2)))]
    for size in (2, 3):
        if num_cols < size or num_rows < size:
            break
        cols, rows = _combinations(num_cols, size), _combinations(num_rows, size)
        v = terms[rows[:, None, :, None], cols[None, :, None, :]]  # (row sets, col sets, r, c)
        # The system: Σα = 1, then (row 0 - row i) · α = 0 for the other rows of the set.
        ones = np.ones((*v.shape[:2], 1, size))
        mat = np.concatenate([ones, v[:, :, :1, :] - v[:, :, 1:, :]], axis=2)
        mat = mat.reshape(-1, size, size)
        support = np.broadcast_to(cols, (*v.shape[:2], size)).reshape(-1, size)
        ok = np.linalg.det(mat) != 0
        rhs = np.zeros((int(ok.sum()), size, 1))
        rhs[:, 0, 0] = 1.0
        alpha = np.linalg.solve(mat[ok], rhs)[:, :, 0]
        feasible = np.all(alpha > 0, axis=1)
        alpha = alpha[feasible] / alpha[feasible].sum(axis=1, keepdims=True)
        pad = ((0, 0), (0, 3 - size))
        supports.append(np.pad(support[ok][feasible], pad, constant_values=-1))
        alphas.append(np.pad(alpha, pad))
    return np.concatenate(supports), np.concatenate(alphas)


def min_max(terms: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """min over α in the simplex of max_r (terms @ α)_r, by vertex enumeration.

    Exact for at most 3 rows or at most 3 columns (`_vertices`); the cost grows as the
    cube of the larger side.

    Args:
        terms: (rows, columns) matrix.

    Returns:
        (value, support columns, their α), the smallest support on exact ties.
    """
    supports, alphas = _vertices(terms)
    padded = np.concatenate([terms, np.zeros((terms.shape[0], 1))], axis=1)  # index -1 -> 0
    loads = np.einsum("rnj,nj->rn", padded[:, supports], alphas).max(axis=0)
    best = int(np.argmin(loads))
    used = (supports[best] >= 0) & (alphas[best] > 0)
    return float(loads[best]), supports[best][used], alphas[best][used]


def _solve(terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fluid LP over all K cuts, by column generation on small exact sub-problems.

    A restricted LP over a few cuts S is solved by `min_max`; so is its dual, the weights
    λ over the m terms that maximise min over cuts in S of λ · terms (the same matrix game
    seen from the other side). If no cut prices below the restricted value under λ, the
    restricted optimum is optimal over all K (LP duality); otherwise the cheapest cut joins
    S. Every round adds a new cut, so this ends, in practice after a few rounds.
    """
    num_cuts = terms.shape[1]
    start = {int(np.argmin(terms.max(axis=0)))} | {int(k) for k in np.argmin(terms, axis=1)}
    chosen = sorted(start)
    scale = float(np.abs(terms).max()) or 1.0
    while True:
        sub = terms[:, chosen]
        value, support, alpha = min_max(sub)
        _, lam_support, lam_alpha = min_max(-sub.T)
        lam = np.zeros(terms.shape[0])
        lam[lam_support] = lam_alpha
        prices = lam @ terms
        k = int(np.argmin(prices))
        if prices[k] >= value - 1e-12 * scale or k in chosen or len(chosen) == num_cuts:
            return np.asarray(chosen)[support], alpha
        chosen = sorted([*chosen, k])


def fluid_bound(
    device_s: np.ndarray,
    link_s: np.ndarray,
    edge_s: np.ndarray,
    post_fuse_s: float,
    edge_concurrency: int,
) -> FluidBound:
    """The fluid lower bound of one block and the cut mix that attains it.

    Args:
        device_s: (K,) device seconds of the untiled block with cut k (whole F area).
        link_s: (K,) link seconds to send what crosses cut k.
        edge_s: (K,) edge seconds of the rest of the block after cut k.
        post_fuse_s: edge seconds of everything after F.
        edge_concurrency: 1 = serial edge, k > 1 = k servers (edge term Σα·E / k),
            0 = unlimited (edge term dropped).

    Returns:
        The bound, the cuts of the optimal mix (smallest support on exact ties) and their
        fractions.

    Raises:
        InternalError: the arrays are not equal-length, non-empty 1-D arrays.
    """
    terms = _terms(device_s, link_s, edge_s, edge_concurrency)
    cuts, alpha = _solve(terms)
    order = np.argsort(cuts)
    cuts, alpha = cuts[order], alpha[order]
    value = float(np.max(terms[:, cuts] @ alpha)) + float(post_fuse_s)
    return FluidBound(value, tuple(int(k) for k in cuts), tuple(float(a) for a in alpha))


def fluid_lower_bound(
    device_s: np.ndarray,
    link_s: np.ndarray,
    edge_s: np.ndarray,
    post_fuse_s: float,
    edge_concurrency: int,
) -> float:
    """The fluid lower bound's value; see `fluid_bound`.

    Args:
        device_s: (K,) device seconds of the untiled block with cut k.
        link_s: (K,) link seconds of what crosses cut k.
        edge_s: (K,) edge seconds of the rest of the block after cut k.
        post_fuse_s: edge seconds of everything after F.
        edge_concurrency: 1 = serial, k > 1 = k servers, 0 = unlimited.

    Returns:
        The bound in seconds.

    Raises:
        InternalError: the arrays are not equal-length, non-empty 1-D arrays.
    """
    return fluid_bound(device_s, link_s, edge_s, post_fuse_s, edge_concurrency).value
