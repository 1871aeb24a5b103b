"""`convir tune` end to end on a tiny model: progress, resume, budget, SIGKILL in the middle,
two tuners on one database, a corrupt database; then the records used by `convir compile`
(`convir.choice`), another target's only with --nearest-target, and `convir explain`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convir.cli.main import main as convir_main
from convir.target import Target
from convir.tuning.database import TuningDatabase
from convir.tuning.workloads import model_workloads
from tests.unit.tuning.tiny import fake_record, save_tiny_model, tiny_model

ROOT = Path(__file__).parents[3]
#: Few candidates per workload: these tests are about the tuner, not the search.
FAST = ["--candidates", "1", "--no-progress"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch) -> None:
    monkeypatch.setenv("CONVIR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("model"))


def _tune_process(model: Path, db: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "convir.cli.main", "tune", str(model), "--db", str(db)]
    return subprocess.Popen(
        [*command, *FAST, *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _complete_workloads(db: Path) -> int:
    connection = sqlite3.connect(db)
    try:
        return connection.execute("SELECT COUNT(*) FROM workloads WHERE complete = 1").fetchone()[0]
    finally:
        connection.close()


def test_tune_then_resume_with_nothing_to_do(model, tmp_path, capsys) -> None:
    db = tmp_path / "t.sqlite"
    assert convir_main(["tune", str(model), "--db", str(db), *FAST]) == 0
    out = capsys.readouterr().out
    assert "tuned 2 of 2 workloads (0 already in the database)" in out
    start = time.monotonic()
    assert convir_main(["tune", str(model), "--db", str(db), *FAST]) == 0
    assert "tuned 0 of 2 workloads (2 already in the database)" in capsys.readouterr().out
    assert time.monotonic() - start < 30
    assert _complete_workloads(db) == 2

    # The records are used: every conv says it was tuned, and runs the recorded choice.
    assert convir_main(["compile", str(model), "--tuning-db", str(db), "--threads", "1"]) == 0
    scheduled = capsys.readouterr().out
    assert scheduled.count('convir.choice = "tuned"') == 3
    assert convir_main(["compile", str(model)]) == 0
    assert scheduled.count("convir.choice") == 3
    assert capsys.readouterr().out.count('convir.choice = "heuristic"') == 3

    # At another thread count there is no record: the heuristic stands.
    assert convir_main(["compile", str(model), "--tuning-db", str(db), "--threads", "2"]) == 0
    assert capsys.readouterr().out.count('convir.choice = "heuristic"') == 3

    # The tuned model computes the same as onnxruntime.
    assert (
        convir_main(
            ["run", str(model), "--tuning-db", str(db), "--threads", "1", "--compare", "ort"]
        )
        == 0
    )
    assert "MISMATCH" not in capsys.readouterr().out

    # explain, with the database (runner-ups) and without.
    assert (
        convir_main(
            ["explain", str(model), "--tuning-db", str(db), "--threads", "1", "--json", "-"]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert [row["source"] for row in report["convs"]] == ["tuned"] * 3
    assert all(row["measured_ms"] > 0 and row["gflops"] > 0 for row in report["convs"])
    assert all(row["runner_up"] for row in report["convs"])
    assert convir_main(["explain", str(model), "--no-measure"]) == 0
    table = capsys.readouterr().out
    assert table.count("heuristic") == 3 and "conv_2" in table


def test_budget_stops_and_the_next_run_resumes(model, tmp_path, capsys) -> None:
    db = tmp_path / "t.sqlite"
    assert convir_main(["tune", str(model), "--db", str(db), "--budget", "1s", *FAST]) == 0
    out = capsys.readouterr().out
    assert "the budget ran out" in out
    assert _complete_workloads(db) < 2
    assert convir_main(["tune", str(model), "--db", str(db), *FAST]) == 0
    assert _complete_workloads(db) == 2


def test_sigkill_in_the_middle_leaves_a_database_the_next_run_resumes(model, tmp_path) -> None:
    db = tmp_path / "t.sqlite"
    tuner = _tune_process(model, db)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not db.exists() or _complete_workloads(db) < 1):
        time.sleep(0.2)
    tuner.send_signal(signal.SIGKILL)
    tuner.wait()
    assert tuner.returncode == -signal.SIGKILL
    done = _complete_workloads(db)
    assert done >= 1
    with TuningDatabase(db) as database:  # opens: schema intact
        assert database.workload_count() >= done
    resumed = _tune_process(model, db)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"({done} already in the database)" in out
    assert _complete_workloads(db) == 2


def test_two_tuners_on_one_database_lose_nothing(model, tmp_path) -> None:
    db = tmp_path / "t.sqlite"
    tuners = [_tune_process(model, db), _tune_process(model, db)]
    for tuner in tuners:
        out, err = tuner.communicate(timeout=300)
        assert tuner.returncode == 0, err
        assert "tuned" in out
    assert _complete_workloads(db) == 2
    with TuningDatabase(db) as database:
        target = Target.host()
        for entry in model_workloads(tiny_model(), target):
            record = database.lookup(target, 1, entry.workload.key)
            assert record is not None and record.complete


def test_a_corrupt_database_is_one_clear_error_and_untouched(model, tmp_path, capsys) -> None:
    db = tmp_path / "t.sqlite"
    db.write_bytes(b"garbage" * 1000)
    for command in (
        ["tune", str(model), "--db", str(db), *FAST],
        ["compile", str(model), "--tuning-db", str(db)],
        ["explain", str(model), "--tuning-db", str(db), "--no-measure"],
    ):
        assert convir_main(command) == 1
        err = capsys.readouterr().err
        assert err.startswith("convir: error: ") and err.count("\n") == 1
        assert "is not a convir tuning database" in err and str(db) in err
    assert db.read_bytes() == b"garbage" * 1000


def test_another_targets_record_only_with_nearest_target(model, tmp_path, capsys) -> None:
    db = tmp_path / "t.sqlite"
    host = Target.host()
    other = host.with_(cpu="other-cpu", l2_bytes=host.l2_bytes * 4)
    entries = model_workloads(tiny_model(), host)
    with TuningDatabase(db) as database:
        for entry in entries:
            schedule = {"vector_width": host.vector_width, "ow_block": 2, "oc_blocks": 1}
            fake_record(database, other, entry.workload.key, "direct", schedule)
    assert convir_main(["compile", str(model), "--tuning-db", str(db), "--threads", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count('convir.choice = "heuristic"') == 3
    assert "compatible target" not in captured.err
    assert (
        convir_main(
            ["compile", str(model), "--tuning-db", str(db), "--threads", "1", "--nearest-target"]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert captured.out.count('convir.choice = "tuned-nearest (other-cpu)"') == 3
    assert captured.out.count("ow_block = 2 : i64, oc_blocks = 1 : i64") == 3
    assert "3 conv(s) use tuning records of a compatible target (other-cpu)" in captured.err


def test_bad_tune_options_are_one_line(model, capsys) -> None:
    for option in (["--budget", "soon"], ["--threads", "0"], ["--algorithms", "fft"]):
        with pytest.raises(SystemExit) as exit_:
            convir_main(["tune", str(model), *option])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and option[0] in err
