"""Compiled plans for the deploy tests, and one live `flcompile serve` for the session.

The server serves four plans: `fl` (SqueezeNet at width 0.25 and 96², a 2x2 grid, with
stages), `nfl` (the same model without fused layers; `local`, not served, is its
local-only plan), `stream` (ResNet18 at width 0.5, a
2x2 grid whose paths do most of their work on the device, compiled without stages) and
`fl16` (`fl` with float16 sends; `fl16_bare` is the same plan without stages). The
`reuse` plans (a 3x3 grid under edge-side reuse, with and without stages) are only run
in-process; `silent` (served) and `silent_bare` are reuse plans in which some paths send
nothing (the edge holds their whole region); `inter` (served) and `inter_bare` are
intermediate-reuse plans (a 3x3 grid in a scan order, each path computing only what no
earlier path computed). Every plan but those two is kept off intermediate reuse. It
listens on 127.0.0.1 only, on a free port, with two instances and a 3 s frame timeout; it
is stopped by its pid at the end, and no tritonserver or stub process may outlive it. It
speaks HTTP too, on a second free port.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from flcompile import cli, models
from flcompile.serve.launcher import free_port, serving

FRAME_TIMEOUT_S = 3.0
# A 4x4 grid deep in SqueezeNet under reuse with the unlimited edge: some paths send nothing.
SILENT = ["--rate", "20", "--grid", "4x4", "--fuse-at", "fire6/concat", "--reuse"]
SILENT += ["--edge-concurrency", "0"]
# Intermediate reuse: every path cut at the raw input, later paths reading earlier results.
INTER = ["--rate", "20", "--grid", "3x3", "--solver", "scan"]
NO_INTER = ["--no-intermediate-reuse"]
COMPILES = {
    "fl": ("sq96", ["--rate", "0.5", "--grid", "2x2", "--emit-stages"]),
    "fl_bare": ("sq96", ["--rate", "0.5", "--grid", "2x2"]),
    "nfl": ("sq96", ["--rate", "0.5", "--solver", "nfl"]),
    # At a thousandth of a MB/s any send costs seconds: the device runs everything.
    "local": ("sq96", ["--rate", "0.001", "--solver", "nfl"]),
    "stream": ("r18", ["--rate", "0.3", "--grid", "2x2", "--device-flops", "5e9"]),
    "fl16": (
        "sq96",
        ["--rate", "0.5", "--grid", "2x2", "--emit-stages", "--send-dtype", "float16"],
    ),
    "fl16_bare": ("sq96", ["--rate", "0.5", "--grid", "2x2", "--send-dtype", "float16"]),
    "reuse": ("sq96", ["--rate", "20", "--grid", "3x3", "--reuse", "--emit-stages"]),
    "reuse_bare": ("sq96", ["--rate", "20", "--grid", "3x3", "--reuse"]),
    "silent": ("sq96", [*SILENT, "--emit-stages"]),
    "silent_bare": ("sq96", SILENT),
    "inter": ("sq96", [*INTER, "--emit-stages"]),
    "inter_bare": ("sq96", INTER),
}
SERVED = ("fl", "nfl", "stream", "fl16", "silent", "inter")


@pytest.fixture(scope="session")
def deploy_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The source models: sq96 (SqueezeNet 0.25 at 96²) and r18 (ResNet18 0.5 at 224²)."""
    folder = tmp_path_factory.mktemp("deploy_models")
    built = {
        "sq96": models.build("squeezenet", width=0.25, size=96),
        "r18": models.build("resnet18", width=0.5, size=224),
    }
    paths = {}
    for name, model in built.items():
        paths[name] = folder / f"{name}.onnx"
        onnx.save_model(model, str(paths[name]))
    return paths


@pytest.fixture(scope="session")
def plans(tmp_path_factory: pytest.TempPathFactory, deploy_models: dict[str, Path]) -> dict:
    """Compiled OUT directories by plan name (see COMPILES)."""
    folder = tmp_path_factory.mktemp("deploy_plans")
    outs = {}
    for name, (model, options) in COMPILES.items():
        outs[name] = folder / f"{name}.flc"
        argv = [str(deploy_models[model]), "-o", str(outs[name]), "--runs", "0", "-q", *options]
        if not name.startswith(("inter", "nfl", "local")):
            argv += NO_INTER
        assert cli.main(argv) == 0, f"compiling {name} failed"
    return outs


@pytest.fixture(scope="session")
def frame_timeout_s() -> float:
    """The live server's frame timeout."""
    return FRAME_TIMEOUT_S


@pytest.fixture(scope="session")
def server(plans: dict):
    """The session's server (two instances, a short frame timeout, HTTP too), stopped at the end.

    `server.http_port` is its HTTP port.
    """
    pytest.importorskip("pytriton", reason="the serve extra is not installed")
    pytest.importorskip("tritonclient.grpc", reason="the device extra is not installed")
    http_port = free_port()
    # Two separate draws may pick the same free port, which gRPC and HTTP cannot share.
    grpc_port = next(p for p in iter(free_port, None) if p != http_port)
    options = ["--instances", "2", "--frame-timeout", str(FRAME_TIMEOUT_S)]
    options += ["--http-port", str(http_port)]
    with serving([plans[name] for name in SERVED], port=grpc_port, options=options) as live:
        live.http_port = http_port
        yield live
    assert live.exit_code == 0, f"serve exited with {live.exit_code}: {live.stderr}"
    assert any(p.name == "tritonserver" for p in live.below), "no tritonserver ran"
    assert not live.leftovers, f"processes outlived the server: {live.leftovers}"
