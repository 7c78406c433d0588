"""The search's intermediate-reuse plans: every path cut at the raw input, in a scan order.

Under intermediate reuse (`flcompile.costs.intermediate`) a path's edge seconds depend on
the paths before it, so the solvers' tables, which price a path by its cut alone, cannot
hold them. This family is small enough to score whole instead: every (F, grid) of the space
planned with edge-side reuse, every scan order of its grid (`scan_orders`), every path cut
at the raw input. What does not depend on the link (each path's new input bytes and its
edge seconds) is computed once per space; at each link every plan is one simulation on a
table valid for its own order, with the serial edge its edge parts need. The search
offers each to its tracker as solver "scan", and the least of them is exact over the
family, which is what the space bound counts for it (docs/design.md §4, §5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from math import inf
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from flcompile.costs.intermediate import (
    ComputedPieces,
    input_union_pixels,
    intermediate_edge_s,
    scan_all,
    scan_orders,
)
from flcompile.costs.link import LinkModel
from flcompile.costs.table import CostTable
from flcompile.plans import FusedPlan
from flcompile.schedule import Schedule
from flcompile.simulate import makespan

if TYPE_CHECKING:
    from flcompile.search import GridChoice, SearchSpace

SCAN_SOLVER = "scan"


@dataclass(frozen=True, eq=False)
class ScanPlan:
    """One (F, grid) in one scan order, cut at the raw input: what does not depend on the link.

    Attributes:
        choice: the (F, grid).
        pieces: the order and what each path computes.
        sent_bytes: (P,) by path, its new bytes of the input in this order.
        edge_s: (P,) by path, its edge seconds computing only its pieces.
    """

    choice: GridChoice
    pieces: ComputedPieces
    sent_bytes: np.ndarray
    edge_s: np.ndarray

    def table(self, base: CostTable, link: LinkModel) -> CostTable:
        """The (F, grid)'s table `base` at `link`, reduced to the raw-input cut with this
        order's link and edge seconds, on a serial edge. Valid for this order only."""
        link_s = np.asarray(link.send_s(self.sent_bytes), float)[:, None]
        return replace(
            base,
            device_s=base.device_s[:, :1],
            link_s=link_s,
            edge_s=self.edge_s[:, None],
            edge_concurrency=1,
            reuse=None,  # the link seconds are this order's already
            waits=True,
        )


def scan_plans(space: SearchSpace, choice: GridChoice) -> list[ScanPlan]:
    """Every scan order of one (F, grid) planned with edge-side reuse (else none).

    Args:
        space: the search space (its compute model prices the edge).
        choice: the (F, grid).

    Returns:
        One plan per distinct scan order.
    """
    if not space.reuse_for(choice):
        return []
    input_bytes_per_pixel = choice.fused.costs.tensor_bytes_per_pixel[0]
    plans = []
    for pieces in scan_all(choice.tiling, list(scan_orders(choice.grid))):
        sent = pieces.sent_pixels() * input_bytes_per_pixel
        edge_s = intermediate_edge_s(choice.costs, space.compute, pieces)
        plans.append(ScanPlan(choice, pieces, sent, edge_s))
    return plans


def solve_scans(
    space: SearchSpace,
    entries: list[FusedPlan],
    link: LinkModel,
    offer: Callable[[FusedPlan], object],
    ceiling: Callable[[], float],
    *,
    progress: bool = False,
) -> float:
    """Score the scan plans of the space at one link; offer each (F, grid)'s best to the
    search.

    A plan that cannot beat `ceiling()` (the best latency found so far) is not simulated.
    Every scan of an (F, grid) sends the input pixels its tiles read once, and computes
    each pixel of each block node once after the first path's send, before the fuse and
    the rest run: none finishes before `scan_floor_s`. The choices go by increasing floor,
    so the first that cannot win ends the search. Within a choice, no plan finishes before
    its own sends, or its first send and every edge part end to end, and then the fuse
    and the rest.

    Args:
        space: the search space (intermediate reuse on).
        entries: the search's plans of `space.choices`, in order (their tables at `link`).
        link: the link.
        offer: takes each (F, grid)'s best scan plan (the search's tracker).
        ceiling: the latency a plan must beat to be simulated, as the search goes.
        progress: show a progress bar.

    Returns:
        The least latency of the family, or a value no larger than every plan of it that
        was not simulated (the ceiling then); inf when it is empty.
    """
    best = inf
    floors = [
        (scan_floor_s(choice, entry.table, link, space.scan_edge_floor_s(choice)), i)
        for i, (choice, entry) in enumerate(zip(space.choices, entries, strict=True))
        if space.reuse_for(choice)
    ]
    # Lowest floor first: good plans come early and prune the rest.
    for floor, i in tqdm(
        sorted(floors), desc="intermediate reuse", unit="grid", disable=not progress, leave=False
    ):
        choice, entry = space.choices[i], entries[i]
        above = ceiling()
        if floor >= above:
            best = min(best, above)
            break  # every later choice's floor is higher still
        scored = []
        for plan in space.scan_plans(choice):
            table = plan.table(entry.table, link)
            if _plan_floor_s(table, plan.pieces.order) >= above:
                best = min(best, above)
                continue
            order = plan.pieces.order
            scored.append((makespan(table, order, (0,) * len(order)), table, plan))
        if not scored:
            continue
        latency, table, plan = min(scored, key=lambda s: s[0])
        best = min(best, latency)
        order = plan.pieces.order
        offer(
            replace(
                entry,
                table=table,
                schedule=Schedule(order, (0,) * len(order)),
                solver=SCAN_SOLVER,
                predicted_s=latency,
                computed=plan.pieces,
            )
        )
    return best


def scan_floor_s(
    choice: GridChoice, base: CostTable, link: LinkModel, edge_floor_s: float
) -> float:
    """No scan plan of `choice` finishes before its input pixels have crossed the link at
    its rate, or before the first path (path 0 in every scan) has sent its whole region
    and the edge parts have run after it (at least `edge_floor_s`, `scan_edge_floor_s`,
    end to end); then the fuse and the rest run and the results go back."""
    bytes_per_pixel = choice.fused.costs.tensor_bytes_per_pixel[0]
    sent = input_union_pixels(choice.tiling) * bytes_per_pixel
    link_s = float(link.without_overheads().send_s(sent))
    row, col = choice.tiling.axes(0)
    block_input = choice.tiling.block.input
    first = row.tensors[block_input].size * col.tensors[block_input].size * bytes_per_pixel
    first_s = float(base.device_s[0, 0] + link.send_s(first))
    return max(link_s, first_s + edge_floor_s) + base.post_fuse_s + base.return_s


def _plan_floor_s(table: CostTable, order: tuple[int, ...]) -> float:
    """No schedule of `table` in `order` finishes before all its sends, or its first send
    and all its edge parts on the serial edge, followed by the fuse, the rest and the return."""
    link, edge = table.link_s[:, 0], table.edge_s[:, 0]
    busy = max(float(link.sum()), float(link[order[0]] + edge.sum()))
    return busy + table.post_fuse_s + table.return_s
