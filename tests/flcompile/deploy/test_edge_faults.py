"""Faults against the live server: each gets a clear error, and the server goes on serving.

Requests here are plain unary KServe v2 calls from tritonclient, each sent after the
previous answer, as any client may make them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort
import pytest

from flcompile import cli
from flcompile.deploy import protocol
from flcompile.deploy.plan_index import load_index
from flcompile.deploy.stage_models import device_models
from flcompile.verify import make_feeds

grpcclient = pytest.importorskip("tritonclient.grpc", reason="the device extra is not installed")


class Device:
    """Hand-made requests for one plan: each path's real tensors for one input."""

    def __init__(self, address: str, out, client: str) -> None:
        self.index = load_index(out)
        self.client = client
        self.channel = grpcclient.InferenceServerClient(address)
        models = device_models(self.index)
        feeds = make_feeds(models[0], seed=5)
        self.sends = {}
        for stage, model in zip(self.index.paths, models, strict=True):
            session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
            values = session.run(list(stage.sends), feeds)
            self.sends[stage.path] = dict(zip(stage.sends, values, strict=True))
        self.order = [s.path for s in self.index.paths]

    def request(self, frame, path, tensors=None, *, model=None, params=None) -> str | dict:
        """Send one request; the answer's tensors, or the error's message."""
        inputs = []
        for name, value in (self.sends[path] if tensors is None else tensors).items():
            dtype = grpcclient.np_to_triton_dtype(value.dtype)
            item = grpcclient.InferInput(name, list(value.shape), dtype)
            item.set_data_from_numpy(value)
            inputs.append(item)
        if params is None:
            params = {protocol.CLIENT: self.client, protocol.FRAME: frame, protocol.PATH: path}
        try:
            result = self.channel.infer(model or self.index.name, inputs, parameters=params)
        except Exception as e:
            return protocol.error_message(str(e))
        outputs = [o["name"] for o in result.get_response(as_json=True)["outputs"]]
        return {name: result.as_numpy(name) for name in outputs}

    def frame(self, frame: int) -> dict:
        """A whole frame in order; the last answer (the model's outputs)."""
        for path in self.order:
            answer = self.request(frame, path)
            assert isinstance(answer, dict), answer
        return answer


def status(address: str) -> dict[str, int]:
    result = grpcclient.InferenceServerClient(address).infer(protocol.STATUS_MODEL, [])
    return {name: int(result.as_numpy(name)[0]) for name in protocol.STATUS_OUTPUTS}


@pytest.fixture
def device(server, plans, request) -> Device:
    return Device(server.address, plans["fl"], client=request.node.name)


def still_serves(device: Device, frame: int = 1000) -> None:
    """The server answers a whole frame of this client after the fault."""
    answer = device.frame(frame)
    assert set(device.index.outputs) <= set(answer)
    assert np.isfinite(answer[device.index.outputs[0]]).all()


def test_unknown_model(device: Device) -> None:
    message = device.request(0, device.order[0], model="no_such_plan")
    assert "unknown model" in message
    still_serves(device)


def test_unknown_path(device: Device) -> None:
    tensors = device.sends[device.order[0]]
    message = device.request(0, 99, tensors)
    assert message.startswith("unknown path 99")
    still_serves(device)


def test_unknown_frame(device: Device) -> None:
    message = device.request(7, device.order[1])  # its first path never came
    assert message.startswith("unknown frame 7")
    still_serves(device)


def test_missing_parameters(device: Device) -> None:
    message = device.request(0, device.order[0], params={protocol.FRAME: 0})
    assert "needs the parameters client" in message
    still_serves(device)


def test_wrong_tensor_name_shape_or_dtype(device: Device) -> None:
    first, second = device.order[:2]
    (name, value), *_ = device.sends[first].items()
    other = device.sends[second]  # a real input of the model, but another path's
    assert device.request(0, first, other).startswith(f"path {first} sends")
    assert "unexpected inference input 'bogus'" in device.request(0, first, {"bogus": value})
    assert "unexpected shape" in device.request(0, first, {name: value[..., :1]})
    assert "data-type" in device.request(0, first, {name: value.astype(np.float64)})
    still_serves(device)


def test_duplicate_path(device: Device) -> None:
    first = device.order[0]
    assert isinstance(device.request(3, first), dict)
    assert device.request(3, first).startswith(f"duplicate path {first} for frame 3")
    for path in device.order[1:]:  # the frame itself survives the refused duplicate
        answer = device.request(3, path)
    assert set(device.index.outputs) <= set(answer)
    still_serves(device)


def test_paths_out_of_order(device: Device) -> None:
    first, second, third = device.order[:3]
    assert isinstance(device.request(4, first), dict)
    message = device.request(4, third)  # skips the second
    assert f"arrived before path {second}" in message
    still_serves(device)


def _wait_until_no_frame_is_open(address: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while status(address)["frames_open"]:
        assert time.monotonic() < deadline, "frames stayed open past the timeout"
        time.sleep(0.2)


def test_a_killed_device_frees_its_frame_after_the_timeout(
    server, plans, device: Device, frame_timeout_s: float
) -> None:
    _wait_until_no_frame_is_open(server.address, frame_timeout_s + 10)  # earlier tests' frames
    before = status(server.address)
    # A device on a slow link: each path takes about a second to send.
    argv = [sys.executable, "-m", "flcompile", "run", str(plans["stream"])]
    argv += ["--server", server.address, "--link-rate", "0.025", "--frames", "5", "-q"]
    victim = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # What is awaited is the victim's first path; while it lives it is starting up
        # (imports, stage models, sessions: slow on a loaded machine). The deadline only
        # guards against a hang.
        deadline = time.monotonic() + 300
        while not status(server.address)["frames_open"]:
            assert time.monotonic() < deadline, "the device never started a frame"
            assert victim.poll() is None, f"the device exited early: {victim.stderr.read()}"
            time.sleep(0.1)
        victim.send_signal(signal.SIGKILL)  # mid-frame: its first path is in, the rest never
        victim.wait(timeout=10)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(timeout=10)
    # Its frame can go only by expiring: once nothing is open, it has expired.
    _wait_until_no_frame_is_open(server.address, frame_timeout_s + 10)
    after = status(server.address)
    assert after["frames_expired"] > before["frames_expired"]
    assert after["rss_bytes"] > 0
    still_serves(device)
    assert cli.main(["run", str(plans["stream"]), "--server", server.address, "--check", "-q"]) == 0
