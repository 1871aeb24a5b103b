"""Measuring candidates in the killable worker: results in order, and an injected crashing,
hanging or wrong candidate recorded as failed or rejected while the others are measured."""

from __future__ import annotations

import pytest

from convir.target import Target
from convir.tuning.measure import measure_workload
from convir.tuning.space import heuristic_candidate, search_space
from convir.tuning.workloads import model_workloads
from tests.unit.tuning.tiny import tiny_model


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch) -> None:
    monkeypatch.setenv("CONVIR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def test_workloads_of_a_model_are_distinct_and_keyed() -> None:
    workloads = model_workloads(tiny_model(), Target.host())
    assert [entry.count for entry in workloads] == [2, 1]
    assert workloads[0].convs == ["conv_0", "conv_1"]
    first = workloads[0].workload
    assert first.key.startswith("n1c16h10w10o16k3x3s1x1p1_1_1_1d1x1g1x")
    assert first.key.endswith("_b_relu") and first.flop == 2 * 16 * 16 * 9 * 100
    assert type(first).from_json(first.to_json()) == first


def test_the_space_starts_with_the_heuristic_and_covers_every_applicable_algorithm() -> None:
    target = Target.host()
    entry = model_workloads(tiny_model(), target)[0]
    space = search_space(entry.op, target, per_algorithm=2)
    assert space[0] == heuristic_candidate(entry.op, target)
    assert {c.algorithm for c in space} == {"direct", "im2col", "im2win", "winograd"}
    assert len(space) == len(set(space))
    only = search_space(entry.op, target, ["im2col"], per_algorithm=2)
    assert {c.algorithm for c in only} == {"im2col"}


def test_crashing_hanging_and_wrong_candidates_are_recorded_and_tuning_goes_on() -> None:
    target = Target.host()
    entry = model_workloads(tiny_model(), target)[0]
    candidates = search_space(entry.op, target, ["direct", "im2col"], per_algorithm=3)[:5]
    assert len(candidates) == 5
    faults = {1: "crash", 2: "hang", 3: "wrong"}
    seen = []
    results = measure_workload(
        entry.workload,
        candidates,
        threads=1,
        target=target,
        repeats=3,
        faults=faults,
        on_result=lambda index, result: seen.append(index),
    )
    # The last candidate is measured in full, or stopped early once clearly slower than the
    # first (which one depends on the machine's speed at the moment, not on the faults).
    statuses = [r.status for r in results]
    assert statuses[:4] == ["ok", "failed", "failed", "rejected"]
    assert statuses[4] in ("ok", "slower")
    assert "signal 6" in results[1].message
    assert "timed out" in results[2].message
    assert results[3].max_rel_error > results[3].tolerance
    for result in (results[0], results[4]):
        assert result.median_s > 0 and result.max_rel_error <= result.tolerance
        assert result.samples == 3 and result.workspace_bytes is not None
    assert results[0].workspace_bytes == 0  # the heuristic's direct conv
    assert sorted(seen) == [0, 1, 2, 3, 4]
    assert [(r.algorithm, r.schedule) for r in results] == [
        (c.algorithm, c.schedule) for c in candidates
    ]


def test_a_spent_budget_skips_what_is_left() -> None:
    target = Target.host()
    entry = model_workloads(tiny_model(), target)[1]
    candidates = search_space(entry.op, target, per_algorithm=1)
    results = measure_workload(entry.workload, candidates, threads=1, target=target, deadline=0.0)
    assert {r.status for r in results} == {"skipped"}
