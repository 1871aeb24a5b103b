"""Weights as dense_resource blobs: printed on request, parsed back bit-exact, owned per context."""

from __future__ import annotations

import numpy as np
import pytest

from convir import reference
from convir.dialects import make_context, module_to_text, parse_module
from convir.dialects.resources import resources_of, sanitize_handle
from convir.importer.onnx import import_onnx
from tests.onnx_cases import rand, single_node_model

MODEL = single_node_model("Conv", {"x": rand(1, 3, 6, 6)}, {"onnx::Conv_1": rand(4, 3, 3, 3)})
X = rand(1, 3, 6, 6, seed=9)


def test_blobs_round_trip_bit_exact_into_a_fresh_context() -> None:
    ctx = make_context(elide_weights=False)
    module = import_onnx(MODEL, ctx=ctx)
    text = module_to_text(module, ctx)
    assert "dialect_resources" in text
    fresh = make_context()
    reparsed = parse_module(text, fresh)
    expected = reference.run(module, [X], ctx=ctx)["y"]
    np.testing.assert_array_equal(reference.run(reparsed, [X], ctx=fresh)["y"], expected)


def test_elided_weights_print_handles_only_and_cannot_run() -> None:
    ctx = make_context()
    text = module_to_text(import_onnx(MODEL, ctx=ctx), ctx)
    assert "dense_resource<onnx__Conv_1>" in text and "dialect_resources" not in text
    fresh = make_context()
    module = parse_module(text, fresh)
    with pytest.raises(ValueError, match=r"dense_resource<onnx__Conv_1> has no data .* elided"):
        reference.run(module, [X], ctx=fresh)


def test_contexts_do_not_share_weights() -> None:
    first, second = make_context(), make_context()
    import_onnx(MODEL, ctx=first)
    assert resources_of(first).lookup("onnx__Conv_1") is not None
    assert resources_of(second).lookup("onnx__Conv_1") is None


def test_same_name_twice_gets_distinct_handles() -> None:
    store = resources_of(make_context())
    assert store.add("w", np.zeros(2, np.float32)) == "w"
    assert store.add("w", np.ones(2, np.float32)) == "w_0"


@pytest.mark.parametrize(
    ("name", "handle"),
    [("layer1.0.conv1.weight", "layer1.0.conv1.weight"), ("0:w", "_0_w"), ("", "_")],
)
def test_handles_are_valid_identifiers(name: str, handle: str) -> None:
    assert sanitize_handle(name) == handle


def test_malformed_blob_is_a_parse_error() -> None:
    text = (
        "func.func @f() -> tensor<2xf32> {\n"
        "  %w = conv.constant dense_resource<w> : tensor<2xf32>\n"
        "  func.return %w : tensor<2xf32>\n}\n"
        '{-#\n  dialect_resources: {\n    builtin: {\n      w: "nothex"\n    }\n  }\n#-}\n'
    )
    from xdsl.utils.exceptions import ParseError

    with pytest.raises(ParseError, match="not an MLIR hex blob"):
        parse_module(text, make_context())


def test_blob_of_the_wrong_size_is_refused() -> None:
    text = (
        "func.func @main() -> tensor<3xf32> {\n"
        "  %w = conv.constant dense_resource<w> : tensor<3xf32>\n"
        "  func.return %w : tensor<3xf32>\n}\n"
        '{-#\n  dialect_resources: {\n    builtin: {\n      w: "0x040000000000803f"\n'
        "    }\n  }\n#-}\n"
    )
    ctx = make_context()
    module = parse_module(text, ctx)
    with pytest.raises(ValueError, match="holds 1 elements, its type tensor<3xf32> needs 3"):
        reference.run(module, [], ctx=ctx)
