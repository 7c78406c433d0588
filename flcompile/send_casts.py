"""The Casts of `--send-dtype` for one plan: which sends change dtype on the link, and where.

`send_casts` asks `flcompile.costs.wire` which of the device graph's sends travel in another
dtype; `SendCasts.apply` inserts the Casts (`flcompile.passes.send_cast`) into the device,
edge and stage graphs, and `describe` adds each send's wire dtype to stages.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from flcompile.costs.wire import FLOAT32, wire_dtype
from flcompile.passes.send_cast import cast_node_name, cast_sends


@dataclass(frozen=True)
class SendCasts:
    """The Casts of `--send-dtype` for one plan (see `flcompile.passes.send_cast`).

    Attributes:
        send_dtype: the wire dtype asked for.
        wire: sent tensor -> the dtype it travels as, for the tensors whose dtype changes.
        placement: the Casts' `fl.placement` / `fl.path`: the device casts, the edge casts back.
    """

    send_dtype: str
    wire: dict[str, np.dtype]
    placement: dict[str, tuple[str, str]]

    def apply(self, graph: gs.Graph) -> gs.Graph:
        """`graph` with its sent outputs cast to the wire dtype and its sent inputs cast back."""
        return cast_sends(graph, self.wire)

    def describe(self, index: dict) -> dict:
        """stages.json with the wire dtype of every path's sends (unchanged under float32)."""
        if self.send_dtype == FLOAT32:
            return index
        for path in index["paths"]:
            path["send_dtypes"] = [
                self.wire[n].name if n in self.wire else None for n in path["sends"]
            ]
        return {**index, "send_dtype": self.send_dtype}

    def names(self) -> dict[str, str]:
        """Sent tensor -> wire dtype name, for the tensors cast."""
        return {n: d.name for n, d in self.wire.items()}


def send_casts(
    device: gs.Graph, sends: Sequence[tuple[int | None, Sequence[str]]], send_dtype: str
) -> SendCasts:
    """What `send_dtype` casts among the device graph's sends, and where each Cast runs.

    Args:
        device: the device graph; its outputs are the sends.
        sends: per path (None without fused layers), the names it sends.
        send_dtype: the wire dtype (`flcompile.costs.wire`).

    Returns:
        The casts; none under float32.
    """
    dtypes = {t.name: t.dtype for t in device.outputs}
    wire: dict[str, np.dtype] = {}
    placement: dict[str, tuple[str, str]] = {}
    for p, names in sends:
        path = "" if p is None else str(p)
        for name in names:
            own = np.dtype(dtypes[name])
            sent = wire_dtype(own, send_dtype)
            if sent != own:
                wire[name] = sent
                placement[cast_node_name(name, sent)] = ("device", path)
                placement[cast_node_name(name, own)] = ("edge", path)
    return SendCasts(send_dtype, wire, placement)
