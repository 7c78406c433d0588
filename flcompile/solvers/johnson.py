"""Johnson's rule and its CDS extension: job orders for device→link(→edge) flow shops.

For fixed cuts, device→link is a two-machine permutation flow shop; Johnson's rule
(jobs with a < b first by increasing a, then the rest by decreasing b) minimises its
makespan. With the edge as a third stage, the Campbell-Dudek-Smith (CDS) heuristic applies
Johnson's rule to the surrogate two-machine problems (first i stages, last i stages).
"""

from __future__ import annotations

import numpy as np


def johnson_order(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Johnson's optimal order for a two-machine flow shop.

    Args:
        first: (n,) times on the first machine.
        second: (n,) times on the second machine.

    Returns:
        (n,) job indices: jobs with first < second by increasing `first`, then the others by
        decreasing `second`; ties keep the lower index first.
    """
    first = np.asarray(first, float)
    second = np.asarray(second, float)
    jobs = np.arange(len(first))
    head = first < second
    front = jobs[head][np.argsort(first[head], kind="stable")]
    back = jobs[~head][np.argsort(-second[~head], kind="stable")]
    return np.concatenate([front, back])


def cds_orders(dev: np.ndarray, link: np.ndarray, edge: np.ndarray) -> list[np.ndarray]:
    """Candidate orders for the device→link→edge flow shop (CDS plus the pure pairs).

    Args:
        dev: (n,) device seconds per job.
        link: (n,) link seconds per job.
        edge: (n,) edge seconds per job.

    Returns:
        Johnson orders for the surrogate pairs (D, L), (D, L + E), (D + L, L + E) and (D, E).
    """
    return [
        johnson_order(dev, link),
        johnson_order(dev, link + edge),
        johnson_order(dev + link, link + edge),
        johnson_order(dev, edge),
    ]
