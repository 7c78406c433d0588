"""What crosses each cut of a topologically ordered node list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def tensors_crossing_each_cut(
    tensors: Sequence[str],
    produced: Mapping[str, int],
    last_use: Mapping[str, int],
    num_nodes: int,
) -> tuple[tuple[str, ...], ...]:
    """For each cut k = 0..num_nodes (the first k nodes on one side), the tensors that cross it.

    Args:
        tensors: the tensors to consider, in the order the result lists them.
        produced: index of each tensor's producer; -1 for what exists before any node.
        last_use: index of each tensor's last reader; num_nodes for what is read after the
            last node (graph outputs, or F read by the fuse). Unread tensors may be absent.
        num_nodes: the number of nodes.

    Returns:
        Per cut, the tensors produced before it and read at or after it.
    """
    return tuple(
        tuple(t for t in tensors if produced[t] < k <= last_use.get(t, -1))
        for k in range(num_nodes + 1)
    )
