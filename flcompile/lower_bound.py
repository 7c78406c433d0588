"""The fluid lower bound ("physical limit") of DESIGN §4 for one fused tensor F, in closed form.

Relaxation: infinitely fine tiles, no halo redundancy, a fraction α_k of F's area sent at
cut k. Device, link and edge then each need a total of Σα_k·(their cost at cut k), and no
schedule can finish before the busiest of them has done its share, plus what runs after
the fuse:

    LB = min over α in the simplex of max(Σα_k D_k, Σα_k L_k, Σα_k E_k / c) + post_fuse_s

where c is the number of edge servers (edge_concurrency k > 1: the k servers share the
work, so at best they finish it in 1/k of the time); with edge_concurrency 0 (unlimited)
the edge term is dropped. This is a linear program; a basic optimal solution has at most
m nonzero α_k, m = number of terms in the max (2 or 3). Every vertex of the LP is the
unique solution of: support S (|S| <= m), Σ_S α = 1 and |S| - 1 equalities between |S| of
the terms. We enumerate all supports and term choices, solve each tiny system in closed
form (no LP library), drop solutions with negative α, and keep the best feasible point; the
LP optimum is one of them, so the minimum is exact.
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


def _candidates(terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every LP vertex candidate as (supports (n, 3) with -1 padding, alphas (n, 3))."""
    m, num_cuts = terms.shape
    supports: list[np.ndarray] = []
    alphas: list[np.ndarray] = []

    def add(support: np.ndarray, alpha: np.ndarray) -> None:
        pad = 3 - support.shape[1]
        supports.append(np.pad(support, ((0, 0), (0, pad)), constant_values=-1))
        alphas.append(np.pad(alpha, ((0, 0), (0, pad))))

    singles = np.arange(num_cuts)[:, None]
    add(singles, np.ones((num_cuts, 1)))
    if num_cuts >= 2:
        pairs = _combinations(num_cuts, 2)
        vi, vj = terms[:, pairs[:, 0]], terms[:, pairs[:, 1]]  # (m, n)
        for r, s in itertools.combinations(range(m), 2):
            # Term r equals term s at alpha_j = t, alpha_i = 1 - t.
            denom = (vj[r] - vi[r]) - (vj[s] - vi[s])
            with np.errstate(divide="ignore", invalid="ignore"):
                t = (vi[s] - vi[r]) / denom
            ok = (denom != 0) & (t > 0) & (t < 1)
            add(pairs[ok], np.stack([1 - t[ok], t[ok]], axis=1))
    if num_cuts >= 3 and m == 3:
        triples = _combinations(num_cuts, 3)
        v = terms[:, triples]  # (3, n, 3)
        # Rows: sum(alpha) = 1, (term0 - term1) . alpha = 0, (term0 - term2) . alpha = 0.
        mat = np.stack([np.ones_like(v[0]), v[0] - v[1], v[0] - v[2]], axis=1)  # (n, 3, 3)
        det = np.linalg.det(mat)
        ok = det != 0
        rhs = np.zeros((int(ok.sum()), 3, 1))
        rhs[:, 0, 0] = 1.0
        alpha = np.linalg.solve(mat[ok], rhs)[:, :, 0]
        feasible = np.all(alpha > 0, axis=1)
        add(triples[ok][feasible], alpha[feasible] / alpha[feasible].sum(axis=1, keepdims=True))
    return np.concatenate(supports), np.concatenate(alphas)


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
    supports, alphas = _candidates(terms)
    padded = np.concatenate([terms, np.zeros((terms.shape[0], 1))], axis=1)  # index -1 -> 0
    loads = np.einsum("mnj,nj->mn", padded[:, supports], alphas)
    best = int(np.argmin(loads.max(axis=0)))
    used = (supports[best] >= 0) & (alphas[best] > 0)
    cuts = supports[best][used]
    alpha = alphas[best][used]
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
