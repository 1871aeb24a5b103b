"""Bad input gets one clear error (issue 13): every malformed or hostile input a user can give is
refused by the API with a convir exception naming the node, tensor or option, and by the command
line with one line on stderr, a non-zero status and no traceback."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

import convir
from convir.cli.main import main as convir_main
from convir.cli.native import output_difference
from convir.cli.opt import main as opt_main
from convir.dialects import make_context
from convir.importer.onnx import OnnxImportError, import_onnx
from tests.onnx_cases import rand, single_node_model

X = rand(1, 3, 8, 8)
W = rand(4, 3, 3, 3)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch) -> None:
    monkeypatch.setenv("CONVIR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def _one_line_error(argv: list[str], capsys, message: str, *, code: int = 1) -> str:
    """Run `convir argv`; assert it fails with one stderr line holding `message`."""
    try:
        status = convir_main(argv)
    except SystemExit as exit_info:  # argparse's usage errors
        status = exit_info.code
    captured = capsys.readouterr()
    assert status == code, captured.err
    assert captured.err.startswith("convir: error: ") and captured.err.count("\n") == 1
    assert "Traceback" not in captured.err
    assert message in captured.err, captured.err
    return captured.err


def _saved(model: onnx.ModelProto, path: Path) -> str:
    onnx.save(model, path)
    return str(path)


def _conv(**attributes) -> onnx.ModelProto:
    return single_node_model("Conv", {"x": X}, {"w": W}, **attributes)


# --- 1 and 2: window attributes that are out of range or disagree with the tensors ---------------

BAD_WINDOWS = [
    (_conv(strides=[0, 0]), "strides [0, 0] must be 2 integers >= 1"),
    (_conv(strides=[-1, 1]), "strides [-1, 1] must be 2 integers >= 1"),
    (_conv(strides=[0, 0], auto_pad="SAME_UPPER"), "strides [0, 0] must be 2 integers >= 1"),
    (_conv(dilations=[1, 0]), "dilations [1, 0] must be 2 integers >= 1"),
    (_conv(pads=[0, -1, 0, 0]), "pads [0, -1, 0, 0] must be 4 integers >= 0"),
    (_conv(pads=[1, 1]), "pads [1, 1] must be 4 integers >= 0"),
    (
        _conv(pads=[1, 1, 1, 1], auto_pad="VALID"),
        "pads [1, 1, 1, 1] and auto_pad 'VALID' cannot both be given",
    ),
    (_conv(kernel_shape=[5, 5]), "kernel_shape [5, 5] does not match the weight's [3, 3] kernel"),
    (_conv(kernel_shape=[0, 0]), "kernel_shape [0, 0] does not match the weight's [3, 3] kernel"),
    (_conv(group=2), "group 2 must divide input channels 3"),
    (_conv(group=0), "group 0 must divide input channels 3"),
    (
        single_node_model("Conv", {"x": X}, {"w": rand(4, 3, 3)}),
        "weight must have rank 4 [O, C/group, KH, KW], got [4, 3, 3]",
    ),
    (
        single_node_model("MaxPool", {"x": X}, kernel_shape=[0, 2]),
        "kernel_shape [0, 2] must be 2 integers >= 1",
    ),
    (
        single_node_model("AveragePool", {"x": X}, kernel_shape=[2, 2], strides=[0, 1]),
        "strides [0, 1] must be 2 integers >= 1",
    ),
    (single_node_model("MaxPool", {"x": X}), "the kernel_shape attribute is required"),
]


@pytest.mark.parametrize(("model", "message"), BAD_WINDOWS)
def test_bad_window_attributes_are_refused_by_the_api(model, message) -> None:
    op_type = model.graph.node[0].op_type
    with pytest.raises(OnnxImportError, match=rf"node '\w+' \({op_type}\): .*") as error:
        import_onnx(model, ctx=make_context())
    assert message in str(error.value)
    with pytest.raises(OnnxImportError, match="node"):
        convir.compile(model)


@pytest.mark.parametrize("command", ["import", "compile", "run"])
@pytest.mark.parametrize(
    ("model", "message"),
    [case for case in BAD_WINDOWS if "strides [0, 0]" in case[1]][:1]
    + [case for case in BAD_WINDOWS if "kernel_shape [5, 5]" in case[1]],
)
def test_bad_window_attributes_are_one_line(model, message, command, tmp_path, capsys) -> None:
    _one_line_error([command, _saved(model, tmp_path / "m.onnx")], capsys, message)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            single_node_model("Relu", {"x": X}, dilations=[1, 1]),
            "node 'relu_0' (Relu): attribute 'dilations' is not defined for Relu at opset 17; "
            "its attributes are: none",
        ),
        (
            single_node_model("GlobalAveragePool", {"x": X}, group=2),
            "attribute 'group' is not defined for GlobalAveragePool",
        ),
        (
            _conv(strides=2),
            "node 'conv_0' (Conv): attribute 'strides' has type INT; Conv expects INTS",
        ),
    ],
)
def test_attributes_outside_the_operator_schema_are_refused(model, message, tmp_path, capsys):
    with pytest.raises(OnnxImportError, match=re.escape(message)):
        import_onnx(model, ctx=make_context())
    _one_line_error(["compile", _saved(model, tmp_path / "m.onnx")], capsys, message)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (single_node_model("LRN", {"x": X}), "node 'lrn_0' (LRN): the size attribute is required"),
        (
            single_node_model("Concat", {"x": X, "z": X}),
            "node 'concat_0' (Concat): the axis attribute is required",
        ),
        (
            single_node_model("Unsqueeze", {"x": X}, {"a": np.array([0, 0], np.int64)}),
            "node 'unsqueeze_0' (Unsqueeze): axes [0, 0] name an axis twice",
        ),
    ],
)
def test_missing_required_attributes_and_repeated_axes_are_refused(model, message) -> None:
    with pytest.raises(OnnxImportError, match=re.escape(message)):
        import_onnx(model, ctx=make_context())


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_weights_of_another_float_type_are_refused_not_converted(dtype) -> None:
    model = single_node_model("Conv", {"x": X}, {"w": W.astype(dtype)})
    message = f"node 'conv_0' (Conv): tensor 'w' of type {np.dtype(dtype)} is used as data"
    with pytest.raises(OnnxImportError, match=re.escape(message)):
        import_onnx(model, ctx=make_context())


# --- 3 and 4: damaged tensor data, external data that is missing or escapes the folder -----------


@pytest.mark.parametrize(("change", "size"), [(-4, 428), (8, 440)])
def test_raw_data_of_the_wrong_length_names_the_tensor(change, size, tmp_path, capsys) -> None:
    model = _conv()
    weight = model.graph.initializer[0]
    weight.raw_data = weight.raw_data[:change] if change < 0 else weight.raw_data + bytes(change)
    message = f"initializer 'w': raw_data holds {size} bytes, FLOAT [4, 3, 3, 3] needs 432"
    with pytest.raises(OnnxImportError, match=re.escape(message)):
        import_onnx(model, ctx=make_context())
    _one_line_error(["import", _saved(model, tmp_path / "m.onnx")], capsys, message)


def test_typed_data_of_the_wrong_count_or_an_unknown_type_names_the_tensor() -> None:
    model = single_node_model("Add", {"x": rand(1, 3)}, {"c": rand(1, 3)})
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.float_data.extend([1.0, 2.0])
    with pytest.raises(OnnxImportError, match=r"initializer .c.: .* FLOAT tensor of shape \[1,"):
        import_onnx(model, ctx=make_context())
    tensor.data_type = 999
    with pytest.raises(OnnxImportError, match="initializer 'c': data type 999 is not an ONNX"):
        import_onnx(model, ctx=make_context())


def test_constant_node_with_damaged_tensor_names_node_and_tensor() -> None:
    tensor = onnx.numpy_helper.from_array(rand(2, 3), "c")
    tensor.raw_data = tensor.raw_data[:5]
    node = onnx.helper.make_node("Constant", [], ["c"], name="const", value=tensor)
    model = single_node_model("Add", {"x": rand(2, 3)}, input_names=["x", "c"])
    model.graph.node.insert(0, node)
    with pytest.raises(OnnxImportError, match=r"node 'const' \(Constant\): attribute 'value'"):
        import_onnx(model, ctx=make_context())


def _external_model(folder: Path) -> Path:
    folder.mkdir()
    path = folder / "m.onnx"
    onnx.save(
        _conv(),
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    return path


def _relocate(path: Path, location: str) -> None:
    model = onnx.load(path, load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    onnx.save(model, path)


def test_external_data_loads_from_the_model_folder(tmp_path) -> None:
    path = _external_model(tmp_path / "model")
    assert "conv.conv2d" in str(import_onnx(path, ctx=make_context()))


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("missing.bin", "external data file 'missing.bin' does not exist"),
        ("../outside.bin", "external data file '../outside.bin' must be a relative path inside"),
        ("/etc/hostname", "external data file '/etc/hostname' must be a relative path inside"),
        (".", "external data file '.' does not exist (or is not a regular file)"),
    ],
)
def test_bad_external_data_names_tensor_and_file(location, message, tmp_path, capsys) -> None:
    path = _external_model(tmp_path / "model")
    (tmp_path / "outside.bin").write_bytes((tmp_path / "model" / "weights.bin").read_bytes())
    _relocate(path, location)
    with pytest.raises(OnnxImportError, match="tensor 'w': ") as error:
        import_onnx(path, ctx=make_context())
    assert message in str(error.value)
    _one_line_error(["import", str(path)], capsys, message)


def test_external_data_symlinked_out_of_the_folder_is_refused(tmp_path) -> None:
    path = _external_model(tmp_path / "model")
    os.replace(tmp_path / "model" / "weights.bin", tmp_path / "outside.bin")
    os.symlink(tmp_path / "outside.bin", tmp_path / "model" / "weights.bin")
    with pytest.raises(OnnxImportError, match=r"'weights\.bin' must be a relative path inside"):
        import_onnx(path, ctx=make_context())


def test_external_data_shorter_than_declared_is_refused(tmp_path) -> None:
    path = _external_model(tmp_path / "model")
    weights = tmp_path / "model" / "weights.bin"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(OnnxImportError, match=r"tensor 'w': .* holds 100 bytes; offset 0"):
        import_onnx(path, ctx=make_context())


def test_proto_with_unloaded_external_data_is_refused(tmp_path) -> None:
    model = onnx.load(_external_model(tmp_path / "model"), load_external_data=False)
    with pytest.raises(OnnxImportError, match="initializer 'w' keeps its data in an external"):
        import_onnx(model, ctx=make_context())


# --- 5: inputs too large for the machine ---------------------------------------------------------


def test_run_refuses_an_input_larger_than_memory(tmp_path, capsys) -> None:
    model = single_node_model("Relu", {"x": rand(1, 1, 1, 1)})
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, size in zip(dims, (1, 3, 100000, 100000), strict=True):
        dim.dim_value = size
    _one_line_error(
        ["run", _saved(model, tmp_path / "huge.onnx")], capsys, "random inputs 'x' [1, 3, 100000"
    )


# --- 7: a tensor defined twice -------------------------------------------------------------------


@pytest.mark.parametrize("defined_by", ["node", "input", "initializer"])
def test_tensor_defined_twice_is_refused(defined_by, tmp_path, capsys) -> None:
    model = single_node_model("Relu", {"x": rand(1, 3)}, {"b": rand(1, 3)}, input_names=["x"])
    redefined = {"node": "y", "input": "x", "initializer": "b"}[defined_by]
    model.graph.node.append(onnx.helper.make_node("Relu", ["x"], [redefined], name="again"))
    message = f"node 'again' (Relu): output '{redefined}' is already defined"
    with pytest.raises(OnnxImportError, match=re.escape(message)):
        import_onnx(model, ctx=make_context())
    _one_line_error(["import", _saved(model, tmp_path / "m.onnx")], capsys, message)


def test_graph_input_declared_twice_is_refused() -> None:
    model = single_node_model("Relu", {"x": rand(1, 3)})
    model.graph.input.append(model.graph.input[0])
    with pytest.raises(OnnxImportError, match="graph input 'x' is declared twice"):
        import_onnx(model, ctx=make_context())


# --- 8: --compare ort on what onnxruntime refuses, and on NaN and Inf outputs -------------------


def test_compare_with_a_model_onnxruntime_refuses(tmp_path, capsys) -> None:
    model = single_node_model("Relu", {"x": rand(1, 3)})
    model.ir_version = 99  # convir ignores the IR version; onnxruntime refuses it
    _one_line_error(
        ["run", _saved(model, tmp_path / "m.onnx"), "--compare", "ort", "--repeat", "1"],
        capsys,
        "--compare ort: onnxruntime refuses the model: Unsupported model IR version: 99",
    )


def _specials(constant: np.ndarray) -> onnx.ModelProto:
    return single_node_model("Add", {"x": rand(1, 3, 4, 4)}, {"c": constant})


def test_compare_accepts_nan_and_inf_at_the_same_places(tmp_path, capsys) -> None:
    constant = np.ones((1, 3, 4, 4), np.float32)
    constant[0, 0, 0, 0], constant[0, 1, 1, 1], constant[0, 2, 2, 2] = np.nan, np.inf, -np.inf
    argv = ["run", _saved(_specials(constant), tmp_path / "m.onnx"), "--compare", "ort"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy warnings fail the test
        assert convir_main([*argv, "--repeat", "1"]) == 0
    captured = capsys.readouterr()
    assert "y: shape [1, 3, 4, 4], mean nan, max nan" in captured.out
    assert "y: max |error| 0 " in captured.out and ": OK" in captured.out
    assert captured.err == ""


def test_nan_and_inf_at_different_places_are_a_mismatch() -> None:
    ours = np.array([1.0, np.nan, np.inf, 2.0, np.nan], np.float32)
    theirs = np.array([1.0, np.nan, -np.inf, np.nan, 3.0], np.float32)
    assert output_difference(ours, theirs) == (0.0, 1.0, 3)
    assert output_difference(ours[:2], theirs[:2]) == (0.0, 1.0, 0)
    error, scale, special = output_difference(np.array([1.5, 2.0]), np.array([1.0, -4.0]))
    assert (error, scale, special) == (6.0, 4.0, 0)


# --- 9 and 10: convir-opt on a missing file; bad option values -----------------------------------


def test_convir_opt_on_a_missing_file_is_one_line(capsys) -> None:
    assert opt_main(["/no/such/file.mlir"]) == 1
    err = capsys.readouterr().err
    assert err == "convir-opt: error: '/no/such/file.mlir': No such file or directory\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["-t", "bogus", "x.mlir"], "argument -t/--target: invalid choice: 'bogus'"),
    ],
)
def test_convir_opt_usage_errors_are_one_line(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        opt_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("convir-opt: error: ") and err.count("\n") == 1 and message in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "m.onnx", "--threads", "0"], "argument --threads: expected a positive integer"),
        (["run", "m.onnx", "--repeat", "x"], "argument --repeat: expected a positive integer"),
        (["compile", "m.onnx", "--block", "0"], "argument --block: expected a positive integer"),
        (["compile", "m.onnx", "--tile", "conv_0:ow_block=0"], "argument --tile: "),
        (["compile", "m.onnx", "--algorithm", "conv_0"], "argument --algorithm: "),
        (["compile", "m.onnx", "--emit", "bogus"], "argument --emit: invalid choice: 'bogus'"),
        (["compile", "m.onnx", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["bench", "layers", "--repeat", "0"], "argument --repeat: expected a positive integer"),
        (["import"], "the following arguments are required: model"),
    ],
)
def test_bad_option_values_are_one_line(argv, message, capsys) -> None:
    err = _one_line_error(argv, capsys, message, code=2)
    assert "usage:" not in err and "--help" in err


@pytest.mark.slow
def test_one_line_errors_from_a_fresh_process(tmp_path) -> None:
    """No traceback and one line also when run as a program (the console script's path):
    a user error (status 1) and a usage error (status 2)."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])}
    path = _saved(_conv(strides=[0, 0]), tmp_path / "m.onnx")
    for argv in (["import", path], ["run", path, "--threads", "0"]):
        done = subprocess.run(
            [sys.executable, "-m", "convir.cli.main", *argv],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert done.returncode in (1, 2) and done.stdout == ""
        assert done.stderr.startswith("convir: error: ") and done.stderr.count("\n") == 1
