"""The examples a newcomer starts from keep working."""

import runpy
from pathlib import Path

import numpy as np

from convir import reference
from convir.dialects import make_context, parse_module

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_import_and_run_example(capsys) -> None:
    module = runpy.run_path(str(EXAMPLES / "import_and_run.py"))
    module["main"](["import_and_run.py"])
    out = capsys.readouterr().out
    assert "conv.conv2d" in out and "output: shape [1, 1000]" in out


def test_conv_block_example_parses_and_runs() -> None:
    ctx = make_context()
    module = parse_module((EXAMPLES / "conv_block.mlir").read_text(), ctx)
    module.verify()
    x = np.ones((1, 3, 32, 32), np.float32)
    (y,) = reference.run(module, [x], ctx=ctx).values()
    assert y.shape == (1, 16, 16, 16)
    # Every 2x2 pooling window holds at least one conv output whose 3x3x3 window is all inside.
    np.testing.assert_allclose(y, 27 * 0.01, rtol=1e-6)


def test_lazy_top_level_api() -> None:
    import convir

    assert callable(convir.import_onnx) and issubclass(convir.OnnxImportError, ValueError)
