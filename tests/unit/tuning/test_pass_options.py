"""The `tuning-db` options of conv-select-algorithm and conv-tile, and their precedence:
option override > pinned > tuned record > heuristic."""

from __future__ import annotations

import pytest
from xdsl.dialects.builtin import StringAttr
from xdsl.utils.exceptions import PassFailedException

from convir.compiler import lower
from convir.dialects import conv, make_context
from convir.target import Target
from convir.tuning.database import CandidateResult, TuningDatabase
from convir.tuning.workloads import model_workloads
from lowering.kernels import kernel_identity
from passes.select_algorithm import SelectAlgorithmPass
from passes.tile import TilePass
from tests.unit.tuning.tiny import fake_record, tiny_model

IM2COL = {"mr": 3, "nr": 1, "block_pixels": 9, "slots": 1}


@pytest.fixture
def db(tmp_path) -> str:
    host = Target.host()
    path = tmp_path / "t.sqlite"
    with TuningDatabase(path) as database:
        for entry in model_workloads(tiny_model(), host):
            fake_record(database, host, entry.workload.key, "im2col", IM2COL)
    return str(path)


def _convs(algorithms: dict | None = None, pin_first: bool = False):
    ctx = make_context()
    module = lower(tiny_model(), stop="nchwc", ctx=ctx).module
    convs = [op for op in module.walk() if isinstance(op, conv.Conv2DOp)]
    if pin_first:
        convs[0].algorithm = StringAttr("direct")
    return ctx, module, convs


def test_records_replace_the_heuristic_through_the_pass_options(db) -> None:
    ctx, module, convs = _convs()
    SelectAlgorithmPass(tuning_db=db, threads=1).apply(ctx, module)
    TilePass(tuning_db=db, threads=1).apply(ctx, module)
    for op in convs:
        assert op.algorithm.data == "im2col"
        assert {k: v.value.data for k, v in op.schedule.data.items()} == IM2COL
        assert op.attributes["convir.choice"].data == "tuned"


def test_overrides_and_pins_beat_records(db) -> None:
    ctx, module, convs = _convs(pin_first=True)
    SelectAlgorithmPass(tuning_db=db, threads=1, algorithm="conv_2=direct").apply(ctx, module)
    TilePass(tuning_db=db, threads=1).apply(ctx, module)
    sources = [op.attributes["convir.choice"].data for op in convs]
    assert sources == ["pinned", "tuned", "option"]
    assert [op.algorithm.data for op in convs] == ["direct", "im2col", "direct"]


def test_tile_alone_uses_a_record_of_the_convs_algorithm(db) -> None:
    ctx, module, convs = _convs()
    for op in convs:
        op.algorithm = StringAttr("im2col")
    TilePass(tuning_db=db, threads=1).apply(ctx, module)
    assert all(op.attributes["convir.choice"].data == "tuned" for op in convs)


def test_the_choice_attribute_does_not_split_kernels(db) -> None:
    ctx, module, convs = _convs()
    SelectAlgorithmPass(tuning_db=db, threads=1).apply(ctx, module)
    TilePass(tuning_db=db, threads=1).apply(ctx, module)
    first, second = convs[0], convs[1]  # the same workload
    before = kernel_identity(first, 8)
    first.attributes["convir.choice"] = StringAttr("heuristic")
    assert kernel_identity(first, 8) == before == kernel_identity(second, 8)


def test_a_missing_database_is_a_pass_error(tmp_path) -> None:
    ctx, module, _ = _convs()
    with pytest.raises(PassFailedException, match="option tuning-db: no tuning database"):
        SelectAlgorithmPass(tuning_db=str(tmp_path / "none.sqlite")).apply(ctx, module)


def test_a_winner_this_convir_cannot_run_gives_way_to_the_fastest_it_can(tmp_path) -> None:
    """Records outlive code changes: the winner's algorithm may be gone or no longer apply, or a
    knob of its schedule may be gone. The fastest measured candidate that still runs serves (not
    the heuristic, which the tune measured slower)."""
    host = Target.host()
    path = tmp_path / "t.sqlite"
    measured = [
        ("retired", {"knob": 1}),  # an algorithm convir no longer has
        ("im2col", {**IM2COL, "gone": 2}),  # a knob im2col no longer has
        ("im2col", IM2COL),
        ("direct", {}),
    ]
    results = [
        CandidateResult(name, knobs, "ok", median_s=(i + 1) * 1e-3, spread=0.01, samples=7)
        for i, (name, knobs) in enumerate(measured)
    ]
    with TuningDatabase(path) as database:
        for entry in model_workloads(tiny_model(), host):
            database.record(
                host, 1, entry.workload.key, {}, results, heuristic=None, complete=True, seconds=1
            )
    ctx, module, convs = _convs()
    SelectAlgorithmPass(tuning_db=str(path), threads=1).apply(ctx, module)
    TilePass(tuning_db=str(path), threads=1).apply(ctx, module)
    for op in convs:
        assert op.algorithm.data == "im2col"
        assert {k: v.value.data for k, v in op.schedule.data.items()} == IM2COL
        assert op.attributes["convir.choice"].data == "tuned"
