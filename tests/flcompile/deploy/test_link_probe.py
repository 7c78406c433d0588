"""`flcompile profile --server` against the live server: the link law, its file, planning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flcompile import cli
from flcompile.errors import BadInputError
from flcompile.profile.device_send import DeviceSend
from flcompile.profile.link_fit import fit_link
from flcompile.profile.link_json import KIND, link_profile_dict, read_link
from flcompile.serve.launcher import free_port

PACED_MBPS = 2.0


def _probe(address: str, out: Path, *options: str) -> dict:
    assert cli.main(["profile", "--server", address, "-o", str(out), *options]) == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def paced(server, tmp_path_factory) -> tuple[Path, dict]:
    """A probe through the application's token bucket at PACED_MBPS: a link of known rate."""
    out = tmp_path_factory.mktemp("link") / "paced.json"
    # Sizes whose paced time (0.5 to 128 ms) dwarfs a loaded machine's jitter per request.
    options = ["--link-rate", str(PACED_MBPS), "--sizes", "1", "64", "256", "--rounds", "5"]
    return out, _probe(server.address, out, *options)


def test_a_paced_link_is_measured_at_its_rate_with_a_fixed_cost(paced, capsys) -> None:
    _, profile = paced
    link = profile["link"]
    assert profile["kind"] == KIND and profile["schema"] == 1 and profile["paced_MBps"] == 2.0
    # The bucket holds each payload for bytes / rate; gRPC and Triton add a fixed cost per
    # request, which the fit puts in the latency, not the rate.
    assert 0.75 * PACED_MBPS < link["rate_MBps"] < 1.25 * PACED_MBPS
    assert 0 <= link["latency_s"] < 0.5
    assert [p["bytes"] for p in link["points"]] == [1_000, 64_000, 256_000]
    assert all(p["n"] == 5 for p in link["points"])
    medians = [p["median_s"] for p in link["points"]]
    assert medians == sorted(medians) and medians[-1] > 256_000 / (PACED_MBPS * 1e6)


def test_the_unpaced_loopback_is_faster_than_the_paced_link(server, paced, tmp_path) -> None:
    _, slow = paced
    fast = _probe(server.address, tmp_path / "fast.json", "--rounds", "5")["link"]
    assert fast["rate_MBps"] > 2 * slow["link"]["rate_MBps"] and fast["latency_s"] >= 0


def test_planning_with_the_link_profile_takes_its_rate_and_latency(
    paced, deploy_models, tmp_path, capsys
) -> None:
    link_file, profile = paced
    out = tmp_path / "p.flc"
    argv = [str(deploy_models["sq96"]), "--link-profile", str(link_file), "-o", str(out)]
    assert cli.main([*argv, "--runs", "0", "--no-verify"]) == 0
    assert "measured (" in capsys.readouterr().out
    link = json.loads((out / "plan.json").read_text())["link"]
    assert link["rate_MBps"] == profile["link"]["rate_MBps"]
    assert link["latency_s"] == profile["link"]["latency_s"]
    assert link["profile"] == str(link_file)


def test_an_unreachable_server_exits_2_in_one_line(tmp_path, capsys) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    assert cli.main(["profile", "--server", address, "-o", str(tmp_path / "l.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach the edge server" in err[0]
    assert not (tmp_path / "l.json").exists()


@pytest.mark.parametrize("argv", [["profile"], ["profile", "alexnet", "--server", "h:1"]])
def test_a_model_or_a_server_one_of_them(argv, capsys) -> None:
    assert cli.main(argv) == 2
    assert "MODEL (per-node costs) or --server" in capsys.readouterr().err


def _link_file(tmp_path: Path, device: DeviceSend | None = None, name: str = "link") -> Path:
    fit = fit_link([(1_000, 0.004), (100_000, 0.054), (200_000, 0.104)])
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(link_profile_dict("127.0.0.1:1", fit, None, device)))
    return path


def test_a_link_profile_reads_the_devices_work_per_message_or_none(tmp_path) -> None:
    device = DeviceSend(cpu_s_per_message=0.001, cpu_s_per_byte=2e-9, cpu_share=10.0)
    law = read_link(_link_file(tmp_path, device))
    assert law["device_s_per_message"] == pytest.approx(0.01)
    assert law["device_s_per_byte"] == pytest.approx(2e-8)
    assert law["rate_MBps"] == pytest.approx(2.0, rel=0.01) and law["latency_s"] > 0
    plain = read_link(_link_file(tmp_path, name="plain"))  # an older file: no device section
    assert (plain["device_s_per_message"], plain["device_s_per_byte"]) == (0.0, 0.0)
    bad = json.loads(_link_file(tmp_path, device).read_text())
    bad["device"]["s_per_message"] = -1.0
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(BadInputError, match="device's work per message"):
        read_link(tmp_path / "bad.json")


def test_planning_charges_the_measured_device_work_on_every_path(deploy_models, tmp_path) -> None:
    device = DeviceSend(cpu_s_per_message=0.002, cpu_s_per_byte=0.0, cpu_share=10.0)
    plans = {}
    for name, file in (
        ("plain", _link_file(tmp_path)),
        ("charged", _link_file(tmp_path, device, "d")),
    ):
        out = tmp_path / f"{name}.flc"
        argv = [str(deploy_models["sq96"]), "--link-profile", str(file), "--grid", "2x2"]
        assert cli.main([*argv, "--runs", "0", "--no-verify", "-q", "-o", str(out)]) == 0
        plans[name] = json.loads((out / "plan.json").read_text())
    plain, charged = plans["plain"], plans["charged"]
    assert "device_s_per_message" not in plain["link"]
    assert charged["link"]["device_s_per_message"] == pytest.approx(0.02)
    # Each path's message costs the device 20 ms more, and the prediction grows with them.
    assert charged["predicted_s"] >= plain["predicted_s"] + 0.02
    for p, q in zip(plain["paths"], charged["paths"], strict=True):
        if p["cut_after"] == q["cut_after"]:
            assert q["device_s"] == pytest.approx(p["device_s"] + 0.02)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--rate", "1.8"], "--rate"),
        (["--latency", "0"], "--latency"),
        (["--paper"], "--paper"),
        (["--bandwidth-hz", "1e6"], "radio parameters"),
    ],
)
def test_the_link_profile_excludes_other_ways_to_give_the_link(
    extra, named, tmp_path, capsys
) -> None:
    argv = ["squeezenet", "--link-profile", str(_link_file(tmp_path)), *extra]
    assert cli.main([*argv, "-o", str(tmp_path / "o.flc")]) == 2
    err = capsys.readouterr().err
    assert "--link-profile gives the link's rate and latency" in err and named in err
    assert not (tmp_path / "o.flc").exists()


def test_a_file_that_is_not_a_link_profile_is_refused(tmp_path, capsys) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": 1, "kind": "profile"}))
    argv = ["squeezenet", "--link-profile", str(other), "-o", str(tmp_path / "o.flc")]
    assert cli.main(argv) == 2
    assert "not a schema-1 flcompile link profile" in capsys.readouterr().err
