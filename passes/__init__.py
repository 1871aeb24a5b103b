"""Graph passes: conv dialect -> conv dialect, one pass per file (DESIGN §1).

`CONV_PASSES` maps each pass name to a factory returning its class, as `xDSLOptMain` expects.
"""

from collections.abc import Callable

from xdsl.passes import ModulePass


def _plan_memory() -> type[ModulePass]:
    from passes.plan_memory import PlanMemoryPass

    return PlanMemoryPass


def _select_algorithm() -> type[ModulePass]:
    from passes.select_algorithm import SelectAlgorithmPass

    return SelectAlgorithmPass


CONV_PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "conv-plan-memory": _plan_memory,
    "conv-select-algorithm": _select_algorithm,
}
