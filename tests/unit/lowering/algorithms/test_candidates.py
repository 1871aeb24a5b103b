"""Every algorithm's search space (`candidates`) and tolerance (`tolerance`): the heuristic
first, no duplicates, valid schedules; every candidate of direct and depthwise compiles and
matches the float64 reference within its algorithm's tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from convir import reference
from convir.target import Target
from lowering.algorithms import ALGORITHMS
from tests.onnx_cases import rand
from tests.unit.lowering.algorithms.nchwc_harness import (
    ConvCase,
    compile_nchwc_conv,
    logical_lanes,
    scheduled_conv,
)

#: One conv each algorithm applies to (NCHWc at block 16 in `scheduled_conv`).
CASES = {
    "direct": ConvCase(rand(1, 20, 9, 11), rand(40, 20, 3, 3, seed=1), rand(40, seed=2)),
    "depthwise": ConvCase(rand(1, 24, 9, 13), rand(24, 1, 3, 3, seed=1), rand(24, seed=2)),
    "gemm1x1": ConvCase(rand(1, 32, 7, 7), rand(48, 32, 1, 1, seed=1)),
    "im2col": ConvCase(rand(1, 32, 14, 14), rand(32, 32, 3, 3, seed=1)),
    "winograd": ConvCase(rand(1, 32, 14, 14), rand(32, 32, 3, 3, seed=1)),
    "im2win": ConvCase(rand(1, 24, 15, 13), rand(40, 24, 3, 3, seed=1), rand(40, seed=2)),
}
CASES["direct"].attributes = dict(pads=[1, 1, 1, 1])
CASES["depthwise"].attributes = dict(pads=[1, 1, 1, 1], group=24)
CASES["winograd"].attributes = dict(pads=[1, 1, 1, 1])
CASES["im2win"].attributes = dict(pads=[1, 0, 1, 2], strides=[2, 1])


@pytest.mark.parametrize("name", list(ALGORITHMS))
@pytest.mark.parametrize("target", [Target.host(), Target.preset("x86-avx512")])
def test_candidates_start_with_the_heuristic(name: str, target: Target) -> None:
    algorithm = ALGORITHMS[name]
    op = scheduled_conv(CASES[name])
    assert algorithm.applicable(op)
    menu = algorithm.candidates(op, target)
    assert menu[0] == algorithm.heuristic(op, target)
    assert len(menu) == len(set(menu)) >= 2
    for schedule in menu:
        assert algorithm.SCHEDULE.from_attr(schedule.to_attr()) == schedule
        assert 0 < algorithm.tolerance(schedule) <= 1e-4


def test_winograd_tolerance_grows_with_m() -> None:
    winograd = ALGORITHMS["winograd"]
    op = scheduled_conv(CASES["winograd"])
    by_m = {s.m: winograd.tolerance(s) for s in winograd.candidates(op, Target.host())}
    assert by_m[2] < by_m[4] < by_m[6]


@pytest.mark.parametrize("name", ["direct", "depthwise", "im2win"])
def test_every_candidate_is_within_tolerance(name: str, tmp_path) -> None:
    algorithm = ALGORITHMS[name]
    case = CASES[name]
    target = Target.host()
    op = scheduled_conv(case)
    x64 = case.x.astype(np.float64)
    expected = reference.conv2d(x64, case.weight.astype(np.float64), case.bias, **case.attributes)
    for schedule in algorithm.candidates(op, target):
        compiled = compile_nchwc_conv(case, 16, name, schedule, cache_dir=tmp_path)
        y = compiled.run({"x": reference.pack(case.x, 16)})["y"]
        y = logical_lanes(y, case.weight.shape[0])
        error = np.max(np.abs(y - expected)) / np.max(np.abs(expected))
        assert error <= algorithm.tolerance(schedule), schedule
