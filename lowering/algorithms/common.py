"""Pieces every conv algorithm shares: the schedule base class, the geometry of a conv, the
kernel function's signature, and the epilogue of an NCHWc output vector."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import ClassVar, NamedTuple, Self

from xdsl.dialects import arith
from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, ModuleOp, i64
from xdsl.ir import SSAValue

from convir.dialects import conv
from convir.dialects.shapes import tensor_shape
from lowering.emit import (
    byte_memref,
    f32_memref,
    kernel_function,
    load_vector,
    store_vector,
)

#: Largest max |y - y64| / max |y64| accepted from an algorithm that sums the same products as
#: a direct convolution in fp32 (direct, depthwise, the GEMMs): the float64 reference is y64.
#: Measured over the convs of ResNet-18/50 and VGG-16 with He-normal weights: 6e-7 for an fp32
#: GEMM (`examples/benchmarks/winograd_accuracy.py`); the bound leaves a factor 16 for deeper
#: sums and unluckier data. A tuner rejects a candidate whose output is further off.
ACCUMULATION_TOLERANCE = 1e-5


@dataclass(frozen=True)
class Schedule:
    """Base of the schedule dataclasses: integer knobs, all >= 1, stored as a dictionary attr."""

    ALGORITHM: ClassVar[str] = ""

    def to_attr(self) -> DictionaryAttr:
        """The schedule as the `schedule` attribute of a `conv.conv2d`."""
        return DictionaryAttr(
            {f.name: IntegerAttr(getattr(self, f.name), i64) for f in fields(self)}
        )

    @classmethod
    def from_attr(cls, attr: DictionaryAttr | None) -> Self:
        """Read a schedule attribute; missing knobs take their defaults, unknown ones are errors."""
        if attr is None:
            return cls()
        known = [f.name for f in fields(cls)]
        values = {}
        for key, value in attr.data.items():
            if key not in known or not isinstance(value, IntegerAttr):
                raise ValueError(
                    f"{cls.ALGORITHM} schedule: unknown or non-integer knob '{key}'; "
                    f"expected integers {', '.join(known)}"
                )
            values[key] = value.value.data
        schedule = cls(**values)
        if min(getattr(schedule, name) for name in known) < 1:
            raise ValueError(f"{cls.ALGORITHM} schedule: knobs must be >= 1, got {schedule}")
        return schedule


@dataclass(frozen=True)
class ConvGeometry:
    """Every size of a `conv.conv2d` an emitter needs. `c` and `o` are logical channel counts;
    `block` is X for NCHWc tensors ([N, C/X, H, W, X]) and None for NCHW; `nchw_input` marks a
    conv that reads an NCHW input and writes an NCHWc output of block X."""

    n: int
    c: int
    h: int
    w: int
    o: int
    group: int
    kh: int
    kw: int
    oh: int
    ow: int
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilations: tuple[int, int]
    block: int | None
    nchw_input: bool = False

    @staticmethod
    def of(op: conv.Conv2DOp) -> ConvGeometry:
        input_shape = tensor_shape(op.input)
        o, cg, kh, kw = tensor_shape(op.weight)
        group = op.group.value.data
        n, _, h, w = input_shape[:4]
        oh, ow = tensor_shape(op.output)[2:4]
        output_shape = tensor_shape(op.output)
        block = output_shape[4] if len(output_shape) == 5 else None
        nchw_input = block is not None and len(input_shape) == 4
        ints = [tuple(int(v) for v in a.iter_values()) for a in (op.strides, op.pads, op.dilations)]
        return ConvGeometry(
            n,
            cg * group,
            h,
            w,
            o,
            group,
            kh,
            kw,
            oh,
            ow,
            *ints,
            block,
            nchw_input,  # type: ignore[arg-type]
        )

    @property
    def og(self) -> int:
        return self.o // self.group

    @property
    def cg(self) -> int:
        return self.c // self.group

    @property
    def padded_hw(self) -> tuple[int, int]:
        top, left, bottom, right = self.pads
        return self.h + top + bottom, self.w + left + right

    @property
    def needs_padding(self) -> bool:
        return any(self.pads)

    @property
    def input_blocks(self) -> int:
        assert self.block is not None
        return -(-self.c // self.block)

    @property
    def output_blocks(self) -> int:
        assert self.block is not None
        return -(-self.o // self.block)

    @property
    def blocked_input(self) -> bool:
        """Whether the input is NCHWc (else NCHW, whatever the output)."""
        return self.block is not None and not self.nchw_input

    def input_shape(self) -> tuple[int, ...]:
        if not self.blocked_input:
            return (self.n, self.c, self.h, self.w)
        return (self.n, self.input_blocks, self.h, self.w, self.block)

    def output_shape(self) -> tuple[int, ...]:
        if self.block is None:
            return (self.n, self.o, self.oh, self.ow)
        return (self.n, self.output_blocks, self.oh, self.ow, self.block)

    def key(self) -> str:
        """The geometry as part of a kernel name."""
        shape = "x".join(map(str, self.input_shape())) + (
            f"to{self.block}" if self.nchw_input else ""
        )
        return (
            f"{shape}_o{self.o}k{self.kh}x{self.kw}s{self.strides[0]}x{self.strides[1]}"
            f"p{'_'.join(map(str, self.pads))}d{self.dilations[0]}x{self.dilations[1]}g{self.group}"
        )


def row_tile(ow: int, cap: int) -> int:
    """Output columns per register tile: at most `cap`, preferring a divisor of `ow` no smaller
    than cap/2 so that no narrow remainder tile is needed."""
    cap = max(1, min(ow, cap))
    for width in range(cap, (cap + 1) // 2 - 1, -1):
        if ow % width == 0:
            return width
    return cap


def epilogue_key(op: conv.Conv2DOp) -> str:
    """The fused epilogue of `op` as part of a kernel name."""
    parts = [
        "b" if op.bias is not None else "",
        "r" if op.residual is not None else "",
        op.activation.data if op.activation is not None else "",
    ]
    if op.alpha is not None or op.beta is not None:
        parts.append(
            f"{float_of(op.alpha)}_{float_of(op.beta)}".replace(".", "p").replace("-", "m")
        )
    return "".join(parts) or "none"


def float_of(attr) -> float:
    """The value of an optional FloatAttr, 0.0 when absent."""
    return 0.0 if attr is None else float(attr.value.data)


def has_constant_parameters(op: conv.Conv2DOp) -> bool:
    """Weights (and bias) are constants, so they can be repacked at compile time."""
    parameters = [op.weight] + ([op.bias] if op.bias is not None else [])
    return all(isinstance(v.owner, conv.ConstantOp) for v in parameters)


class ConvBuffers(NamedTuple):
    """The memrefs a conv kernel works on; `x` is the zero-padded input when `conv_kernel` made
    one, `workspace` the algorithm's own scratch buffer when it asked for one."""

    x: SSAValue
    weight: SSAValue
    bias: SSAValue | None
    residual: SSAValue | None
    y: SSAValue
    workspace: SSAValue | None = None


