"""Small conv-dialect modules for the tests of algorithm selection and tiling."""

from __future__ import annotations

from xdsl.dialects.builtin import ModuleOp

from convir.dialects import conv, parse_module


def conv_module(
    c: int,
    o: int,
    *,
    kernel: int = 3,
    stride: int = 1,
    pad: int = 0,
    group: int = 1,
    block: int | None = None,
    hw: int = 8,
    dilation: int = 1,
    attributes: str = "",
    constant_weight: bool = True,
) -> ModuleOp:
    """A module with one function holding one `conv.conv2d` (NCHWc when `block` is given)."""
    oh = (hw + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1

    def tensor(channels: int, size: int) -> str:
        if block is None:
            return f"tensor<1x{channels}x{size}x{size}xf32>"
        return f"tensor<1x{-(-channels // block)}x{size}x{size}x{block}xf32>"

    weight_type = f"tensor<{o}x{c // group}x{kernel}x{kernel}xf32>"
    arguments = f"%x: {tensor(c, hw)}" + ("" if constant_weight else f", %w: {weight_type}")
    weight = f"%w = conv.constant dense<0.5> : {weight_type}" if constant_weight else ""
    properties = (
        f"strides = array<i64: {stride}, {stride}>, pads = array<i64: {pad}, {pad}, {pad}, {pad}>,"
        f" dilations = array<i64: {dilation}, {dilation}>, group = {group} : i64"
    )
    types = f"{tensor(c, hw)}, {weight_type} -> {tensor(o, oh)}"
    text = f"""
    func.func @main({arguments}) -> {tensor(o, oh)} {{
      {weight}
      %y = conv.conv2d %x, %w {{{attributes}{properties}}} : {types}
      func.return %y : {tensor(o, oh)}
    }}
    """
    return parse_module(text)


def only_conv(module: ModuleOp) -> conv.Conv2DOp:
    """The one conv of a module built by `conv_module`."""
    (op,) = [op for op in module.walk() if isinstance(op, conv.Conv2DOp)]
    return op
