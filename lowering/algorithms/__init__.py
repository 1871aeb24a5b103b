"""Convolution algorithms, one module each (DESIGN §5).

Each module has: `NAME`; an applicability predicate `applicable(op)`; a frozen schedule
dataclass `SCHEDULE` with `to_attr`/`from_attr`; `heuristic(op, target)` choosing a schedule
for a `convir.target.Target`; `candidates(op, target)`, the schedules a search tries (the
heuristic's first); `tolerance(schedule)`, the largest max |y - y64| / max |y64| against the
float64 reference a tuner accepts from that schedule; and an emitter implementing
`lowering.kernels.KernelEmitter`. The GEMM-based ones (`gemm1x1`, `im2col`, `winograd`) run on
the microkernel of `lowering.microkernel`. `ALGORITHMS` lists the modules by name.
"""

from __future__ import annotations

from types import ModuleType

from convir.dialects import conv
from lowering.algorithms import depthwise, direct, fused, gemm1x1, im2col, im2win, winograd
from lowering.kernels import KernelEmitter

#: In order of preference: selection takes the first applicable one (direct applies to every
#: conv with constant weights, so the GEMM algorithms run only when pinned or chosen otherwise).
#: im2win comes last: it runs where pinned, until measurements place it in the heuristic.
ALGORITHMS: dict[str, ModuleType] = {
    depthwise.NAME: depthwise,
    direct.NAME: direct,
    gemm1x1.NAME: gemm1x1,
    im2col.NAME: im2col,
    winograd.NAME: winograd,
    im2win.NAME: im2win,
}
_EMITTERS: dict[str, KernelEmitter] = {
    depthwise.NAME: depthwise.DepthwiseEmitter(),
    direct.NAME: direct.DirectEmitter(),
    gemm1x1.NAME: gemm1x1.Gemm1x1Emitter(),
    im2col.NAME: im2col.Im2colEmitter(),
    winograd.NAME: winograd.WinogradEmitter(),
    im2win.NAME: im2win.Im2winEmitter(),
    # Not in ALGORITHMS: it runs `conv.fused` chains (`passes.fuse_layers`), never one conv.
    fused.NAME: fused.FusedEmitter(),
}


def conv_emitter(op: conv.Conv2DOp | conv.FusedOp) -> KernelEmitter:
    """The emitter of the algorithm `op` is scheduled with (its `algorithm` attribute)."""
    if op.algorithm is None:
        raise ValueError(
            f"'{op.name}' has no algorithm; run conv-select-algorithm first "
            f"(or set algorithm to one of {', '.join(ALGORITHMS)})"
        )
    name = op.algorithm.data
    known = [fused.NAME] if isinstance(op, conv.FusedOp) else list(ALGORITHMS)
    if name not in known:
        raise ValueError(
            f"'{op.name}' algorithm '{name}' is unknown; expected one of {', '.join(known)}"
        )
    return _EMITTERS[name]
