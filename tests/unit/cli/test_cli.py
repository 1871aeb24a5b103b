"""`convir` and `convir-opt`: round trips, and one clear line on every user error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from convir.cli.main import main as convir_main
from convir.cli.opt import main as opt_main

DATA = Path(__file__).parents[2] / "data"
MODEL = DATA / "torch_resnet_mini_bn_opset17.onnx"


def _opt(argv: list[str], capsys) -> tuple[int, str, str]:
    code = opt_main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("keep_weights", [False, True])
def test_import_round_trips_through_convir_opt_byte_for_byte(tmp_path, capsys, keep_weights):
    imported = tmp_path / "model.mlir"
    flags = ["--keep-weights"] if keep_weights else []
    assert convir_main(["import", str(MODEL), "-o", str(imported), *flags]) == 0
    code, printed, err = _opt([str(imported)], capsys)
    assert (code, err) == (0, "")
    assert printed == imported.read_text()
    assert ("dialect_resources" in printed) == keep_weights


def test_import_prints_to_stdout_with_batch(capsys) -> None:
    assert convir_main(["import", str(MODEL), "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert 'func.func @main(%input: tensor<2x3x64x64xf32> {onnx.name = "input"})' in out
    assert "conv.conv2d" in out and "dense_resource<" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["import", "/no/such/model.onnx"], "cannot read '/no/such/model.onnx'"),
        (["import", str(DATA / "README.md")], "is not an ONNX model"),
    ],
)
def test_import_errors_are_one_line(argv, message, capsys) -> None:
    assert convir_main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("convir: error: ") and message in captured.err


def test_unsupported_op_error_names_node(tmp_path, capsys) -> None:
    import onnx

    from tests.onnx_cases import rand, single_node_model

    path = tmp_path / "hardmax.onnx"
    onnx.save(single_node_model("Hardmax", {"x": rand(1, 2)}), path)
    assert convir_main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "node 'hardmax_0' (Hardmax): operator Hardmax is not supported" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [["import", str(MODEL), "--batch", "0"], ["demo", "--model", "alexnet"], ["frobnicate"], []],
)
def test_bad_options_exit_2_with_one_line(argv, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        convir_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("convir: error: ") and err.count("\n") == 1
    assert "usage:" not in err and "--help" in err


def test_convir_opt_invalid_ir_is_one_error_without_traceback(tmp_path, capsys) -> None:
    path = tmp_path / "bad.mlir"
    path.write_text(
        "func.func @f(%x: tensor<1x3xf32>) -> tensor<1x3xf32> {\n"
        '  %y = conv.activation %x {kind = "swish_fast"} : tensor<1x3xf32> -> tensor<1x3xf32>\n'
        "  func.return %y : tensor<1x3xf32>\n}\n"
    )
    code, out, err = _opt([str(path)], capsys)
    assert code == 1 and out == ""
    assert "'conv.activation' kind 'swish_fast' is unknown" in err and "Traceback" not in err


def test_convir_opt_parse_error_and_unknown_pass(tmp_path, capsys) -> None:
    path = tmp_path / "bad.mlir"
    path.write_text("func.func @f( {\n")
    code, _, err = _opt([str(path)], capsys)
    assert code == 1 and "convir-opt: error:" in err and "Traceback" not in err
    path.write_text("func.func @f() {\n  func.return\n}\n")
    code, _, err = _opt([str(path), "-p", "no-such-pass"], capsys)
    assert code == 1 and "no-such-pass" in err


def test_console_scripts_are_installed() -> None:
    for script, flag in [("convir", "--help"), ("convir-opt", "--help")]:
        exe = Path(sys.executable).parent / script
        result = subprocess.run([str(exe), flag], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        assert "usage:" in result.stdout
