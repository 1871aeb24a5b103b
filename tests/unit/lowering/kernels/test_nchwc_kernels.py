"""The op kernels of `lowering.kernels` on NCHWc tensors ([N, C/X, H, W, X]) at X = 4, 8, 16.

Each kernel, lowered to LLVM and JIT-compiled, computes on the logical channels what
`convir.reference` computes. Inputs have random values in their padded lanes too, so a kernel
that lets a padded lane reach a logical one fails. All cases of one X are compiled as one module,
once, and kernels are emitted for a vector width of 8 whatever X is.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects import func, memref, scf, vector
from xdsl.dialects.builtin import ModuleOp, VectorType, f32
from xdsl.ir import Operation

from convir import reference
from convir.dialects import conv
from convir.dialects.shapes import blocked_shape, tensor_shape
from lowering.emit import kernel_function
from lowering.jit import CompiledLibrary, compile_ir
from lowering.kernels import kernel_symbol
from lowering.kernels.registry import EMITTERS
from lowering.parallel_to_pool import ConvertParallelToPoolPass
from lowering.to_llvm import lower_to_llvm, translate_to_llvm_ir
from tests.unit.lowering.kernels.test_kernels import Build, Case, act, binary, pool

BLOCKS = (4, 8, 16)
VECTOR_WIDTH = 8


@dataclass
class BlockedCase(Case):
    """A `Case` whose result is compared on its first `channels` logical channels only (an NCHWc
    result's padded lanes are arbitrary); None compares the whole result."""

    channels: int | None = None


def blocked(block: int, *shapes: tuple[int, int, int, int]) -> list[tuple[int, ...]]:
    """The NCHWc shapes of NCHW `shapes`."""
    return [blocked_shape(shape, block) for shape in shapes]


def global_pool(kind: str) -> Build:
    """A `conv.global_pool` of the first argument."""
    return lambda a: [conv.GlobalPoolOp(a[0], kind)]


@cache
def cases(block: int) -> list[BlockedCase]:
    """The cases at block `block`; their ids do not depend on it."""

    def pooled(
        id: str, shape: tuple[int, int, int, int], *window: Any, **options: bool
    ) -> BlockedCase:
        return BlockedCase(id, blocked(block, shape), pool(*window, **options), channels=shape[1])

    def mapped(id: str, shapes: Sequence[tuple[int, int, int, int]], build: Build) -> BlockedCase:
        return BlockedCase(id, blocked(block, *shapes), build, channels=shapes[0][1])

    image, square = (1, 5, 7, 9), (2, 13, 13, 13)
    return [
        *(
            pooled(f"pool_{kind}_k3s2p1", (1, 5, 13, 13), kind, (3, 3), (2, 2), (1,) * 4)
            for kind in ("max", "avg")
        ),
        *(
            pooled(f"pool_{kind}_k2s2", image, kind, (2, 2), (2, 2), (0,) * 4)
            for kind in ("max", "avg")
        ),
        *(
            pooled(f"pool_{kind}_k3s1p1_ceil", image, kind, (3, 3), (1, 1), (1,) * 4, ceil=True)
            for kind in ("max", "avg")
        ),
        pooled("pool_max_k3s2_ceil", (1, 5, 10, 12), "max", (3, 3), (2, 2), (0,) * 4, ceil=True),
        pooled("pool_avg_k3s2p1_ceil", (1, 5, 8, 10), "avg", (3, 3), (2, 2), (1,) * 4, ceil=True),
        pooled("pool_avg_cip", image, "avg", (3, 3), (1, 1), (1,) * 4, cip=True),
        pooled(
            "pool_avg_ceil_cip", (1, 5, 8, 8), "avg", (3, 3), (2, 2), (1,) * 4, ceil=True, cip=True
        ),
        pooled("pool_max_dilated", (1, 5, 9, 11), "max", (2, 2), (1, 1), (1,) * 4, (2, 2)),
        pooled("pool_avg_dilated", (2, 3, 9, 11), "avg", (3, 3), (2, 2), (2,) * 4, (2, 2)),
        pooled("pool_max_padding_only", (1, 2, 1, 1), "max", (2, 2), (1, 1), (2,) * 4, (3, 3)),
        pooled("pool_threaded", (1, 40, 31, 31), "max", (3, 3), (2, 2), (1,) * 4),
        *(mapped(f"global_{kind}", [image], global_pool(kind)) for kind in ("max", "avg")),
        *(mapped(f"global_{kind}_square", [square], global_pool(kind)) for kind in ("max", "avg")),
        mapped("global_avg_threaded", [(2, 37, 33, 29)], global_pool("avg")),
        mapped("add_same", [square, square], binary("add")),
        mapped("mul_per_channel", [image, (1, 5, 1, 1)], binary("mul")),
        mapped("add_per_channel", [square, (1, 13, 1, 1)], binary("add")),
        mapped("act_relu", [square], act("relu")),
        mapped("act_sigmoid", [image], act("sigmoid")),
        mapped("act_hard_swish", [square], act("hard_swish")),
        mapped("act_clip", [image], act("clip", -1.0, 2.5)),
        # Concatenating NCHWc tensors concatenates their blocks, padded lanes included: a copy,
        # so the whole result is compared.
        BlockedCase(
            "concat_channels",
            blocked(block, image, (1, 11, 7, 9), (1, 2, 7, 9)),
            lambda a: [conv.ConcatOp(a, 1)],
        ),
        *(
            BlockedCase(f"pack_c{shape[1]}", [shape], lambda a: [conv.PackOp(a[0], block)])
            for shape in ((1, 3, 7, 9), (2, 58, 13, 13))
        ),
        *(
            BlockedCase(
                f"unpack_c{shape[1]}",
                blocked(block, shape),
                lambda a, c=shape[1]: [conv.UnpackOp(a[0], c)],
            )
            for shape in ((1, 3, 7, 9), (1, 58, 13, 13))
        ),
    ]


IDS = [case.id for case in cases(BLOCKS[0])]


def entry_name(case: Case) -> str:
    """The public function that calls `case`'s kernel."""
    return f"entry_{case.id}"


@cache
def library(block: int) -> CompiledLibrary:
    """Every kernel of `cases(block)`, each called by a public @entry_<case id>, compiled once."""
    module, kernels = ModuleOp([]), dict[str, func.FuncOp]()
    for case in cases(block):
        _, op = case.graph()
        emitter = EMITTERS[type(op)]
        name = emitter.key(op)
        if name not in kernels:
            emitter.emit(op, module, name, VECTOR_WIDTH)
            kernels[name] = module.ops.last
        arguments = kernels[name].function_type.inputs
        with kernel_function(module, entry_name(case), arguments, private=False) as args:
            func.CallOp(name, list(args), [])
    module.verify()
    ConvertParallelToPoolPass().apply(Context(), module)
    lower_to_llvm(module)
    return compile_ir(translate_to_llvm_ir(module), use_cache=False)


def logical(array: np.ndarray, channels: int | None) -> np.ndarray:
    """The logical channels of an NCHWc `array` in NCHW; anything else whole."""
    return array if channels is None else reference.unpack(array, channels)


@pytest.mark.parametrize("case_id", IDS)
@pytest.mark.parametrize("block", BLOCKS)
def test_kernel_matches_reference(block: int, case_id: str) -> None:
    case = cases(block)[IDS.index(case_id)]
    graph, op = case.graph()
    inputs = case.inputs()
    expected = reference.run(graph, inputs)["result0"]
    actual = np.zeros(tensor_shape(op.results[0]), dtype=np.float32)
    buffers = [*inputs, actual]
    entry = library(block).function(entry_name(case), None, [ctypes.c_void_p] * len(buffers))
    entry(*(buffer.ctypes.data for buffer in buffers))
    np.testing.assert_allclose(
        logical(actual, case.channels),
        logical(expected, case.channels),
        rtol=case.tolerance,
        atol=case.tolerance,
    )


def test_keys_are_distinct_across_blocks_and_from_nchw() -> None:
    ops = [case.graph()[1] for block in BLOCKS for case in cases(block)]
    keys = [kernel_symbol(EMITTERS[type(op)], op, 16) for op in ops]
    assert len(set(keys)) == len(keys), sorted(k for k in keys if keys.count(k) > 1)
    nchw = Case("nchw", [(1, 8, 13, 13)], pool("max", (3, 3), (2, 2), (1,) * 4)).graph()[1]
    nchwc = Case("nchwc", [(1, 1, 13, 13, 8)], pool("max", (3, 3), (2, 2), (1,) * 4)).graph()[1]
    pool_emitter = EMITTERS[conv.PoolOp]
    assert kernel_symbol(pool_emitter, nchw, 16) != kernel_symbol(pool_emitter, nchwc, 16)


def emitted(op: Operation) -> ModuleOp:
    """The loop-level kernel of `op`, emitted for VECTOR_WIDTH."""
    module = ModuleOp([])
    EMITTERS[type(op)].emit(op, module, "k", VECTOR_WIDTH)
    return module


@pytest.mark.parametrize("case_id", ["pool_avg_k3s2p1", "pool_max_dilated", "global_max"])
@pytest.mark.parametrize("block", BLOCKS)
def test_pools_move_whole_blocks_as_vectors(block: int, case_id: str) -> None:
    module = emitted(cases(block)[IDS.index(case_id)].graph()[1])
    loads = [op.result.type for op in module.walk() if isinstance(op, vector.LoadOp)]
    assert loads and set(loads) == {VectorType(f32, [block])}
    assert not any(isinstance(op, memref.LoadOp) for op in module.walk())


@pytest.mark.parametrize("case_id", ["pool_threaded", "global_avg_threaded"])
@pytest.mark.parametrize("block", BLOCKS)
def test_large_pools_are_threaded_over_blocks(block: int, case_id: str) -> None:
    module = emitted(cases(block)[IDS.index(case_id)].graph()[1])
    assert any(isinstance(op, scf.ParallelOp) for op in module.walk())
