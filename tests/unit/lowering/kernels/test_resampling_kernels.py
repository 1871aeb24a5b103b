"""The kernels of `conv.reduce` and `conv.resize`, lowered to LLVM and JIT-compiled, compute what
`convir.reference` computes, on NCHW and on NCHWc tensors (whose padded lanes hold random values,
which must never reach a logical channel)."""

from __future__ import annotations

import numpy as np
import pytest

from convir import reference
from convir.dialects import conv
from convir.dialects.resampling import COORDINATE_MODES, NEAREST_MODES
from convir.dialects.shapes import blocked_shape
from lowering.kernels.registry import EMITTERS
from tests.unit.lowering.kernels.test_kernels import Build, Case, operand_arrays, run_kernel


def reduce(kind: str, axes: tuple[int, ...], keepdims: bool = True) -> Build:
    return lambda a: [conv.ReduceOp(a[0], kind, axes, keepdims)]


def resize(size, scales, mode: str, coordinates: str, nearest: str | None = None) -> Build:
    return lambda a: [conv.ResizeOp(a[0], size, scales, mode, coordinates, nearest)]


REDUCE_CASES = [
    Case(f"reduce_{kind}_{'x'.join(map(str, axes))}_{keep}", [shape], reduce(kind, axes, keep))
    for kind in ("mean", "max", "sum")
    for shape, axes, keep in (
        ((2, 5, 3, 19), (3,), True),
        ((2, 5, 3, 19), (1,), False),
        ((1, 6, 4, 5), (1, 2, 3), True),
        ((3, 4, 21), (0, 2), False),
        ((2, 17), (0, 1), False),
        ((1, 64, 9, 9), (2,), True),
    )
]

RESIZE_CASES = [
    *(
        Case(
            f"resize_nearest_{coordinates}_{rounding}",
            [(1, 2, 5, 7)],
            resize((9, 16), (1.8, 2.3), "nearest", coordinates, rounding),
        )
        for coordinates in COORDINATE_MODES
        if coordinates != "half_pixel_symmetric"
        for rounding in NEAREST_MODES
    ),
    *(
        Case(
            f"resize_linear_{coordinates}",
            [(2, 3, 6, 5)],
            resize((11, 3), (1.9, 0.6), "linear", coordinates),
            1e-4,
        )
        for coordinates in COORDINATE_MODES
    ),
    Case(
        "resize_nearest_down",
        [(1, 2, 9, 8)],
        resize((4, 3), (0.5, 0.4), "nearest", "asymmetric", "ceil"),
    ),
    Case(
        "resize_linear_to_one",
        [(1, 2, 4, 4)],
        resize((1, 1), (0.25, 0.25), "linear", "pytorch_half_pixel"),
    ),
    Case(
        "resize_linear_threaded",
        [(1, 16, 32, 32)],
        resize((64, 64), (2.0, 2.0), "linear", "half_pixel"),
        1e-4,
    ),
]
CASES = REDUCE_CASES + RESIZE_CASES


@pytest.mark.parametrize("vector_width", [8, 1])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_kernel_matches_reference(case: Case, vector_width: int) -> None:
    graph, op = case.graph()
    inputs = case.inputs()
    expected = reference.run(graph, inputs)["result0"]
    actual = run_kernel(op, operand_arrays(op, graph, inputs), vector_width)
    np.testing.assert_allclose(actual, expected, rtol=case.tolerance, atol=case.tolerance)


BLOCKED_CASES = [
    ("reduce_mean_h_keep", (1, 13, 6, 5), reduce("mean", (2,))),
    ("reduce_max_hw_keep", (2, 9, 4, 7), reduce("max", (2, 3))),
    ("reduce_sum_batch_w_keep", (2, 5, 3, 4), reduce("sum", (0, 3))),
    (
        "resize_nearest",
        (1, 11, 5, 6),
        resize((10, 12), (2.0, 2.0), "nearest", "asymmetric", "floor"),
    ),
    (
        "resize_linear",
        (1, 11, 5, 6),
        resize((13, 4), (2.6, 0.7), "linear", "pytorch_half_pixel"),
    ),
    ("resize_linear_align", (2, 3, 4, 4), resize((7, 9), (1.75, 2.25), "linear", "align_corners")),
]


@pytest.mark.parametrize("block", [4, 16])
@pytest.mark.parametrize(("id", "shape", "build"), BLOCKED_CASES, ids=[c[0] for c in BLOCKED_CASES])
def test_nchwc_kernel_matches_reference_on_logical_channels(
    id: str, shape: tuple[int, int, int, int], build: Build, block: int
) -> None:
    case = Case(id, [blocked_shape(shape, block)], build, 1e-4)
    _, op = case.graph()
    (packed,) = case.inputs()
    logical = reference.unpack(packed, shape[1])
    nchw_case = Case(id, [shape], build)
    nchw_graph, _ = nchw_case.graph()
    expected = reference.run(nchw_graph, [logical])["result0"]
    actual = reference.unpack(run_kernel(op, [packed], 8), shape[1])
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_keys_tell_every_attribute_apart() -> None:
    cases = [
        *CASES,
        Case("keep", [(2, 5, 3, 19)], reduce("mean", (3,), False)),
        Case(
            "scale", [(1, 2, 5, 7)], resize((9, 16), (1.8, 2.4), "nearest", "asymmetric", "floor")
        ),
    ]
    keys = [EMITTERS[type(op)].key(op) for op in (c.graph()[1] for c in cases)]
    assert len(set(keys)) == len(keys), sorted(k for k in keys if keys.count(k) > 1)
