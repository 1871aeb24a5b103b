"""Import an ONNX model into the conv dialect, print its IR, run it with the numpy reference.

    python examples/import_and_run.py [MODEL.onnx]

Without an argument, a small built-in SqueezeNet 1.1 is used.
"""

import sys

import numpy as np

import convir
from convir import reference
from convir.dialects import make_context, module_to_text
from convir.models import build


def main(argv: list[str]) -> None:
    model = argv[1] if len(argv) > 1 else build("squeezenet1_1", size=64)
    ctx = make_context()
    module = convir.import_onnx(model, ctx=ctx)
    print(module_to_text(module, ctx))
    arg_types = module.ops.first.function_type.inputs.data
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(t.get_shape()).astype(np.float32) for t in arg_types]
    for name, value in reference.run(module, inputs, ctx=ctx).items():
        print(f"{name}: shape {list(value.shape)}, argmax {int(np.argmax(value))}")


if __name__ == "__main__":
    main(sys.argv)
