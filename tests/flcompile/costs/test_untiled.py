"""Single cuts of the untiled model and the baselines (local-only, full offload, NFL)."""

from __future__ import annotations

import onnx_graphsurgeon as gs
import pytest
from tiny_models import conv_relu_model

from flcompile.costs import ComputeModel, LinkModel
from flcompile.costs.untiled import baselines, model_costs, single_cuts


@pytest.fixture
def costs():
    return model_costs(gs.import_onnx(conv_relu_model()))


def test_flops_follow_the_counting_rule(costs) -> None:
    # Conv: 2·MACs = 2·4·2·9·64; Relu: 4·64 outputs; GlobalAveragePool: 4 outputs.
    assert list(costs.flops) == [2 * 4 * 2 * 9 * 64, 4 * 64, 4]
    assert costs.output_bytes == 16


def test_single_cuts_and_baselines(costs) -> None:
    compute = ComputeModel(device_flops=1e3, edge_flops=1e4)
    link = LinkModel(rate_MBps=1e-3)  # 1000 bytes/s
    cuts = {c.index: c for c in single_cuts(costs, compute, link)}
    assert set(cuts) == {0, 1, 2, 3}
    # Full offload sends x: 2·64·4 = 512 bytes = 0.512 s, then all FLOPs on the edge.
    assert cuts[0].link_s == pytest.approx(0.512)
    assert cuts[0].edge_s == pytest.approx(sum(costs.flops) / 1e4)
    assert cuts[0].label == "full-offload"
    # Local-only: everything on the device and nothing sent.
    assert cuts[3].device_s == pytest.approx(sum(costs.flops) / 1e3)
    assert cuts[3].link_s == 0.0 and cuts[3].label == "local-only"
    # After the Relu: one tensor of 4·64·4 = 1024 bytes crosses.
    assert cuts[2].tensors == ("r",) and cuts[2].link_s == pytest.approx(1.024)
    base = baselines(costs, compute, link)
    assert base.nfl.total_s == min(c.total_s for c in cuts.values())
    assert base.local.index == 3 and base.full_offload.index == 0


def test_return_rate_adds_the_result_transfer(costs) -> None:
    compute = ComputeModel(device_flops=1e3, edge_flops=1e4)
    link = LinkModel(rate_MBps=1e-3, return_rate_MBps=1e-5)  # 16 bytes back at 10 B/s
    cuts = {c.index: c for c in single_cuts(costs, compute, link)}
    assert cuts[0].return_s == pytest.approx(1.6)
    assert cuts[3].return_s == 0.0


def test_the_devices_work_per_message_is_charged_on_every_cut_but_local_only(costs) -> None:
    compute = ComputeModel(device_flops=1e3, edge_flops=1e4)
    plain = {c.index: c for c in single_cuts(costs, compute, LinkModel(rate_MBps=1e-3))}
    link = LinkModel(rate_MBps=1e-3, device_s_per_message=0.5, device_s_per_byte=1e-3)
    charged = {c.index: c for c in single_cuts(costs, compute, link)}
    for k, cut in charged.items():
        extra = 0.0 if cut.local else 0.5 + 1e-3 * cut.nbytes
        assert cut.device_s == pytest.approx(plain[k].device_s + extra)
        assert (cut.link_s, cut.edge_s) == (plain[k].link_s, plain[k].edge_s)
    assert charged[0].device_s == pytest.approx(0.5 + 0.512)  # full offload sends x
