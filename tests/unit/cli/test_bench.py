"""`convir bench`: the measured peak, one small layer end to end, the harness's correctness,
the profile parser, and the errors. Whole-model benchmarks are too slow for unit tests; only
their option errors are exercised."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from convir import reference
from convir.bench import BenchError
from convir.bench.busy import BusyCore, default_busy_cpu
from convir.bench.conv_harness import NativeConv, layer_data, reference_output
from convir.bench.models import ModelResult, ModelsReport
from convir.bench.onnxrt import node_seconds_per_run
from convir.bench.peak import count_vector_fmas, measure_peak, peak_ir
from convir.bench.report import print_thread_scaling
from convir.bench.workloads import ConvLayer, model_layers
from convir.cli.main import main as convir_main
from convir.target import Target

#: A depthwise 3x3 of MobileNetV2 on 7x7: the cheapest layer of the built-in models.
SMALL_LAYER = "features.15.conv.1"


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch) -> None:
    monkeypatch.setenv("CONVIR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


DATA = Path(__file__).parents[2] / "data"


def test_peak_is_positive_plausible_and_cached() -> None:
    target = Target.host()
    peak = measure_peak(1)
    # At most 2 FMA pipes x W lanes x 2 flop per cycle at 6 GHz.
    assert 1.0 < peak.gflops < 2 * target.vector_width * 2 * 6.0
    assert peak.fma_instructions >= peak.accumulators >= 8
    assert measure_peak(1) is peak


def test_peak_kernel_is_independent_vector_fma_chains() -> None:
    ir = peak_ir(16, 24)
    assert ir.count("call <16 x float> @llvm.fma.v16f32(") == 24
    # Chain j only ever feeds itself: no FMA reads another chain's accumulator.
    chains = re.findall(r"%acc(\d+)\.next = call .*?\(<16 x float> %acc(\d+),", ir)
    assert sorted(int(a) for a, b in chains if a == b) == list(range(24))


def test_vector_fmas_are_counted_only_at_full_width() -> None:
    avx512 = Target.preset("x86-avx512")
    asm = "\tvfmadd213ps\t%zmm25, %zmm24, %zmm0\n\tvfmadd231ss\t%xmm1, %xmm2, %xmm3\n"
    assert count_vector_fmas(asm, avx512) == 1
    assert count_vector_fmas(asm, Target.preset("x86-avx2")) == 0


def test_layers_are_read_off_the_fused_models() -> None:
    layers = model_layers("resnet18")
    assert sum(layer.count for layer in layers) == 20  # 17 3x3/7x7 convs + 3 downsamples
    first = next(layer for layer in layers if layer.name == "resnet18.layer1.0.conv1")
    assert (first.count, first.shape, first.activation) == (4, "64x56x56->64 k3x3 s1 p1", "relu")
    assert first.flop == 2 * 64 * 56 * 56 * 64 * 9 and first.bias
    with pytest.raises(BenchError, match="unknown model 'lenet'"):
        model_layers("lenet")


ODD_LAYER = ConvLayer(
    model="test",
    name="test.odd",
    count=1,
    channels=21,
    height=9,
    width=11,
    out_channels=19,
    kernel=(3, 3),
    strides=(2, 2),
    pads=(1, 0, 1, 2),
    dilations=(1, 1),
    group=1,
    bias=True,
    activation="clip",
    alpha=0.0,
    beta=0.5,
)


@pytest.mark.parametrize("name", ["odd", "features.14.conv.1.0", "features.17.conv.2"])
def test_harness_computes_the_reference(name: str) -> None:
    layers = {
        layer.name.removeprefix("mobilenet_v2."): layer for layer in model_layers("mobilenet_v2")
    }
    layer = ODD_LAYER if name == "odd" else layers[name]
    x, weight, bias = layer_data(layer, seed=3)
    native = NativeConv(layer, x, weight, bias)
    assert native.kernel.startswith("conv_")
    expected = reference_output(layer, x, weight, bias)
    np.testing.assert_allclose(native.output(), expected, rtol=1e-4, atol=1e-5)
    # The native loop that is timed calls the same conv on the same buffers.
    native._output[...] = 0
    assert native.seconds_per_call(3) > 0
    timed = reference.unpack(native._output, layer.out_channels)
    np.testing.assert_allclose(timed, expected, rtol=1e-4, atol=1e-5)


def test_harness_runs_a_pinned_algorithm() -> None:
    x, weight, bias = layer_data(ODD_LAYER, seed=4)
    native = NativeConv(ODD_LAYER, x, weight, bias, algorithm="im2col")
    assert native.algorithm == "im2col"
    expected = reference_output(ODD_LAYER, x, weight, bias)
    np.testing.assert_allclose(native.output(), expected, rtol=1e-4, atol=1e-5)


def test_harness_pins_knobs_where_the_algorithm_has_them() -> None:
    """`bench layers --algorithm winograd --tile m=2`: m reaches winograd's schedule; a layer
    winograd does not apply to (stride 2) runs its own algorithm without the knob."""
    from dataclasses import replace

    layer = replace(ODD_LAYER, strides=(1, 1))
    x, weight, bias = layer_data(layer, seed=5)
    native = NativeConv(layer, x, weight, bias, algorithm="winograd", knobs={"m": 2})
    assert native.algorithm == "winograd" and "m = 2 " in native.schedule
    expected = reference_output(layer, x, weight, bias)
    np.testing.assert_allclose(native.output(), expected, rtol=1e-4, atol=1e-5)
    strided = NativeConv(ODD_LAYER, *layer_data(ODD_LAYER), algorithm="winograd", knobs={"m": 2})
    assert strided.algorithm != "winograd" and "m =" not in strided.schedule


def test_bench_layers_table_json_and_plot(tmp_path, capsys) -> None:
    plot = tmp_path / "layers.png"
    argv = ["bench", "layers", "--models", "mobilenet_v2", "--layers", SMALL_LAYER]
    assert convir_main([*argv, "--repeat", "2", "--json", "-", "--plot", str(plot)]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    table = captured.err
    assert "ORT/convir" in table and "mobilenet_v2.features.15.conv.1.0 x3" in table
    assert "geomean % of peak" in table and "worst ORT/convir" in table
    assert report["benchmark"] == "layers" and report["repeat"] == 2
    assert report["peak"]["gflops"] > 0
    (layer,) = report["layers"]
    assert layer["name"] == "mobilenet_v2.features.15.conv.1.0" and layer["correct"]
    for key in ("convir_ms", "convir_gflops", "convir_peak_percent", "ort_ms", "ort_over_convir"):
        assert layer[key] > 0, key
    assert layer["kind"] == "dw3x3" and layer["count"] == 3
    assert report["summary"]["models"]["mobilenet_v2"]["kinds"]["dw3x3"]["layers"] == 1
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_a_wrong_kernel_is_not_timed(monkeypatch, capsys) -> None:
    real_output = NativeConv.output
    monkeypatch.setattr(NativeConv, "output", lambda self: real_output(self) + 1.0)
    argv = ["bench", "layers", "--models", "mobilenet_v2", "--layers", SMALL_LAYER]
    assert convir_main([*argv, "--repeat", "2"]) == 1
    captured = capsys.readouterr()
    assert "MISMATCH" in captured.out
    assert captured.err.startswith("convir: error: 1 result(s) differ from onnxruntime")


def test_bench_models_takes_onnx_files(capsys) -> None:
    path = str(DATA / "torch_decoder_mini_opset17.onnx")
    argv = ["bench", "models", "--models", path, "--threads", "1", "--repeat", "2", "--json", "-"]
    assert convir_main(argv) == 0
    captured = capsys.readouterr()
    (result,) = json.loads(captured.out)["models"]
    assert result["model"] == "torch_decoder_mini_opset17" and result["threads"] == 1
    assert result["max_rel_error"] <= 1e-4 and result["convir_ms"] > 0 and result["ort_ms"] > 0
    assert "torch_decoder_mini_opset17" in captured.err


def test_plot_without_matplotlib_is_one_line(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert convir_main(["bench", "layers", "--plot", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err == "convir: error: --plot needs matplotlib: pip install 'convir[bench]'\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["layers", "--models", "resnet50,lenet"], "--models: unknown model(s) lenet"),
        (["layers", "--models", "mobilenet_v2", "--layers", "nope"], "--layers 'nope' matches no"),
        (["models", "--models", "alexnet"], "--models: unknown model(s) alexnet"),
        (["models", "--models", "missing.onnx"], "--models: no such file: missing.onnx"),
        (["layers", "--algorithm", "fft"], "--algorithm: unknown algorithm 'fft'"),
        (["layers", "--tile", "m=two"], "--tile: 'm=two': 'm=two' is not KNOB=INTEGER >= 1"),
        (["models", "--threads", "1,0"], "--threads: expected comma-separated positive"),
        (["models", "--models", "resnet18", "--busy-core", "4096"], "--busy-core: CPU 4096 is"),
    ],
)
def test_bad_options_are_one_line(argv: list[str], message: str, capsys) -> None:
    assert convir_main(["bench", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"convir: error: {message}") and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [["layers", "--repeat", "0"], ["peak", "--threads", "0"], ["models", "--repeat", "x"], []],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        convir_main(["bench", *argv])
    assert exit_info.value.code == 2


def test_help_says_what_is_measured(capsys) -> None:
    with pytest.raises(SystemExit):
        convir_main(["bench", "layers", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "NCHWc" in text and "profiler" in text and "reorder" in text and "peak" in text


def test_busy_core_pins_only_its_spinning_child_and_stops_it() -> None:
    allowed = os.sched_getaffinity(0)
    with BusyCore() as busy:
        pid = busy._process.pid
        assert busy.running and os.sched_getaffinity(pid) == {default_busy_cpu()}
        assert os.sched_getaffinity(0) == allowed  # the benchmark's own threads are not pinned
        # The child's user + system ticks (/proc/PID/stat fields 14, 15) grow: it really spins.
        with open(f"/proc/{pid}/stat") as stat:
            before = sum(int(field) for field in stat.read().split()[13:15])
        time.sleep(0.3)
        with open(f"/proc/{pid}/stat") as stat:
            after = sum(int(field) for field in stat.read().split()[13:15])
        assert after > before
    assert not busy.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_thread_scaling_is_each_engines_time_over_its_fewest_threads(capsys) -> None:
    def result(threads: int, convir_s: float, ort_s: float) -> ModelResult:
        return ModelResult("m", threads, 1.0, max_rel_error=0.0, convir_s=convir_s, ort_s=ort_s)

    report = ModelsReport(3, 112, [result(1, 0.010, 0.020), result(2, 0.015, 0.010)], busy_cpu=1)
    print_thread_scaling(report, sys.stdout)
    out = capsys.readouterr().out
    assert "kept CPU 1 busy" in out
    assert "2T/1T convir 1.50 ORT 0.50" in out
    assert report.to_json()["busy_cpu"] == 1


def _event(cat: str, name: str, ts: int, dur: int, op: str | None = None) -> dict:
    return {"cat": cat, "name": name, "ts": ts, "dur": dur, "args": {"op_name": op} if op else {}}


def test_profile_sums_the_conv_nodes_of_each_run() -> None:
    events = [
        _event("Session", "model_run", 100, 50),
        _event("Node", "ReorderInput_kernel_time", 101, 9, "ReorderInput"),
        _event("Node", "y_nchwc_kernel_time", 110, 30, "Conv"),
        _event("Node", "ReorderOutput_kernel_time", 141, 5, "ReorderOutput"),
        _event("Session", "model_run", 200, 50),
        _event("Node", "c_kernel_time", 205, 20, "Conv"),
        _event("Node", "act_kernel_time", 226, 4, "Relu"),
    ]
    assert node_seconds_per_run(events) == pytest.approx([30e-6, 24e-6])
    with pytest.raises(BenchError, match="outside any run"):
        node_seconds_per_run([*events, _event("Node", "late", 400, 1, "Conv")])


def test_layers_are_read_off_onnx_files(tmp_path) -> None:
    path = DATA / "torch_decoder_mini_opset17.onnx"
    layers = model_layers(str(path))
    assert layers and all(layer.name.startswith("torch_decoder_mini_opset17.") for layer in layers)
    with pytest.raises(BenchError, match="cannot import"):
        model_layers(str(tmp_path / "missing.onnx"))
