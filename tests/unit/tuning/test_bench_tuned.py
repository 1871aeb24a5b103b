"""`convir bench models --tuning-db`: a built-in model compiled with records for every conv (each
a non-heuristic candidate) agrees with onnxruntime and is timed beside the heuristic one."""

from __future__ import annotations

import pytest

from convir.bench.models import bench_model
from convir.models import build
from convir.target import Target
from convir.tuning.database import TuningDatabase
from convir.tuning.space import search_space
from convir.tuning.workloads import model_workloads
from tests.unit.tuning.tiny import fake_record


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch) -> None:
    monkeypatch.setenv("CONVIR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def test_tuned_model_is_checked_and_timed(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    host = Target.host()
    path = tmp_path / "t.sqlite"
    entries = model_workloads(build("squeezenet1_1", size=32), host)
    with TuningDatabase(path) as database:
        for entry in entries:
            other = search_space(entry.op, host, per_algorithm=2)[1]
            fake_record(database, host, entry.workload.key, other.algorithm, other.schedule)
    (result,) = bench_model("squeezenet1_1", [1], 2, size=32, tuning_db=str(path))
    assert result.correct and result.tuned_error is not None and result.tuned_error <= 1e-4
    assert result.tuned_convs == sum(entry.count for entry in entries)
    assert result.tuned_s is not None and result.tuned_s > 0 and result.tuned_speedup > 0
