"""`passes.fuse_layers` as a Python API: option errors, the cost model's refusals, and
`convir.compiler.lower`'s `fusion` argument."""

from __future__ import annotations

import pytest
from xdsl.utils.exceptions import PassFailedException

from convir.compiler import lower
from convir.dialects import conv, make_context
from convir.target import Target
from passes.fuse_layers import fuse_layers, fusible_chains, fusion_pays
from tests.onnx_cases import rand
from tests.unit.lowering.algorithms.fused_harness import ChainCase, ChainConv, chain_module

TARGET = Target.preset("x86-avx2").with_(l2_bytes=512 * 1024, cores=2)


def _dense_case(second_kernel: int) -> ChainCase:
    pads = [second_kernel // 2] * 4
    return ChainCase(
        rand(1, 16, 28, 28),
        ChainConv(rand(16, 16, 3, 3, seed=1), None, "relu", dict(pads=[1] * 4)),
        ChainConv(rand(16, 16, second_kernel, second_kernel, seed=2), attributes=dict(pads=pads)),
    )


@pytest.mark.parametrize(("kernel", "kind"), [(1, "3x3_1x1"), (3, "3x3_3x3")])
def test_auto_never_fuses_a_type_without_an_emitter(kernel: int, kind: str) -> None:
    module = chain_module(make_context(), _dense_case(kernel), 8)
    (first, second), *_ = fusible_chains(module, (kind,))
    assert not fusion_pays(first, second, TARGET)
    assert fuse_layers(module, TARGET, "auto", kind) == 0
    assert fuse_layers(module, TARGET, "all", kind) == 1
    fused = next(op for op in module.walk() if isinstance(op, conv.FusedOp))
    assert fused.schedule is None  # nothing to schedule: no emitter


def test_bad_options_name_the_option() -> None:
    module = chain_module(make_context(), _dense_case(1), 8)
    with pytest.raises(PassFailedException, match="option mode: unknown mode 'often'"):
        fuse_layers(module, TARGET, "often")
    with pytest.raises(PassFailedException, match="option pairs: unknown chain type '5x5'"):
        fuse_layers(module, TARGET, "all", "5x5")


def test_lower_rejects_an_unknown_fusion_mode() -> None:
    module = chain_module(make_context(), _dense_case(1), 8)
    with pytest.raises(ValueError, match="fusion: unknown mode 'yes'; expected one of auto"):
        lower(module, stop="nchwc", fusion="yes")
