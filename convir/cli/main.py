"""`convir`: the user-facing command line.

    convir import MODEL.onnx [-o OUT.mlir] [--batch N] [--keep-weights]
    convir compile MODEL.onnx [--emit STAGE | --dump-after PASS] [--target T] [-o OUT]
    convir run MODEL.onnx [--input NAME=FILE.npy] [--threads N] [--compare ort]
        both also: [--algorithm CONV=ALGORITHM]... [--tile CONV:KNOB=VALUE,...]...
                   [--winograd-tolerance ERROR]
                   [--workspace-budget BYTES]
    convir demo [--model NAME] [--size S]
    convir bench peak|layers|models [--threads N] [--repeat N] [--json FILE] [--plot FILE.png]
    convir tune MODEL [--db PATH] [--threads 1,2] [--budget 10m] [--algorithms A,B] [--retune]
    convir explain MODEL [--tuning-db PATH] [--threads N] [--json FILE] [--plot FILE.png]
    compile, run, bench models and explain take --tuning-db PATH [--nearest-target]

Every user error (unreadable file, malformed or unsupported model, bad option) prints one line on
stderr and exits with status 1; usage errors (an unknown option, a bad option value) print one
line too and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from convir.cli.bench import add_bench_command
from convir.cli.demo import add_demo_command
from convir.cli.errors import UserError
from convir.cli.native import add_native_commands
from convir.cli.tune import add_explain_command, add_tune_command


def _import_command(args: argparse.Namespace) -> None:
    from convir.dialects import make_context, module_to_text
    from convir.importer.onnx import import_onnx

    ctx = make_context(elide_weights=not args.keep_weights)
    module = import_onnx(args.model, batch=args.batch, ctx=ctx)
    text = module_to_text(module, ctx)
    if args.output:
        try:
            with open(args.output, "w") as file:
                file.write(text)
        except OSError as error:
            raise UserError(f"cannot write '{args.output}': {error.strerror}") from None
    else:
        sys.stdout.write(text)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    return value


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line naming the option, not the usage
    block; subcommand parsers inherit the class (argparse makes them with the parent's type)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"convir: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `convir` with all its subcommands."""
    parser = _OneLineParser(
        prog="convir",
        description="convir: a convolution compiler for CPUs (ONNX in, native code out).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    imp = commands.add_parser(
        "import",
        help="import an ONNX model and print it as conv-dialect IR",
        description="Import an ONNX model and print it as conv-dialect IR. Weights are printed "
        "as dense_resource handles; --keep-weights adds their blobs so the IR can be executed.",
    )
    imp.add_argument("model", help="path to an .onnx file")
    imp.add_argument("-o", "--output", help="write the IR here instead of stdout")
    imp.add_argument(
        "--batch", type=_positive, default=None, help="batch size (default: the model's, else 1)"
    )
    imp.add_argument(
        "--keep-weights",
        action="store_true",
        help="print the weight blobs in a dialect_resources section",
    )
    imp.set_defaults(run=_import_command)

    add_native_commands(commands, _positive)
    add_demo_command(commands, _positive)
    add_bench_command(commands, _positive)
    add_tune_command(commands, _positive)
    add_explain_command(commands, _positive)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `convir`."""
    args = build_parser().parse_args(argv)
    from xdsl.utils.exceptions import PassFailedException

    from convir.importer.onnx import OnnxImportError

    try:
        args.run(args)
    except (UserError, OnnxImportError, PassFailedException) as error:
        print(f"convir: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
