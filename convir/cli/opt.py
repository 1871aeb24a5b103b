"""`convir-opt`: xdsl-opt with the conv dialect and convir's passes.

Same flags as `xdsl-opt` (`-p` pipelines with options, `--split-input-file`,
`--verify-diagnostics`, `--print-op-generic`, ...), plus `--elide-weights`. The builtin dialect's
resource store holds `dense_resource` blobs as numpy arrays (`convir.dialects.resources`), and
blobs present in the input are printed back unless `--elide-weights` is given.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from xdsl.universe import Universe
from xdsl.utils.exceptions import DiagnosticException, ParseError, PassFailedException
from xdsl.xdsl_opt_main import xDSLOptMain

from convir.dialects.resources import builtin_with_resources


class ConvirOptMain(xDSLOptMain):
    """The xDSL optimiser driver with convir's dialects and passes registered."""

    version_format = "convir-opt built on xdsl {xdsl_version}"

    def __init__(self, args: Sequence[str] | None = None) -> None:
        super().__init__(description="convir's modular optimiser driver", args=args)

    def register_all_dialects(self) -> None:
        from convir.dialects.conv import Conv

        for name, factory in Universe.get_multiverse().all_dialects.items():
            if name == "builtin":
                factory = self._builtin
            self.ctx.register_dialect(name, factory)
        self.ctx.register_dialect("conv", lambda: Conv)

    def _builtin(self):
        return builtin_with_resources(elide=self.args.elide_weights)

    def register_all_passes(self) -> None:
        super().register_all_passes()
        from lowering import LOWERING_PASSES
        from passes import CONV_PASSES

        for name, factory in {**CONV_PASSES, **LOWERING_PASSES}.items():
            self.register_pass(name, factory)

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser) -> None:
        # xDSL builds the parser itself; its usage errors become one line, as convir's do.
        arg_parser.prog = "convir-opt"
        arg_parser.error = _usage_error  # type: ignore[method-assign]
        super().register_all_arguments(arg_parser)
        arg_parser.add_argument(
            "--elide-weights",
            action="store_true",
            help="print dense_resource handles without their blobs (the dialect_resources section)",
        )


def _usage_error(message: str) -> NoReturn:
    """A usage error of convir-opt: one line on stderr, status 2 (argparse's convention)."""
    print(f"convir-opt: error: {message} (see 'convir-opt --help')", file=sys.stderr)
    sys.exit(2)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `convir-opt`; errors print to stderr and exit 1, with no traceback."""
    try:
        ConvirOptMain(argv).run()
    except (DiagnosticException, ParseError, PassFailedException, ValueError) as error:
        print(f"convir-opt: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"convir-opt: error: '{error.filename}': {error.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
