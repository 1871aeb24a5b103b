"""`conv-fuse-layers`: wrap chains of two convs in `conv.fused` (layer fusion, DESIGN §5).

Expects NCHWc graph IR (after `conv-convert-layout` and `conv-fuse-epilogue`), before
`conv-select-algorithm`. A conv `second` whose input is the result of a conv `first` is a chain
when `convir.dialects.fused.chain_type` names its type (dw3x3_1x1, 3x3_1x1, 3x3_3x3: the second
conv with stride 1, dilation 1, group 1), `first`'s result has no other use, both convs' weights
and biases are constants and neither conv has an `algorithm` pinned. Each conv joins at most one
chain (module order, first come). The pair is replaced by one `conv.fused` whose region holds
copies of the two convs (names and epilogues kept), with `algorithm = "fused"`, the heuristic
schedule of `lowering.algorithms.fused` for the target, and `convir.name = "<first>+<second>"`.
Anything else, including a chain that passes through another op (a concat), is left alone.

Options:
- `mode`: `auto` (default: the cost model below decides), `all` (every chain of the allowed
  types), `none` (nothing).
- `pairs`: the chain types allowed, comma-separated (`pairs=dw3x3_1x1,3x3_1x1`); empty (default):
  the types `lowering.algorithms.fused` emits (`EMITTED_TYPES`). A type without an emitter may be
  named (to see the IR), but `auto` never forms it and lowering it fails naming the op.
- `target`: `host` (default) or a preset of `convir.target` (the cost model and the schedule
  read its caches and cores).

**Cost model (`auto`).** Fusion saves the traffic of the intermediate feature map, written by
the first conv and read back by the second: 2 · I bytes (I = its size). When I fits in half of
L2 the separate convs find it in L2 anyway, and the saving is counted at L2 speed; else at
memory speed. Against that: the rows of the first conv a tile recomputes (the halo of a second
3×3: (KH2 - 1) / tile_rows of the first conv's FLOPs; none for a 1×1); lost parallelism (fewer
tiles than workers leaves cores idle: the idle share of both convs' FLOPs); and what tiles read
again: every tile streams all of the second conv's weights (once per image apart), and the
input rows two row tiles share (KH1 - stride1 per tile boundary), each at L2 or memory speed by
its size as above. Time is
counted in cycles of one core from the target's vector width — peak FLOP/cycle = 2 FMA pipes ×
2 × vector width (32 on AVX2, the measured ~98 GFLOP/s of `convir bench peak` at ~3 GHz) — and
the constants `MEMORY_BYTES_PER_CYCLE` and `L2_BYTES_PER_CYCLE`, rough figures for current x86
cores (not measured per target). `auto` fuses where the saving exceeds the costs. The model is a
first estimate: it has not yet been checked against per-pair measurements (a tuning record does
not decide yet either).

Errors (PassFailedException naming the option and what is accepted): an unknown `mode`, an
unknown chain type in `pairs`, an unknown `target`.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import PassFailedException

from convir.dialects import conv
from convir.dialects.conv_names import CONV_NAME
from convir.dialects.fused import FUSION_TYPES, chain_type, fused_region
from convir.dialects.shapes import tensor_shape, volume
from convir.target import Target
from passes.conv_overrides import parse_target

PASS = "conv-fuse-layers"
MODES = ("auto", "all", "none")
#: Rough sustained bandwidths of one core, bytes per cycle (module doc).
MEMORY_BYTES_PER_CYCLE = 8.0
L2_BYTES_PER_CYCLE = 32.0


def parse_pairs(text: str) -> tuple[str, ...]:
    """The `pairs` option: chain types, comma-separated; empty: the emitted types."""
    from lowering.algorithms.fused import EMITTED_TYPES

    names = tuple(name.strip() for name in text.split(",") if name.strip())
    for name in names:
        if name not in FUSION_TYPES:
            raise PassFailedException(
                f"{PASS}: option pairs: unknown chain type '{name}'; expected a comma-separated "
                f"subset of {', '.join(FUSION_TYPES)}"
            )
    return names or EMITTED_TYPES


def check_mode(mode: str) -> str:
    """`mode`, or a PassFailedException naming the accepted modes."""
    if mode not in MODES:
        raise PassFailedException(
            f"{PASS}: option mode: unknown mode '{mode}'; expected one of {', '.join(MODES)}"
        )
    return mode


def fusible_chains(module: ModuleOp, pairs: tuple[str, ...]) -> list[tuple[conv.Conv2DOp, ...]]:
    """The (first, second) convs of `module` that form chains of the types `pairs` (module doc)."""
    chains, taken = [], set()
    for function in module.ops:
        if not isinstance(function, func.FuncOp) or not function.body.blocks:
            continue
        for second in function.body.block.ops:
            if not isinstance(second, conv.Conv2DOp) or second in taken:
                continue
            first = second.input.owner
            if not isinstance(first, conv.Conv2DOp) or first in taken:
                continue
            if len(list(first.output.uses)) != 1 or chain_type(first, second) not in pairs:
                continue
            if first.algorithm is not None or second.algorithm is not None:
                continue
            if not all(_constant(v) for op in (first, second) for v in (op.weight, op.bias)):
                continue
            chains.append((first, second))
            taken.update((first, second))
    return chains


def _constant(value: SSAValue | None) -> bool:
    return value is None or isinstance(value.owner, conv.ConstantOp)


def fuse_chain(first: conv.Conv2DOp, second: conv.Conv2DOp, target: Target) -> conv.FusedOp:
    """Replace `second(first(...))` by one `conv.fused` (module doc); returns it."""
    from lowering.algorithms import fused

    inputs: list[SSAValue] = []
    for value in [*first.operands, *second.operands]:
        if value is not first.output and value not in inputs:
            inputs.append(value)
    op = conv.FusedOp(inputs, fused_region(inputs, first, second))
    op.algorithm = StringAttr(fused.NAME)
    names = [first.attributes.get(CONV_NAME), second.attributes.get(CONV_NAME)]
    if all(isinstance(name, StringAttr) for name in names):
        op.attributes[CONV_NAME] = StringAttr("+".join(name.data for name in names))
    Rewriter.insert_op(op, InsertPoint.after(second))
    second.output.replace_all_uses_with(op.output)
    Rewriter.erase_op(second)
    Rewriter.erase_op(first)
    if fused.applicable(op):
        op.schedule = fused.heuristic(op, target).to_attr()
    return op


def fusion_pays(first: conv.Conv2DOp, second: conv.Conv2DOp, target: Target) -> bool:
    """The cost model of `auto` (module doc): saved traffic > recomputed halo + idle cores."""
    from lowering.algorithms.common import ConvGeometry
    from lowering.algorithms.fused import EMITTED_TYPES, tile_rows

    kind = chain_type(first, second)
    if kind not in EMITTED_TYPES:
        return False
    intermediate = 4 * volume(tensor_shape(first.output))
    saved = 2 * intermediate / _bytes_per_cycle(intermediate, target)
    peak = 4.0 * target.vector_width
    flops = [_flops(first), _flops(second)]
    n, _, oh, _, _ = tensor_shape(second.output)
    g1 = ConvGeometry.of(first)
    rows = tile_rows(g1, ConvGeometry.of(second), target)
    halo = tensor_shape(second.weight)[2] - 1
    recomputed = flops[0] * halo / rows / peak
    tiles = n * -(-oh // rows)
    idle = max(0.0, 1.0 - tiles / target.cores) * sum(flops) / peak
    weights = 4 * volume(tensor_shape(second.weight))
    reread = (tiles - n) * weights / _bytes_per_cycle(weights, target)
    overlap = max(0, g1.kh - g1.strides[0]) * 4 * g1.input_blocks * g1.w * (g1.block or 1)
    reread += (tiles - n) * overlap / _bytes_per_cycle(4 * volume(g1.input_shape()), target)
    return saved > recomputed + idle + reread


def _bytes_per_cycle(size: int, target: Target) -> float:
    """The speed data of `size` bytes is read at: from L2 when it fits half of it, else memory."""
    return L2_BYTES_PER_CYCLE if size <= target.l2_bytes // 2 else MEMORY_BYTES_PER_CYCLE


def _flops(op: conv.Conv2DOp) -> float:
    o, per_group, kh, kw = tensor_shape(op.weight)
    n, _, oh, ow = tensor_shape(op.output)[:4]
    return 2.0 * n * o * oh * ow * per_group * kh * kw


def fuse_layers(module: ModuleOp, target: Target, mode: str = "auto", pairs: str = "") -> int:
    """Wrap the chains of `module` in `conv.fused` as `mode` and `pairs` say (module doc);
    returns how many were fused."""
    allowed = parse_pairs(pairs)
    if check_mode(mode) == "none":
        return 0
    chains = fusible_chains(module, allowed)
    if mode == "auto":
        chains = [(a, b) for a, b in chains if fusion_pays(a, b, target)]
    for first, second in chains:
        fuse_chain(first, second, target)
    return len(chains)


@dataclass(frozen=True)
class FuseLayersPass(ModulePass):
    """Wrap two-conv chains in `conv.fused` where `mode` says (see module doc)."""

    name = PASS

    mode: str = "auto"
    pairs: str = ""
    target: str = "host"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        check_mode(self.mode)
        parse_pairs(self.pairs)
        fuse_layers(op, parse_target(self.target, PASS), self.mode, self.pairs)
