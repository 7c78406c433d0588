"""`flcompile run` against a live `flcompile serve`: exact outputs, streaming, reports, errors."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.request
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from flcompile import cli
from flcompile.deploy.plan_index import load_index
from flcompile.send_accuracy import FLOAT16_SEND_TOLERANCE
from flcompile.serve.launcher import free_port
from flcompile.verify import compare, make_feeds

MODEL_OF = {"fl": "sq96", "fl_bare": "sq96", "nfl": "sq96", "stream": "r18"}
MODEL_OF |= {"fl16": "sq96", "fl16_bare": "sq96", "silent": "sq96", "inter": "sq96"}
FLOAT16 = ("fl16", "fl16_bare")


def _original(model: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {name: x}), strict=True))


@pytest.mark.parametrize("plan", ["fl", "fl_bare", "nfl", "stream", "silent", "inter", *FLOAT16])
def test_one_frame_end_to_end_equals_the_original(
    server, plans, deploy_models, tmp_path: Path, capsys, plan: str
) -> None:
    model = deploy_models[MODEL_OF[plan]]
    x = next(iter(make_feeds(str(model), seed=11).values()))
    np.save(tmp_path / "x.npy", x)
    argv = ["run", str(plans[plan]), "--server", server.address, "--input", str(tmp_path / "x.npy")]
    argv += [
        "--check",
        "--save-output",
        str(tmp_path / "y.npz"),
        "--report",
        str(tmp_path / "r.json"),
    ]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "frame 0: " in printed and "predicted" in printed and "ratio" in printed
    assert "check ok" in printed
    want = _original(model, x)
    tolerance = FLOAT16_SEND_TOLERANCE if plan in FLOAT16 else 1e-5
    with np.load(tmp_path / "y.npz") as got:
        assert sorted(got) == sorted(want)
        for name in want:
            check = compare(name, got[name], want[name], rtol=tolerance, atol=tolerance)
            assert check.passed
            assert check.max_abs_err > 0 or plan not in FLOAT16  # float16 sends round
    report = json.loads((tmp_path / "r.json").read_text())
    index = load_index(plans[plan])
    assert report["predicted_s"] == index.predicted_s  # unpaced: the plan's own prediction
    assert report["median_latency_s"] == report["frames"][0]["latency_s"] > 0
    kinds = {(e["kind"], e["path"]) for e in report["frames"][0]["events"]}
    for stage in index.paths:  # a path that sends nothing has an edge stage only
        sent = {("device", stage.path), ("send", stage.path), ("answer", stage.path)}
        assert sent <= kinds if stage.sends else not sent & kinds
        assert ("edge", stage.path) in kinds
    if plan != "inter":  # whether a scan sends nothing for some path depends on the grid
        assert any(not stage.sends for stage in index.paths) == (plan == "silent")
    assert any(stage.keeps for stage in index.paths) == (plan == "inter")
    assert (("fuse", None) in kinds) == index.fused
    assert (tmp_path / "timeline_measured.png").stat().st_size > 0
    if plan in FLOAT16:  # float16 on the wire: what plan.json counts, half of fl's bytes
        sent = {e["path"]: e["bytes"] for e in report["frames"][0]["events"] if e["kind"] == "send"}
        assert sent == {p: b for p, (b, _) in _planned_bytes(plans[plan]).items()}
        fl16, fl = _planned_bytes(plans["fl16"]), _planned_bytes(plans["fl"])
        same_cut = [p for p in fl16 if fl16[p][1] == fl[p][1]]
        assert same_cut and all(2 * fl16[p][0] == fl[p][0] for p in same_cut)


def _planned_bytes(out: Path) -> dict[int, tuple[int, str | None]]:
    """Per path, the bytes plan.json says it sends, and its cut."""
    plan = json.loads((out / "plan.json").read_text())
    paths = plan["paths"]
    return {p["index"]: (sum(s["bytes"] for s in p["sends"]), p["cut_after"]) for p in paths}


def test_each_path_is_sent_while_the_next_computes(server, plans, tmp_path: Path) -> None:
    # ResNet18's paths run 3-5 ms on the device; paced at 0.5 MB/s their 25 KB take 50 ms.
    report_path = tmp_path / "r.json"
    argv = ["run", str(plans["stream"]), "--server", server.address, "--frames", "5"]
    argv += ["--link-rate", "0.5", "--report", str(report_path), "-q"]
    assert cli.main(argv) == 0
    report = json.loads(report_path.read_text())
    order = [s.path for s in load_index(plans["stream"]).paths]
    overlaps = 0
    for frame in report["frames"]:
        ev = {(e["kind"], e["path"]): e for e in frame["events"]}
        for k, path in enumerate(order):
            device, send = ev[("device", path)], ev[("send", path)]
            assert send["start"] >= device["end"]  # a path goes once its stage is done...
            assert send["end"] - send["start"] >= send["bytes"] / 0.5e6 * 0.99  # ...paced
            if k:
                assert send["start"] >= ev[("send", order[k - 1])]["end"]  # one link, FCFS
            if k + 1 < len(order):
                after = ev[("device", order[k + 1])]
                overlaps += after["start"] < send["end"] and send["start"] < after["end"]
    # Streaming: the device computes path k+1 while path k is on the link. Sending at the
    # end would never overlap. The sender thread must wake within path k+1's 3-5 ms stage
    # to overlap it, which a loaded machine's scheduler can miss now and then: 5 frames
    # give 15 chances, of which one must overlap.
    assert overlaps >= 1
    # Compiled for 0.3 MB/s, the plan is re-simulated at the paced 0.5 MB/s: faster sends.
    assert report["link_rate_MBps"] == 0.5
    assert report["predicted_s"] < load_index(plans["stream"]).predicted_s


def test_devices_at_once_get_their_own_frames(server, plans) -> None:
    codes: list[int] = []

    def device(seed: int) -> None:
        argv = ["run", str(plans["fl"]), "--server", server.address, "--frames", "3"]
        codes.append(cli.main([*argv, "--seed", str(seed), "--check", "-q"]))

    threads = [threading.Thread(target=device, args=(seed,)) for seed in (0, 100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert codes == [0, 0]  # --check compares each frame with its own input's original


def test_frames_start_a_frame_gap_after_the_last_answer(server, plans, tmp_path: Path) -> None:
    report_path = tmp_path / "gap.json"
    argv = ["run", str(plans["fl"]), "--server", server.address, "--frames", "2", "-q"]
    assert cli.main([*argv, "--frame-gap", "0.3", "--report", str(report_path)]) == 0
    first, second = json.loads(report_path.read_text())["frames"]
    assert second["start_epoch_s"] - (first["start_epoch_s"] + first["latency_s"]) >= 0.3


def test_unreachable_server_exits_2_in_one_line(plans, capsys) -> None:
    port = free_port()  # nothing listens there
    assert cli.main(["run", str(plans["fl"]), "--server", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach the edge server" in err[0]


def test_a_plan_the_server_lacks_exits_2(server, plans, tmp_path: Path, capsys) -> None:
    other = tmp_path / "other.flc"
    shutil.copytree(plans["nfl"], other)
    plan = json.loads((other / "plan.json").read_text())
    plan["model"]["sha256"] = "0" * 64  # another model: another plan name
    (other / "plan.json").write_text(json.dumps(plan))
    assert cli.main(["run", str(other), "--server", server.address]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not serve this plan" in err[0]


def test_run_refuses_to_replace_a_users_file(server, plans, tmp_path: Path, capsys) -> None:
    mine = tmp_path / "notes.json"
    mine.write_text('{"mine": true}')
    argv = ["run", str(plans["fl"]), "--server", server.address, "--report", str(mine)]
    assert cli.main(argv) == 2
    assert "not written by flcompile" in capsys.readouterr().err
    assert mine.read_text() == '{"mine": true}'


def test_any_kserve_client_over_http(server) -> None:
    base = f"http://127.0.0.1:{server.http_port}/v2"
    with urllib.request.urlopen(f"{base}/health/ready", timeout=30) as answer:
        assert answer.status == 200
    request = urllib.request.Request(
        f"{base}/models/flcompile_status/infer",
        data=json.dumps({"inputs": []}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        outputs = {o["name"]: o["data"] for o in json.loads(answer.read())["outputs"]}
    assert set(outputs) == {
        "frames_open",
        "frames_done",
        "frames_expired",
        "requests_failed",
        "rss_bytes",
    }
    assert outputs["rss_bytes"][0] > 0
    assert f"HTTP on port {server.http_port}" in server.up_line


def test_serving_one_plan_twice_is_refused(plans, capsys) -> None:
    argv = ["serve", str(plans["fl"]), str(plans["fl_bare"]), "--host", "127.0.0.1"]
    assert cli.main([*argv, "--port", str(free_port())]) == 2  # the same plan, stages or not
    assert "two OUTs hold the same plan" in capsys.readouterr().err
