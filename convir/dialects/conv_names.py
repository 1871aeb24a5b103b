"""Stable names of the convs of a module: the keys of per-conv overrides.

Every `conv.conv2d` carries the discardable attribute `convir.name = "conv_<i>"`, `i` its position
among the module's convs when it was named (module order, from 0). The importer names every conv
and also records the ONNX node's name, when the node has one, as `onnx.name`; the passes that take
per-conv options (`conv-select-algorithm`, `conv-tile`) name any conv that has no name yet, so a
hand-written `.mlir` file works too. Passes that rebuild a conv copy its discardable attributes,
so a conv keeps the name it was imported with through every stage: the names printed by
`convir compile MODEL --emit scheduled` are the keys `--algorithm` and `--tile` accept.
"""

from __future__ import annotations

from xdsl.dialects.builtin import ModuleOp, StringAttr

from convir.dialects.conv import Conv2DOp

#: The discardable attribute holding a conv's convir name ("conv_3").
CONV_NAME = "convir.name"
#: The discardable attribute holding the ONNX node name a conv was imported from.
ONNX_NAME = "onnx.name"


def conv_ops(module: ModuleOp) -> list[Conv2DOp]:
    """The convs of `module`, in module order; not those inside a `conv.fused` region, which
    that op's own algorithm and schedule run."""
    from convir.dialects.fused import FusedOp

    return [
        op
        for op in module.walk()
        if isinstance(op, Conv2DOp) and not isinstance(op.parent_op(), FusedOp)
    ]


def conv_name(op: Conv2DOp) -> str | None:
    """`op`'s `convir.name`, or None when it has none."""
    name = op.attributes.get(CONV_NAME)
    return name.data if isinstance(name, StringAttr) else None


def name_convs(module: ModuleOp) -> list[Conv2DOp]:
    """Give every conv of `module` without a `convir.name` the name `conv_<i>`, `i` its position
    among the convs (or the next number after it that no conv uses). Returns the convs in order."""
    convs = conv_ops(module)
    taken = {conv_name(op) for op in convs}
    for position, op in enumerate(convs):
        if conv_name(op) is not None:
            continue
        number = position
        while f"conv_{number}" in taken:
            number += 1
        # First in the dictionary, so that the name leads the op's printed attributes.
        op.attributes = {CONV_NAME: StringAttr(f"conv_{number}"), **op.attributes}
        taken.add(f"conv_{number}")
    return convs


def convs_by_key(convs: list[Conv2DOp]) -> dict[str, list[Conv2DOp]]:
    """Every key that designates a conv (its `convir.name` and its `onnx.name`) -> the convs it
    designates (more than one only in IR that names two convs alike)."""
    keys: dict[str, list[Conv2DOp]] = {}
    for op in convs:
        for attribute in (CONV_NAME, ONNX_NAME):
            name = op.attributes.get(attribute)
            if isinstance(name, StringAttr):
                designated = keys.setdefault(name.data, [])
                if op not in designated:
                    designated.append(op)
    return keys
