"""`convir compile`, `convir run` and `convir demo` on small models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from convir.cli.main import main as convir_main
from convir.compiler import STAGE_AFTER_PASS, STAGES

DATA = Path(__file__).parents[2] / "data"
MODEL = DATA / "torch_resnet_mini_opset17.onnx"


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch) -> None:
    monkeypatch.setenv("CONVIR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.mark.parametrize(
    ("stage", "marker"),
    [
        ("conv", "conv.conv2d"),
        ("scheduled", 'algorithm = "direct", schedule = {vector_width'),
        ("planned", "convir.arena_offset"),
        ("loops", "func.func @forward"),
        ("threaded", "@convir_parallel_for"),
        ("llvm", "llvm.func @forward"),
        ("llvm-ir", "define void @forward"),
        ("asm", "forward:"),
    ],
)
def test_compile_emits_every_stage(stage: str, marker: str, capsys) -> None:
    assert stage in STAGES
    assert convir_main(["compile", str(MODEL), "--emit", stage]) == 0
    assert marker in capsys.readouterr().out


def test_dump_after_names_a_pass(capsys) -> None:
    assert convir_main(["compile", str(MODEL), "--dump-after", "conv-plan-memory"]) == 0
    assert "convir.arena_bytes" in capsys.readouterr().out
    assert set(STAGE_AFTER_PASS.values()) <= set(STAGES)


def test_compile_for_another_target(capsys) -> None:
    assert convir_main(["compile", str(MODEL), "--emit", "asm", "--target", "x86-avx2"]) == 0
    assert "ymm" in capsys.readouterr().out


def test_bad_target_is_one_line(capsys) -> None:
    assert convir_main(["compile", str(MODEL), "--target", "sparc"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("convir: error: --target: unknown target preset 'sparc'")
    assert err.count("\n") == 1


def test_run_with_input_file_and_comparison(tmp_path, capsys) -> None:
    stored = np.load(DATA / "torch_resnet_mini_opset17.npz")
    path = tmp_path / "x.npy"
    np.save(path, stored["input"])
    argv = ["run", str(MODEL), "--input", f"input={path}", "--threads", "1", "--compare", "ort"]
    assert convir_main([*argv, "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "output: shape [1, 10]" in out and "convir" in out and "onnxruntime" in out
    assert ": OK" in out


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("input=/no/such.npy", "cannot load '/no/such.npy'"),
        ("nosuch=x.npy", "expected NAME=FILE.npy with NAME in ['input']"),
    ],
)
def test_run_input_errors(argument: str, message: str, capsys) -> None:
    assert convir_main(["run", str(MODEL), "--input", argument]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_run_wrong_input_shape(tmp_path, capsys) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((1, 3, 8, 8), np.float32))
    assert convir_main(["run", str(MODEL), "--input", f"input={path}"]) == 1
    assert (
        "input 'input' has shape [1, 3, 8, 8]; expected [1, 3, 64, 64]" in capsys.readouterr().err
    )


def test_demo_runs_natively(capsys) -> None:
    assert convir_main(["demo", "--model", "squeezenet1_1", "--size", "64", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "convir" in out and "onnxruntime" in out and ": OK" in out


def test_unsupported_model_fails_cleanly_at_compile(tmp_path, capsys) -> None:
    from tests.onnx_cases import rand, single_node_model

    path = tmp_path / "runtime_weight.onnx"
    onnx.save(single_node_model("Conv", {"x": rand(1, 2, 5, 5), "w": rand(3, 2, 3, 3)}), path)
    assert convir_main(["run", str(path)]) == 1
    err = capsys.readouterr().err
    assert "no algorithm applies" in err and err.count("\n") == 1


def conv_lines(text: str) -> dict[str, str]:
    """convir.name -> the line of that conv.conv2d."""
    lines = [line for line in text.splitlines() if "conv.conv2d" in line]
    return {line.split('convir.name = "')[1].split('"')[0]: line for line in lines}


def test_overrides_show_in_the_scheduled_ir(capsys) -> None:
    # direct everywhere, so that the knobs are direct's whatever the heuristic picks
    argv = ["compile", str(MODEL), "--emit", "scheduled", "--algorithm", "conv_0=direct"]
    argv += ["--algorithm", "all=direct", "--tile", "conv_1:ow_block=3,oc_blocks=1"]
    argv += ["--tile", "/layer1/conv2/Conv:ow_block=2"]
    assert convir_main(argv) == 0
    convs = conv_lines(capsys.readouterr().out)
    assert 'onnx.name = "/conv1/Conv"' in convs["conv_0"]
    assert 'algorithm = "direct"' in convs["conv_0"]
    assert "ow_block = 3 : i64, oc_blocks = 1 : i64}" in convs["conv_1"]
    assert "ow_block = 2 : i64" in convs["conv_2"]


def test_dump_after_select_shows_algorithms_before_tiling(capsys) -> None:
    assert convir_main(["compile", str(MODEL), "--dump-after", "conv-select-algorithm"]) == 0
    out = capsys.readouterr().out
    assert 'algorithm = "' in out and "schedule" not in out


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (
            ["--algorithm", "conv_99=direct"],
            "conv-select-algorithm: algorithm 'conv_99=direct': no conv is named 'conv_99'; "
            "expected conv_0, conv_1, conv_2, conv_3, conv_4, conv_5 or a conv's onnx.name",
        ),
        (["--algorithm", "conv_0=nosuch"], "unknown algorithm 'nosuch'; expected one of"),
        (["--algorithm", "conv_0=direct", "--algorithm", "conv_0=direct"], "given twice"),
        (
            ["--algorithm", "conv_1=direct", "--tile", "conv_1:unroll=2"],
            "runs direct, which has no knob 'unroll'; its knobs:",
        ),
    ],
)
def test_bad_overrides_are_one_line(argument: list[str], message: str, capsys) -> None:
    assert convir_main(["compile", str(MODEL), *argument]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "argument",
    [
        ["--algorithm", "conv_0"],
        ["--tile", "conv_1:ow_block=0"],
        ["--winograd-tolerance", "small"],
        ["--winograd-tolerance", "-1e-4"],
    ],
)
def test_malformed_overrides_are_usage_errors(argument: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        convir_main(["compile", str(MODEL), *argument])
    assert exit_info.value.code == 2
    assert f"argument {argument[0]}: " in capsys.readouterr().err


def test_run_with_overrides_matches_onnxruntime(capsys) -> None:
    argv = ["run", str(MODEL), "--algorithm", "all=direct", "--tile", "conv_1:ow_block=3"]
    assert convir_main([*argv, "--threads", "1", "--repeat", "1", "--compare", "ort"]) == 0
    assert ": OK" in capsys.readouterr().out


def test_winograd_is_selected_within_the_tolerance(tmp_path, capsys) -> None:
    """ResNet-18's 3×3 stride-1 convs (>= 64 channels) run winograd by default; with a tolerance
    no m meets, none does; with 1e-6 they keep winograd at m = 2. (At 64×64 layer4 is 2×2: at
    32×32 it would be 1×1, where conv-drop-padding-taps makes its 3×3 convs 1×1 ones.)"""
    from convir.models import build

    path = tmp_path / "resnet18.onnx"
    onnx.save(build("resnet18", size=64), path)
    argv = ["compile", str(path), "--emit", "scheduled"]
    assert convir_main(argv) == 0
    default = capsys.readouterr().out
    assert default.count('algorithm = "winograd"') == 13  # 16 3×3 convs, 3 of them strided
    assert convir_main([*argv, "--winograd-tolerance", "0"]) == 0
    assert "winograd" not in capsys.readouterr().out
    assert convir_main([*argv, "--winograd-tolerance", "1e-6"]) == 0
    accurate = capsys.readouterr().out
    assert accurate.count('algorithm = "winograd", schedule = {m = 2 :') == 13
