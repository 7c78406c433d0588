"""Per-path FLOPs, sends and seconds from a tiling, checked against hand-computed numbers."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
import pytest
from tiny_models import conv_relu_model

from flcompile.costs import ComputeModel, LinkModel
from flcompile.costs.node_key import OVERALL
from flcompile.costs.profiled import ProfiledComputeModel, SideProfile
from flcompile.costs.run_overhead import RunOverhead
from flcompile.costs.table import cost_table
from flcompile.costs.tiles import block_costs, tile_costs
from flcompile.passes.fusable import find_candidates, find_prefix
from flcompile.passes.receptive_field import make_block, make_tiling
from flcompile.profile.law import CostLaw


@pytest.fixture
def graph():
    return gs.import_onnx(conv_relu_model())


@pytest.fixture
def block(graph):
    prefix = find_prefix(graph)
    candidate = next(c for c in find_candidates(graph, prefix) if c.tensor == "r")
    return make_block(graph, prefix, candidate)


@pytest.fixture
def per_pixel(graph, block):
    return block_costs(graph, block)


def test_what_crosses_each_cut(block, per_pixel) -> None:
    # Cut 0 sends the input, cut 1 the conv output, cut 2 (whole path) F itself.
    assert block.crossing == (("x",), ("c",), ("r",))
    assert block.tensors == ("x", "c", "r")
    np.testing.assert_array_equal(per_pixel.crossing_matrix, np.eye(3))


def test_per_pixel_costs_of_the_block(per_pixel) -> None:
    # Conv: 2·(4 out × 2 in × 3·3) FLOPs per pixel; Relu: one per output channel.
    np.testing.assert_array_equal(per_pixel.flops_per_pixel, [144, 4])
    # x: 2 channels, c and r: 4 channels, float32.
    np.testing.assert_array_equal(per_pixel.tensor_bytes_per_pixel, [8, 16, 16])
    assert per_pixel.untiled_flops == 144 * 64 + 4 * 64


def test_flops_and_bytes_of_a_2x1_grid(block, per_pixel) -> None:
    costs = tile_costs(make_tiling(block, (2, 1)), per_pixel)
    # Each path computes 4 of 8 rows × 8 columns = 32 pixels of conv and relu.
    np.testing.assert_allclose(costs.flops, [[144 * 32, 4 * 32]] * 2)
    # Input tile: rows [0,5) and [3,8) (one halo row each) × 8 cols × 2 ch × 4 bytes = 320.
    # Conv/relu tiles: 4 rows × 8 × 4 ch × 4 bytes = 512.
    np.testing.assert_allclose(costs.send_bytes, [[320, 512, 512]] * 2)
    assert costs.redundancy == pytest.approx(1.0)


def test_halo_redundancy_counts_recomputed_pixels(block, per_pixel) -> None:
    # The block is one conv: a finer grid recomputes nothing, the input is what overlaps.
    costs = tile_costs(make_tiling(block, (8, 8)), per_pixel)
    assert costs.redundancy == pytest.approx(1.0)
    assert costs.send_bytes[:, 0].sum() > 8 * 8 * 2 * 4  # overlapping raw tiles


def test_seconds_follow_the_cost_model(block, per_pixel) -> None:
    costs = tile_costs(make_tiling(block, (1, 2)), per_pixel)
    compute = ComputeModel(device_flops=1e3, edge_flops=1e4, overhead_dev_s=0.5)
    link = LinkModel(rate_MBps=1e-3, latency_s=0.25)
    table = cost_table(costs, compute, link, post_fuse_s=7.0, return_s=0.0, grid=(1, 2))
    per_path_flops = np.array([144 * 32, 4 * 32])
    expected_device = [0.0, 0.5 + per_path_flops[0] / 1e3, 1.0 + per_path_flops.sum() / 1e3]
    np.testing.assert_allclose(table.device_s[0], expected_device)
    np.testing.assert_allclose(table.edge_s[0], [per_path_flops.sum() / 1e4, 128 / 1e4, 0.0])
    np.testing.assert_allclose(table.link_s[0], 0.25 + costs.send_bytes[0] / 1e3)
    assert table.post_fuse_s == 7.0 and table.grid == (1, 2)


def test_float16_sends_halve_every_path_and_cut(graph, block, per_pixel) -> None:
    half = block_costs(graph, block, "float16")
    np.testing.assert_array_equal(half.tensor_bytes_per_pixel, [4, 8, 8])
    np.testing.assert_array_equal(half.flops_per_pixel, per_pixel.flops_per_pixel)
    tiling = make_tiling(block, (2, 2))
    full16, full32 = tile_costs(tiling, half), tile_costs(tiling, per_pixel)
    np.testing.assert_array_equal(full16.send_bytes * 2, full32.send_bytes)
    np.testing.assert_array_equal(full16.flops, full32.flops)
    # What a node reads and writes, and F as the fuse reads it, stay in memory's dtype.
    np.testing.assert_array_equal(full16.node_bytes, full32.node_bytes)
    assert full16.fused_bytes == full32.fused_bytes > 0


def test_the_devices_work_per_message_is_charged_on_every_cut_that_sends(block, per_pixel) -> None:
    costs = tile_costs(make_tiling(block, (1, 2)), per_pixel)
    compute = ComputeModel(device_flops=1e3, edge_flops=1e4)
    plain = LinkModel(rate_MBps=1e-3, latency_s=0.25)
    charged = LinkModel(1e-3, 0.25, device_s_per_message=0.5, device_s_per_byte=1e-3)
    tables = [
        cost_table(costs, compute, link, post_fuse_s=1.0, return_s=0.0, grid=(1, 2))
        for link in (plain, charged)
    ]
    # Every cut sends something (cut 0 the input tile): each pays 0.5 s + 1 ms per byte on
    # the device, and the link and the edge are unchanged.
    np.testing.assert_allclose(
        tables[1].device_s - tables[0].device_s, 0.5 + 1e-3 * costs.send_bytes
    )
    np.testing.assert_array_equal(tables[1].link_s, tables[0].link_s)
    np.testing.assert_array_equal(tables[1].edge_s, tables[0].edge_s)


def test_each_stage_run_pays_its_run_overhead_once(block, per_pixel) -> None:
    costs = tile_costs(make_tiling(block, (1, 2)), per_pixel)
    link = LinkModel(rate_MBps=1e-3)

    def model(device_run: RunOverhead, edge_run: RunOverhead) -> ProfiledComputeModel:
        device = SideProfile("d.json", {OVERALL: CostLaw(0.0, 1e-3, 1)}, {}, run=device_run)
        edge = SideProfile("e.json", {OVERALL: CostLaw(0.0, 1e-4, 1)}, {}, run=edge_run)
        return ProfiledComputeModel(sides={"device": device, "edge": edge})

    runs = model(RunOverhead(0.5, 0.1, 9), RunOverhead(0.25, 0.01, 9))
    plain, charged = (
        cost_table(costs, compute, link, post_fuse_s=1.0, return_s=0.0, grid=(1, 2))
        for compute in (model(RunOverhead(), RunOverhead()), runs)
    )
    # Cut k: one device run of k nodes (none for k = 0), one edge run of the other 2 - k.
    np.testing.assert_allclose(charged.device_s - plain.device_s, [[0.0, 0.6, 0.7]] * 2)
    np.testing.assert_allclose(charged.edge_s - plain.edge_s, [[0.27, 0.26, 0.0]] * 2)
    np.testing.assert_array_equal(charged.link_s, plain.link_s)
    bound = runs.without_overheads()  # the fluid bound: no run overhead
    assert bound.device_run_s(np.array([3.0])).tolist() == [0.0]
    assert runs.device_run_s(np.array([3.0])).tolist() == pytest.approx([0.8])
