"""A challenger must confirm its win over the heuristic's choice, timed alternately with it, and
records belong to the kernel code that was measured."""

from __future__ import annotations

import pytest

from convir.target import Target
from convir.tuning import database as database_module
from convir.tuning import tuner
from convir.tuning.database import CandidateResult, TuningDatabase, kernel_version
from convir.tuning.measure import confirm_speedup
from convir.tuning.space import heuristic_candidate, search_space
from convir.tuning.workloads import model_workloads
from tests.unit.tuning.tiny import fake_record, tiny_model

HOST = Target.host()


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch) -> None:
    monkeypatch.setenv("CONVIR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def _measured(entry):
    """The heuristic's candidate (measured slower) and a challenger (measured faster)."""
    candidates = search_space(entry.op, HOST, ["direct", "im2col"], per_algorithm=2)[:2]
    assert candidates[0] == heuristic_candidate(entry.op, HOST)
    results = [
        CandidateResult(c.algorithm, c.schedule, "ok", median_s=t, spread=0.01, samples=7)
        for c, t in zip(candidates, (1.0e-3, 0.9e-3), strict=True)
    ]
    return candidates, results


@pytest.mark.parametrize(
    ("speedup", "challenger_wins"), [(1.2, True), (1.01, False), (None, False)]
)
def test_the_fastest_wins_only_when_its_speedup_is_confirmed(
    monkeypatch, speedup, challenger_wins: bool
) -> None:
    entry = model_workloads(tiny_model(), HOST)[0]
    candidates, results = _measured(entry)
    asked = []

    def fake_confirm(workload, heuristic, challenger, *, threads, target):
        asked.append((heuristic, challenger, threads))
        return speedup

    monkeypatch.setattr(tuner, "confirm_speedup", fake_confirm)
    winner = tuner._confirmed_winner(entry, candidates, results, results[0], 1, HOST)
    assert asked == [(candidates[0], candidates[1], 1)]
    assert (winner is results[1]) == challenger_wins
    assert (winner is results[0]) != challenger_wins
    assert results[1].message.startswith("confirmed" if challenger_wins else "lost")


def test_a_heuristic_that_is_fastest_wins_without_a_confirmation(monkeypatch) -> None:
    entry = model_workloads(tiny_model(), HOST)[0]
    candidates, results = _measured(entry)
    results.reverse()  # now the heuristic's result (index 0) is the faster one
    monkeypatch.setattr(tuner, "confirm_speedup", lambda *a, **k: pytest.fail("confirmed"))
    assert tuner._confirmed_winner(entry, candidates, results, results[0], 1, HOST) is results[0]


def test_confirm_speedup_times_both_candidates_for_real() -> None:
    entry = model_workloads(tiny_model(), HOST)[0]
    candidates = search_space(entry.op, HOST, ["direct", "im2col"], per_algorithm=2)[:2]
    speedup = confirm_speedup(entry.workload, *candidates, threads=1, target=HOST, rounds=3)
    assert speedup is not None and 0.05 < speedup < 20


def test_a_recorded_winner_is_the_one_given(tmp_path) -> None:
    database = TuningDatabase(tmp_path / "t.sqlite")
    entry = model_workloads(tiny_model(), HOST)[0]
    _, results = _measured(entry)
    key = entry.workload.key
    database.record(
        HOST, 1, key, {}, results, heuristic=results[0], winner=results[0], complete=True, seconds=1
    )
    record = database.lookup(HOST, 1, key)
    assert (record.algorithm, record.schedule) == (results[0].algorithm, results[0].schedule)
    assert record.runner_up is not None and record.runner_up.median_s == 0.9e-3


def test_records_of_other_kernel_code_are_kept_but_not_used(tmp_path, monkeypatch) -> None:
    database = TuningDatabase(tmp_path / "t.sqlite")
    assert kernel_version().startswith("0.") and "+" in kernel_version()
    with monkeypatch.context() as old_code:
        old_code.setattr(database_module, "kernel_version", lambda: "0.0.0+oldcode")
        fake_record(database, HOST, "k", "direct", {})
    assert database.lookup(HOST, 1, "k") is None
    assert database.other_versions(HOST, 1) == 1 and database.other_versions(HOST, 2) == 0


def test_explain_says_when_only_records_of_other_kernel_code_exist(tmp_path, monkeypatch) -> None:
    from convir.tuning.explain import explain, format_table
    from convir.tuning.records import TuningRecords

    database = TuningDatabase(tmp_path / "t.sqlite")
    records = TuningRecords(database, HOST, 1)
    assert explain(tiny_model(), records=records, measure=False).note == ""
    with monkeypatch.context() as old_code:
        old_code.setattr(database_module, "kernel_version", lambda: "0.0.0+oldcode")
        for entry in model_workloads(tiny_model(), HOST):
            fake_record(database, HOST, entry.workload.key, "direct", {})
    report = explain(tiny_model(), records=records, measure=False)
    assert {row.source for row in report.rows} == {"heuristic"}
    assert "2 record(s) of this target at 1 thread(s)" in report.note
    assert format_table(report).splitlines()[-1] == report.note
