"""convir: a convolution compiler for CPUs on xDSL and llvmlite.

The top level stays light: heavy modules load on first use of the names below.
- `import_onnx(model, *, batch=None, ctx=None)`: ONNX model or path -> conv-dialect module.
- `OnnxImportError`: raised for models that cannot be imported (names node, op type and reason).
- `compile(model, *, threads=None, target=None, cache_dir=None, block=None, algorithms=None,
  tiles=None)`: ONNX model or path -> `CompiledModel`, native code called like an onnxruntime
  session (`block`: NCHWc block; `algorithms`/`tiles`: per-conv overrides, see
  `convir.compiler.lower`).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "import_onnx": "convir.importer.onnx",
    "OnnxImportError": "convir.importer.onnx",
    "compile": "convir.compiler",
    "CompiledModel": "convir.runtime",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'convir' has no attribute '{name}'")
