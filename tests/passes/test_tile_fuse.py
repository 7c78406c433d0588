"""`fuse_node_count(grid)` is the number of fuse nodes `tile_graph` really adds."""

from __future__ import annotations

import onnx_graphsurgeon as gs
import pytest
from graphs import act, build, conv, prepare

from flcompile.passes.receptive_field import make_block, make_tiling
from flcompile.passes.tile import fuse_node_count, tile_graph


@pytest.mark.parametrize(
    ("grid", "expected"), [((1, 1), 1), ((1, 3), 1), ((3, 1), 1), ((2, 2), 3), ((3, 4), 4)]
)
def test_fuse_node_count_matches_the_rewrite(grid, expected) -> None:
    # Graph: x[1,3,12,12] -> conv0 (3x3, p1) -> relu1 -> GAP -> Flatten -> Gemm; F = relu1.
    prep = prepare(build([conv(4, 3, 1, 1, (1, 1, 1, 1)), act("Relu")], (1, 3, 12, 12)))
    candidate = next(c for c in prep.candidates if c.tensor == "relu1_out")
    tiling = make_tiling(make_block(prep.graph, prep.prefix, candidate), grid)
    tiled = tile_graph(gs.import_onnx(prep.model), tiling)
    assert len(tiled.fuse_nodes) == fuse_node_count(grid) == expected
