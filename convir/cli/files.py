"""Where the command line writes its text output."""

from __future__ import annotations

import sys

from convir.cli.errors import UserError


def write_text(text: str, path: str | None) -> None:
    """Write `text` to the file `path`, or to stdout when `path` is None."""
    if path is None:
        sys.stdout.write(text)
        return
    try:
        with open(path, "w") as file:
            file.write(text)
    except OSError as error:
        raise UserError(f"cannot write '{path}': {error.strerror}") from None
