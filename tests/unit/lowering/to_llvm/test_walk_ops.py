"""walk_ops yields exactly what xDSL's walk yields, in the same order, for every flag."""

from __future__ import annotations

import pytest

from convir.compiler import lower
from lowering.to_llvm.conversion import walk_ops
from tests.onnx_cases import rand, single_node_model


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("region_first", [False, True])
def test_walk_ops_equals_xdsl_walk_on_a_kernel(reverse, region_first) -> None:
    model = single_node_model(
        "Conv", {"x": rand(1, 8, 9, 9)}, {"w": rand(8, 8, 3, 3)}, pads=[1, 1, 1, 1]
    )
    module = lower(model, stop="threaded").module
    expected = list(module.walk(reverse=reverse, region_first=region_first))
    assert len(expected) > 50, "nested loops, several regions"
    assert walk_ops(module, reverse=reverse, region_first=region_first) == expected
    region = module.body
    expected = list(region.walk(reverse=reverse, region_first=region_first))
    assert walk_ops(region, reverse=reverse, region_first=region_first) == expected
