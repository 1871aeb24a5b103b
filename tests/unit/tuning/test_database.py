"""The tuning database: schema checks that never overwrite a foreign file, records keyed by
target, threads, workload and version, nearest-target look-ups, and the default location."""

from __future__ import annotations

import sqlite3

import pytest

from convir.target import Target
from convir.tuning.database import (
    SCHEMA_VERSION,
    TUNING_DB_ENV,
    CandidateResult,
    TuningDatabase,
    TuningDatabaseError,
    default_path,
)
from tests.unit.tuning.tiny import fake_record

HOST = Target.host()
KEY = "n1c8h10w10o8k3x3s1x1p1_1_1_1d1x1g1x8_b_relu"


def test_a_new_file_gets_the_schema_and_wal(tmp_path) -> None:
    path = tmp_path / "sub" / "t.sqlite"
    TuningDatabase(path).close()
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("SELECT version FROM convir_tuning_schema").fetchall() == [
        (SCHEMA_VERSION,)
    ]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b"this is not sqlite at all, only text" * 100), "SQLite says"),
        (lambda p: _sqlite(p, "CREATE TABLE people (name TEXT)"), "other tables: people"),
        (
            lambda p: _sqlite(
                p,
                "CREATE TABLE convir_tuning_schema (version INTEGER)",
                "INSERT INTO convir_tuning_schema VALUES (99)",
            ),
            "schema version 99",
        ),
    ],
)
def test_a_foreign_file_is_refused_and_left_untouched(tmp_path, make, reason: str) -> None:
    path = tmp_path / "t.sqlite"
    make(path)
    before = path.read_bytes()
    with pytest.raises(TuningDatabaseError, match=reason) as error:
        TuningDatabase(path)
    assert str(path) in str(error.value) and "left untouched" in str(error.value)
    assert path.read_bytes() == before


def _sqlite(path, *statements: str) -> None:
    connection = sqlite3.connect(path)
    for statement in statements:
        connection.execute(statement)
    connection.commit()
    connection.close()


def test_a_reader_does_not_create_a_missing_file(tmp_path) -> None:
    with pytest.raises(TuningDatabaseError, match="no tuning database at"):
        TuningDatabase(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()


def test_every_candidate_is_kept_and_the_fastest_accepted_one_wins(tmp_path) -> None:
    results = [
        CandidateResult("direct", {"ow_block": 4}, "ok", median_s=2e-3),
        CandidateResult("im2col", {"mr": 2}, "ok", median_s=1e-3),
        CandidateResult("winograd", {"m": 6}, "rejected", max_rel_error=1.0),
        CandidateResult("winograd", {"m": 4}, "failed", message="killed by signal 6"),
        CandidateResult("gemm1x1", {"mr": 6}, "slower", median_s=5e-3),
    ]
    with TuningDatabase(tmp_path / "t.sqlite") as database:
        database.record(HOST, 1, KEY, {}, results, heuristic=results[0], complete=True, seconds=3.0)
        record = database.lookup(HOST, 1, KEY)
        assert record is not None
        assert (record.algorithm, record.schedule, record.median_s) == ("im2col", {"mr": 2}, 1e-3)
        assert record.heuristic_median_s == 2e-3 and not record.nearest
        assert record.runner_up is not None and record.runner_up.algorithm == "direct"
        assert [r.status for r in database.candidates(HOST, 1, KEY)] == [
            "ok",
            "ok",
            "rejected",
            "failed",
            "slower",
        ]
        assert database.has(HOST, 1, KEY) and not database.has(HOST, 2, KEY)
        # Tuning again replaces the workload's record whole.
        database.record(HOST, 1, KEY, {}, results[:1], heuristic=None, complete=False, seconds=1)
        assert len(database.candidates(HOST, 1, KEY)) == 1
        assert not database.has(HOST, 1, KEY)  # incomplete: a resumed tune measures it again


def test_another_targets_record_is_used_only_when_asked(tmp_path) -> None:
    other_caches = HOST.with_(l2_bytes=HOST.l2_bytes * 2, cpu="some-other-cpu")
    other_isa = HOST.with_(vector_bits=128, cpu="old-cpu")
    with TuningDatabase(tmp_path / "t.sqlite") as database:
        fake_record(database, other_isa, KEY, "direct", {"ow_block": 3})
        assert database.lookup(HOST, 1, KEY, nearest=True) is None
        fake_record(database, other_caches, KEY, "im2col", {"mr": 2})
        assert database.lookup(HOST, 1, KEY) is None
        record = database.lookup(HOST, 1, KEY, nearest=True)
        assert record is not None and record.nearest and record.target_cpu == "some-other-cpu"
        assert record.algorithm == "im2col"
        fake_record(database, HOST, KEY, "direct", {"ow_block": 5})
        mine = database.lookup(HOST, 1, KEY, nearest=True)
        assert mine is not None and not mine.nearest and mine.algorithm == "direct"


def test_default_location_beside_the_object_cache_or_from_the_environment(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv(TUNING_DB_ENV, raising=False)
    monkeypatch.setenv("CONVIR_CACHE_DIR", str(tmp_path / "cache"))
    assert default_path() == tmp_path / "cache" / "tuning.sqlite"
    monkeypatch.setenv(TUNING_DB_ENV, str(tmp_path / "mine.sqlite"))
    assert default_path() == tmp_path / "mine.sqlite"
    assert TuningDatabase().path == tmp_path / "mine.sqlite"
