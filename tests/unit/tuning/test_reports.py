"""The tables of `convir bench models --tuning-db` and `convir explain` (no compiling)."""

from __future__ import annotations

import io
import math

from convir.bench.models import ModelResult, ModelsReport
from convir.bench.report import print_model_row, print_tuned_summary
from convir.tuning.explain import ConvRow, Explanation, format_table


def _result(model: str, threads: int, heuristic_s: float, tuned_s: float) -> ModelResult:
    return ModelResult(
        model,
        threads,
        1.0,
        max_rel_error=1e-6,
        convir_s=heuristic_s,
        ort_s=2 * heuristic_s,
        tuned_s=tuned_s,
        tuned_error=2e-6,
        tuned_convs=5,
    )


def test_tuned_columns_and_geometric_mean() -> None:
    results = [_result("a", 1, 4e-3, 2e-3), _result("b", 1, 1e-3, 2e-3), _result("a", 2, 1, 1)]
    out = io.StringIO()
    print_model_row(results[0], out)
    assert out.getvalue().split()[-3:] == ["2.00", "2.000", "5"]
    assert results[0].to_json()["heuristic_over_tuned"] == 2.0
    out = io.StringIO()
    print_tuned_summary(ModelsReport(3, 224, results), out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"1T: heuristic/tuned geometric mean {math.sqrt(2 * 0.5):.3f}")
    assert lines[0].endswith("slower when tuned: b")
    assert lines[1].endswith("slower when tuned: none")


def test_a_tuned_model_that_disagrees_with_onnxruntime_is_reported() -> None:
    result = ModelResult(
        "a", 1, 1.0, max_rel_error=1e-6, convir_s=1e-3, ort_s=1e-3, tuned_error=0.5
    )
    out = io.StringIO()
    print_model_row(result, out)
    assert "tuned MISMATCH: max error 0.5" in out.getvalue()


def test_explain_table_has_one_row_per_conv_with_its_runner_up() -> None:
    rows = [
        ConvRow(
            "conv_0",
            "64x56x56->64 k3x3 s1 p1",
            "winograd",
            {"m": 4},
            "tuned",
            231_211_008,
            65536,
            1.0,
            231.2,
            50.0,
            "direct{ow_block=4}",
            2.5,
        ),
        ConvRow(
            "conv_1", "64x56x56->64 k1x1 s1 p0", "gemm1x1", {"mr": 2}, "heuristic", 25_690_112, 0
        ),
    ]
    text = format_table(Explanation("m", 1, 98.0, rows))
    lines = text.splitlines()
    assert "2 convs at 1 thread(s), peak 98.0 GFLOP/s" in lines[0]
    assert "tuned" in lines[2] and "direct{ow_block=4} 2.500 ms" in lines[2]
    assert "heuristic" in lines[3] and lines[3].split()[-4:-1] == ["-", "-", "-"]
    assert lines[-1] == "total conv time 1.000 ms"
