"""The wire dtype: which tensors travel as float16 and what the costs then count."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
import pytest
from tiny_models import conv_relu_model

from flcompile.costs.untiled import model_costs
from flcompile.costs.wire import wire_bytes, wire_dtype, wire_itemsize


@pytest.mark.parametrize(
    ("dtype", "send_dtype", "want"),
    [
        (np.float32, "float32", np.float32),
        (np.float32, "float16", np.float16),
        (np.float64, "float16", np.float64),  # only float32 is cast
        (np.int64, "float16", np.int64),
        (np.float16, "float16", np.float16),
    ],
)
def test_only_float32_travels_as_float16(dtype, send_dtype, want) -> None:
    assert wire_dtype(dtype, send_dtype) == np.dtype(want)
    assert wire_itemsize(dtype, send_dtype) == np.dtype(want).itemsize


def test_an_unknown_send_dtype_is_refused() -> None:
    with pytest.raises(ValueError, match="bfloat16"):
        wire_dtype(np.float32, "bfloat16")


def test_wire_bytes_of_a_tensor() -> None:
    t = gs.Variable("t", np.float32, (1, 3, 4, 5))
    assert wire_bytes(t, "float32") == 240 and wire_bytes(t, "float16") == 120
    assert wire_bytes(gs.Variable("i", np.int64, (2, 3)), "float16") == 48
    assert wire_bytes(gs.Variable("u", np.float32, None), "float16") is None


def test_float16_halves_every_cut_but_not_the_returned_outputs() -> None:
    graph = gs.import_onnx(conv_relu_model())
    full, half = model_costs(graph), model_costs(graph, "float16")
    assert half.send_dtype == "float16" and full.send_dtype == "float32"
    assert [k for k, _, _ in half.cuts] == [k for k, _, _ in full.cuts]
    assert [b for _, _, b in half.cuts] == [b / 2 for _, _, b in full.cuts]
    assert full.cuts[0][2] == 1 * 2 * 8 * 8 * 4  # the raw input, float32
    assert half.output_bytes == full.output_bytes == 4 * 4
