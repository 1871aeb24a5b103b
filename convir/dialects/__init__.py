"""Dialects of convir and the context that loads them.

`make_context()` is the one place a `Context` is assembled: xDSL's dialects that the pipeline
uses, the `conv` dialect, and a builtin dialect whose resource store holds weights as numpy arrays
(see `resources`). Each context owns its weights.
"""

from __future__ import annotations

from io import StringIO

from xdsl.context import Context
from xdsl.dialects.builtin import ArrayAttr, ModuleOp, StringAttr
from xdsl.parser import Parser
from xdsl.targets.mlir import MLIRTarget

from convir.dialects.resources import builtin_with_resources

_default: Context | None = None


def make_context(*, elide_weights: bool = True) -> Context:
    """A context with every dialect convir uses loaded and its own weight store."""
    from xdsl.dialects.arith import Arith
    from xdsl.dialects.func import Func

    from convir.dialects.conv import Conv

    ctx = Context()
    ctx.load_dialect(builtin_with_resources(elide_weights))
    ctx.load_dialect(Func)
    ctx.load_dialect(Arith)
    ctx.load_dialect(Conv)
    return ctx


def default_context() -> Context:
    """The process-wide context used when an API call is given none.

    Weights imported into it live as long as the process; pass your own context
    (`make_context()`) to control their lifetime.
    """
    global _default
    if _default is None:
        _default = make_context()
    return _default


def onnx_names(attrs: ArrayAttr | None, count: int, prefix: str) -> list[str]:
    """The ONNX names the importer records on a function's arguments or results
    (`{onnx.name = "..."}`), falling back to `<prefix><i>` where there is none."""
    names = [f"{prefix}{i}" for i in range(count)]
    for i, entry in enumerate(attrs.data if attrs else ()):
        name = entry.data.get("onnx.name")
        if isinstance(name, StringAttr):
            names[i] = name.data
    return names


def module_to_text(module: ModuleOp, ctx: Context) -> str:
    """The module as MLIR text, exactly as `convir-opt` prints it (resources included unless the
    context elides them)."""
    stream = StringIO()
    MLIRTarget().emit(ctx, module, stream)
    return stream.getvalue()


def parse_module(text: str, ctx: Context | None = None, name: str = "<string>") -> ModuleOp:
    """Parse MLIR text (with an optional `dialect_resources` section) into a module."""
    return Parser(ctx or default_context(), text, name).parse_module()
