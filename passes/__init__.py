"""Graph passes: conv dialect -> conv dialect, one pass per file (DESIGN §1).

`CONV_PASSES` maps each pass name to a factory returning its class, as `xDSLOptMain` expects.
"""

from collections.abc import Callable

from xdsl.passes import ModulePass

CONV_PASSES: dict[str, Callable[[], type[ModulePass]]] = {}
