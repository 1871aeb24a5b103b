"""`conv-select-algorithm`: give every `conv.conv2d` an algorithm and a schedule.

Expects graph-form IR. For each conv without an `algorithm`, picks the first applicable one of
`lowering.algorithms.ALGORITHMS` (today only `direct`, which needs constant weights) and writes
its heuristic schedule for the target. A conv whose `algorithm` (and `schedule`) is already set,
by hand in a `.mlir` file or by a tuner, is left as it is; its schedule is only validated.
Nothing else changes. Option: `target` — `host` (default) or a preset name of `convir.target`.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from convir.dialects import conv
from convir.target import Target


def select_algorithm(op: conv.Conv2DOp, target: Target) -> None:
    """Set `op`'s algorithm and schedule unless they are already pinned."""
    from lowering.algorithms import ALGORITHMS

    if op.algorithm is not None:
        name = op.algorithm.data
        if name not in ALGORITHMS:
            known = ", ".join(ALGORITHMS)
            raise PassFailedException(
                f"'{op.name}' algorithm '{name}' is unknown; expected {known}"
            )
        try:
            ALGORITHMS[name].SCHEDULE.from_attr(op.schedule)
        except ValueError as error:
            raise PassFailedException(f"'{op.name}': {error}") from None
        return
    for name, algorithm in ALGORITHMS.items():
        if algorithm.applicable(op):
            schedule = algorithm.heuristic(op, target)
            op.algorithm = StringAttr(name)
            op.schedule = schedule.to_attr()
            return
    raise PassFailedException(
        f"'{op.name}': no algorithm applies (the direct algorithm needs constant weights and bias)"
    )


@dataclass(frozen=True)
class SelectAlgorithmPass(ModulePass):
    """Pick an algorithm and a heuristic schedule for every unpinned conv (see module doc)."""

    name = "conv-select-algorithm"

    target: str = "host"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        try:
            target = Target.host() if self.target == "host" else Target.preset(self.target)
        except ValueError as error:
            raise PassFailedException(f"conv-select-algorithm: option target: {error}") from None
        select_algorithms(op, target)


def select_algorithms(module: ModuleOp, target: Target) -> None:
    """`select_algorithm` on every conv of `module`."""
    for op in module.walk():
        if isinstance(op, conv.Conv2DOp):
            select_algorithm(op, target)
