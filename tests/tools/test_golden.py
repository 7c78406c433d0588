"""The golden test: every emitted file of the zoo cases in tools/golden.py is byte-identical
to tests/data/golden.json (regenerate with `python tools/golden.py --update`)."""

from __future__ import annotations

import copy
import json

import golden
import pytest


def test_outputs_match_the_golden_checksums(capsys):
    code = golden.main(["--check"])
    out = capsys.readouterr().out
    assert code == 0, f"emitted files changed (python tools/golden.py --check):\n{out}"


def test_differences_name_the_changed_file_and_plan_key():
    expected = json.loads(golden.GOLDEN.read_text())
    actual = copy.deepcopy(expected)
    assert golden.differences(expected, actual) == []
    actual["alexnet"]["files"]["edge.onnx"] = "0" * 64
    actual["alexnet"]["plan.json keys"]["paths"] = "1" * 64
    del actual["resnet18-nfl"]
    assert golden.differences(expected, actual) == [
        "alexnet: edge.onnx differs",
        "alexnet: plan.json['paths'] differs",
        "resnet18-nfl: case missing",
    ]


def test_stable_plan_drops_only_run_dependent_fields():
    plan = {
        "model": {"path": "/tmp/flgolden-x/alexnet.onnx", "sha256": "ab"},
        "search": {"grids_tried": 3, "seconds": 0.25},
        "verify": {"passed": True},
        "measured": None,
        "predicted_s": 1.5,
    }
    assert golden.stable_plan(plan) == {
        "model": {"path": "alexnet.onnx", "sha256": "ab"},
        "search": {"grids_tried": 3},
        "predicted_s": 1.5,
    }


def test_unknown_case_is_a_usage_error():
    with pytest.raises(SystemExit) as e:
        golden.main(["--check", "--cases", "lenet"])
    assert e.value.code == 2
