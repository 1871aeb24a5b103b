"""`direct`: convolution as a register-blocked loop nest, vectorised over output channels.

Works on NCHW tensors with weights repacked at compile time to [G, OB, C/G, KH, KW, W]: for each
group, the O/G output channels are cut into OB blocks of W lanes (W = vector width, the last block
zero-padded). The microkernel keeps an `ow_block` × `oc_blocks` tile of accumulators in vector
registers: per (c, kh, kw) it loads `oc_blocks` weight vectors and, for each of `ow_block` output
pixels, broadcasts one input value and issues `oc_blocks` FMAs. Bias initialises the accumulators;
residual and activation are applied to the tile before it is stored. Padding is materialised once
per call in a workspace (the zero-padded input), so the inner loops carry no bounds checks.

Threads split the (image, group, channel-block group, output row) space with `scf.parallel`.
Any stride, dilation, padding, group count and channel count is supported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.dialects import arith
from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, ModuleOp, i64
from xdsl.ir import Operation, SSAValue

from convir.dialects import conv
from convir.dialects.shapes import tensor_shape
from lowering.emit import (
    add,
    affine,
    broadcast,
    byte_memref,
    extract,
    f32_constant,
    f32_memref,
    fma,
    if_,
    index,
    insert,
    kernel_function,
    load,
    load_vector,
    loop,
    parallel,
    splat,
    store,
    view,
)
from lowering.kernels import Packer

NAME = "direct"


@dataclass(frozen=True)
class DirectSchedule:
    """Knobs of the direct algorithm: vector width, output-width × channel-block register tile."""

    vector_width: int = 8
    ow_block: int = 6
    oc_blocks: int = 2

    def to_attr(self) -> DictionaryAttr:
        """The schedule as the `schedule` attribute of a `conv.conv2d`."""
        return DictionaryAttr({k: IntegerAttr(v, i64) for k, v in self.__dict__.items()})

    @staticmethod
    def from_attr(attr: DictionaryAttr | None) -> DirectSchedule:
        """Read a schedule attribute; missing knobs take their defaults, unknown ones are errors."""
        if attr is None:
            return DirectSchedule()
        known = DirectSchedule.__dataclass_fields__
        values = {}
        for key, value in attr.data.items():
            if key not in known or not isinstance(value, IntegerAttr):
                raise ValueError(
                    f"direct schedule: unknown or non-integer knob '{key}'; "
                    f"expected integers {', '.join(known)}"
                )
            values[key] = value.value.data
        schedule = DirectSchedule(**values)
        if min(schedule.vector_width, schedule.ow_block, schedule.oc_blocks) < 1:
            raise ValueError(f"direct schedule: knobs must be >= 1, got {schedule}")
        return schedule


SCHEDULE = DirectSchedule


def applicable(op: conv.Conv2DOp) -> bool:
    """The direct algorithm needs constant weights (and bias), which it repacks at compile time."""
    constants = [op.weight] + ([op.bias] if op.bias is not None else [])
    return all(isinstance(v.owner, conv.ConstantOp) for v in constants)


def heuristic(op: conv.Conv2DOp, vector_width: int, vector_registers: int) -> DirectSchedule:
    """Largest register tile that fits: ow_block × oc_blocks accumulators + weights + broadcast."""
    o = tensor_shape(op.weight)[0]
    group = op.group.value.data
    blocks = -(-(o // group) // vector_width)
    oc_blocks = 2 if blocks % 2 == 0 else 1
    ow = tensor_shape(op.output)[3]
    budget = vector_registers - oc_blocks - 1
    return DirectSchedule(vector_width, max(1, min(ow, budget // oc_blocks, 8)), oc_blocks)


@dataclass(frozen=True)
class _Geometry:
    """Every size the emitter needs, derived once from the op and its schedule."""

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
    schedule: DirectSchedule

    @staticmethod
    def of(op: conv.Conv2DOp) -> _Geometry:
        n, c, h, w = tensor_shape(op.input)
        o, _, kh, kw = tensor_shape(op.weight)
        _, _, oh, ow = tensor_shape(op.output)
        ints = [tuple(int(v) for v in a.iter_values()) for a in (op.strides, op.pads, op.dilations)]
        return _Geometry(
            n, c, h, w, o, op.group.value.data, kh, kw, oh, ow, *ints,
            DirectSchedule.from_attr(op.schedule),
        )  # fmt: skip

    @property
    def width(self) -> int:
        return self.schedule.vector_width

    @property
    def og(self) -> int:
        return self.o // self.group

    @property
    def cg(self) -> int:
        return self.c // self.group

    @property
    def oc_blocks_total(self) -> int:
        return -(-self.og // self.width)

    @property
    def padded_hw(self) -> tuple[int, int]:
        top, left, bottom, right = self.pads
        return self.h + top + bottom, self.w + left + right

    @property
    def needs_padding(self) -> bool:
        return any(self.pads)


def pack_weight(weight: np.ndarray, group: int, width: int) -> np.ndarray:
    """[O, C/G, KH, KW] -> [G, OB, C/G, KH, KW, width], output channels zero-padded per group."""
    o, cg, kh, kw = weight.shape
    og = o // group
    blocks = -(-og // width)
    padded = np.zeros((group, blocks * width, cg, kh, kw), np.float32)
    padded[:, :og] = weight.reshape(group, og, cg, kh, kw)
    return np.ascontiguousarray(
        padded.reshape(group, blocks, width, cg, kh, kw).transpose(0, 1, 3, 4, 5, 2)
    )


def pack_bias(bias: np.ndarray, group: int, width: int) -> np.ndarray:
    """[O] -> [G, OB, width], zero-padded per group."""
    og = bias.shape[0] // group
    blocks = -(-og // width)
    padded = np.zeros((group, blocks * width), np.float32)
    padded[:, :og] = bias.reshape(group, og)
    return padded.reshape(group, blocks, width)


class DirectEmitter:
    """`KernelEmitter` of `conv.conv2d` with `algorithm = "direct"`."""

    def key(self, op: Operation) -> str:
        g = _Geometry.of(op)
        s = g.schedule
        epilogue = [
            "b" if op.bias is not None else "",
            "r" if op.residual is not None else "",
            op.activation.data if op.activation is not None else "",
        ]
        if op.alpha is not None or op.beta is not None:
            epilogue.append(
                f"{_float(op.alpha)}_{_float(op.beta)}".replace(".", "p").replace("-", "m")
            )
        shape = "x".join(map(str, (g.n, g.c, g.h, g.w)))
        return (
            f"conv_direct_{shape}_o{g.o}k{g.kh}x{g.kw}s{g.strides[0]}x{g.strides[1]}"
            f"p{'_'.join(map(str, g.pads))}d{g.dilations[0]}x{g.dilations[1]}g{g.group}"
            f"_w{s.vector_width}t{s.ow_block}x{s.oc_blocks}_{''.join(epilogue) or 'none'}"
        )

    def packers(self, op: Operation) -> dict[int, Packer]:
        g = _Geometry.of(op)
        packers: dict[int, Packer] = {1: lambda w: pack_weight(w, g.group, g.width)}
        if op.bias is not None:
            packers[2] = lambda b: pack_bias(b, g.group, g.width)
        return packers

    def workspace_bytes(self, op: Operation) -> int:
        g = _Geometry.of(op)
        hp, wp = g.padded_hw
        return 4 * g.n * g.c * hp * wp if g.needs_padding else 0

    def emit(self, op: Operation, module: ModuleOp, name: str, vector_width: int) -> None:
        g = _Geometry.of(op)
        wb = g.width
        weight_type = f32_memref((g.group, g.oc_blocks_total, g.cg, g.kh, g.kw, wb))
        arg_types = [f32_memref((g.n, g.c, g.h, g.w)), weight_type]
        if op.bias is not None:
            arg_types.append(f32_memref((g.group, g.oc_blocks_total, wb)))
        if op.residual is not None:
            arg_types.append(f32_memref((g.n, g.o, g.oh, g.ow)))
        arg_types.append(f32_memref((g.n, g.o, g.oh, g.ow)))
        workspace = self.workspace_bytes(op)
        if workspace:
            arg_types.append(byte_memref(workspace))
        with kernel_function(module, name, arg_types) as args:
            args = list(args)
            x, weight = args.pop(0), args.pop(0)
            bias = args.pop(0) if op.bias is not None else None
            residual = args.pop(0) if op.residual is not None else None
            y = args.pop(0)
            if workspace:
                x = _pad_input(g, x, args.pop(0))
            _emit_tiles(g, op, x, weight, bias, residual, y)


def _float(attr) -> float:
    return 0.0 if attr is None else float(attr.value.data)


def _pad_input(g: _Geometry, x: SSAValue, workspace: SSAValue) -> SSAValue:
    """Copy x into a zero-padded [N, C, Hp, Wp] buffer inside the workspace; return that buffer."""
    hp, wp = g.padded_hw
    top, left = g.pads[0], g.pads[1]
    padded = view(workspace, 0, f32_memref((g.n, g.c, hp, wp)))
    zero = f32_constant(0.0)
    with parallel([(0, g.n), (0, g.c)]) as (n, c):
        with loop(0, hp) as row, loop(0, wp) as col:
            store(zero, padded, [n, c, row.iv, col.iv])
        with loop(0, g.h) as row, loop(0, g.w) as col:
            value = load(x, [n, c, row.iv, col.iv])
            store(value, padded, [n, c, add(row.iv, top), add(col.iv, left)])
    return padded


def _emit_tiles(g: _Geometry, op, x, weight, bias, residual, y) -> None:
    """The threaded loop over output rows and channel-block groups, then the width tiles."""
    s = g.schedule
    block_groups = -(-g.oc_blocks_total // s.oc_blocks)
    with parallel([(0, g.n), (0, g.group), (0, block_groups), (0, g.oh)]) as (n, grp, bg, oh):
        full = g.ow // s.ow_block
        with loop(0, full * s.ow_block, s.ow_block) as tile:
            _emit_tile(g, op, (x, weight, bias, residual, y), (n, grp, bg, oh, tile.iv), s.ow_block)
        if g.ow % s.ow_block:
            with loop(full * s.ow_block, g.ow) as tile:
                _emit_tile(g, op, (x, weight, bias, residual, y), (n, grp, bg, oh, tile.iv), 1)


def _emit_tile(g: _Geometry, op, buffers, position, ow_block: int) -> None:
    """Accumulate one ow_block × oc_blocks tile over (c, kh, kw), then its epilogue and store."""
    x, weight, bias, residual, y = buffers
    n, grp, bg, oh, ow0 = position
    s, wb = g.schedule, g.width
    blocks = [affine([(bg, s.oc_blocks)], j) for j in range(s.oc_blocks)]
    # The last block group may run past the channel blocks: clamp loads to the last block.
    last = index(g.oc_blocks_total - 1)
    blocks = (
        [arith.MinSIOp(b, last).result for b in blocks]
        if g.oc_blocks_total % s.oc_blocks
        else blocks
    )
    initial = [
        load_vector(bias, [grp, blocks[j], 0], wb) if bias is not None else splat(0.0, wb)
        for j in range(s.oc_blocks)
        for _ in range(ow_block)
    ]
    with loop(0, g.cg, carry=initial) as c_loop:
        channel = affine([(grp, g.cg), (c_loop.iv, 1)])
        with loop(0, g.kh, carry=c_loop.carried) as kh_loop:
            row = affine([(oh, g.strides[0]), (kh_loop.iv, g.dilations[0])])
            with loop(0, g.kw, carry=kh_loop.carried) as kw_loop:
                accs = list(kw_loop.carried)
                weights = [
                    load_vector(weight, [grp, b, c_loop.iv, kh_loop.iv, kw_loop.iv, 0], wb)
                    for b in blocks
                ]
                for r in range(ow_block):
                    col = affine(
                        [(ow0, g.strides[1]), (kw_loop.iv, g.dilations[1])], r * g.strides[1]
                    )
                    pixel = broadcast(load(x, [n, channel, row, col]), wb)
                    for j, wv in enumerate(weights):
                        accs[j * ow_block + r] = fma(pixel, wv, accs[j * ow_block + r])
                kw_loop.yield_(*accs)
            kh_loop.yield_(*kw_loop.results)
        c_loop.yield_(*kh_loop.results)
    for j in range(s.oc_blocks):
        block = affine([(bg, s.oc_blocks)], j)
        for r in range(ow_block):
            _store_vector_tile(
                g,
                op,
                c_loop.results[j * ow_block + r],
                residual,
                y,
                (n, grp, block, oh, add(ow0, r)),
            )


def _store_vector_tile(g: _Geometry, op, acc, residual, y, position) -> None:
    """Residual, activation, and the per-lane store of one accumulator (W output channels)."""
    n, grp, block, oh, ow = position
    wb = g.width
    base = affine([(grp, g.og), (block, wb)])
    channels = [add(base, lane) for lane in range(wb)]
    # Lane `lane` holds channel `base + lane` of this group; lanes past the group's end are padding.
    lane_ok = [
        arith.CmpiOp(affine([(block, wb)], lane), index(g.og), "ult").result for lane in range(wb)
    ]
    exact = g.og % wb == 0 and g.oc_blocks_total % g.schedule.oc_blocks == 0
    if residual is not None:
        for lane in range(wb):
            value = _guarded_load(
                residual, [n, channels[lane], oh, ow], None if exact else lane_ok[lane]
            )
            acc = insert(value, acc, lane)
    if op.activation is not None:
        from lowering.kernels.elementwise import apply_activation

        acc = apply_activation(acc, op.activation.data, _float(op.alpha), _float(op.beta), wb)
    for lane in range(wb):
        value = extract(acc, lane)
        if exact:
            store(value, y, [n, channels[lane], oh, ow])
        else:
            with if_(lane_ok[lane]):
                store(value, y, [n, channels[lane], oh, ow])


def _guarded_load(ref: SSAValue, indices, ok: SSAValue | None) -> SSAValue:
    """ref[indices], or 0 when `ok` is false (the index would be out of bounds)."""
    if ok is None:
        return load(ref, indices)
    # Clamp the channel index into bounds, then select: a branch-free guarded load.
    safe = list(indices)
    safe[1] = arith.SelectOp(ok, indices[1], index(0)).result
    return arith.SelectOp(ok, load(ref, safe), f32_constant(0.0)).result
