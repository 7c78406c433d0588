"""tools/export_fixtures.py: one line and exit 2 without torch, never overwrites by default,
and (with the `fixtures` extra, under -m slow) writes an export that flcompile compiles."""

from __future__ import annotations

import sys

import export_fixtures
import onnx
import pytest

from flcompile.compile import CompileOptions, compile_model
from flcompile.costs import LinkModel
from flcompile.search import SearchOptions


def test_names_match_the_fixture_convention():
    assert [e.file_name for e in export_fixtures.EXPORTS] == [
        "squeezenet1_1.legacy.onnx",
        "squeezenet1_1.dynamo.onnx",
        "resnet18.legacy.onnx",
        "mobilenet_v2.dynamo.onnx",
        "googlenet.legacy.onnx",
    ]


def test_without_torch_one_line_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    out = tmp_path / "fixtures"
    assert export_fixtures.main([str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "torch is not installed" in err and "pip install -e '.[fixtures]'" in err
    assert not out.exists()


def test_existing_files_are_kept_without_force(tmp_path, capsys):
    mine = tmp_path / "resnet18.legacy.onnx"
    mine.write_bytes(b"a user's file")
    code = export_fixtures.main(
        [str(tmp_path), "--only", "resnet18.legacy.onnx", "googlenet.legacy.onnx"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "resnet18.legacy.onnx" in err and "--force" in err
    assert mine.read_bytes() == b"a user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resnet18.legacy.onnx"]


def test_unknown_file_name_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        export_fixtures.main([str(tmp_path), "--only", "vgg16.legacy.onnx"])
    assert info.value.code == 2
    assert "vgg16.legacy.onnx" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("file_name", ["squeezenet1_1.legacy.onnx", "squeezenet1_1.dynamo.onnx"])
def test_writes_an_export_that_compiles(file_name, tmp_path):
    pytest.importorskip("torch", reason="needs the fixtures extra: pip install -e '.[fixtures]'")
    assert export_fixtures.main([str(tmp_path), "--only", file_name]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [file_name]  # no scratch files left
    model = onnx.load(str(tmp_path / file_name))
    legacy = file_name.endswith(".legacy.onnx")
    assert [i.name for i in model.graph.input] == (["input"] if legacy else ["x"])
    if legacy:
        assert [o.version for o in model.opset_import if o.domain == ""] == [17]
    options = CompileOptions(
        link=LinkModel(rate_MBps=1.8), search=SearchOptions(grid=(2, 2)), runs=0
    )
    result = compile_model(str(tmp_path / file_name), tmp_path / "out", options)
    assert result.verify is not None and result.verify.passed