@contextmanager
def conv_kernel(
    module: ModuleOp,
    name: str,
    op: conv.Conv2DOp,
    g: ConvGeometry,
    weight_shape: tuple[int, ...],
    bias_shape: tuple[int, ...],
    workspace_bytes: int,
) -> Iterator[ConvBuffers]:
    """`func.func @name(x, weight[, bias][, residual], y[, workspace])` of a conv kernel, the
    workspace present when `workspace_bytes` > 0. Every algorithm reads its input in place and
    handles padding itself (padded taps contribute nothing, not 0 × weight)."""
    arg_types = [f32_memref(g.input_shape()), f32_memref(weight_shape)]
    if op.bias is not None:
        arg_types.append(f32_memref(bias_shape))
    if op.residual is not None:
        arg_types.append(f32_memref(g.output_shape()))
    arg_types.append(f32_memref(g.output_shape()))
    if workspace_bytes:
        arg_types.append(byte_memref(workspace_bytes))
    with kernel_function(module, name, arg_types) as args:
        args = list(args)
        x, weight = args.pop(0), args.pop(0)
        bias = args.pop(0) if op.bias is not None else None
        residual = args.pop(0) if op.residual is not None else None
        y = args.pop(0)
        workspace = args.pop(0) if workspace_bytes else None
        yield ConvBuffers(x, weight, bias, residual, y, workspace)


def store_blocked(
    op: conv.Conv2DOp, acc: SSAValue, residual: SSAValue | None, y: SSAValue, indices: list
) -> None:
    """Residual add, activation and the store of one NCHWc output vector `y[indices, 0:X]`."""
    from lowering.kernels.elementwise import apply_activation

    width = acc.type.get_shape()[0]
    if residual is not None:
        acc = arith.AddfOp(acc, load_vector(residual, [*indices, 0], width)).result
    if op.activation is not None:
        acc = apply_activation(
            acc, op.activation.data, float_of(op.alpha), float_of(op.beta), width
        )
    store_vector(acc, y, [*indices, 0])
