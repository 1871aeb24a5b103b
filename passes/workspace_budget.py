"""The workspace budget of `conv-select-algorithm`: its syntax, and the schedule of an algorithm
that keeps a conv's workspace within it (DESIGN §7).

A budget is a byte count with an optional binary suffix: `65536`, `64KiB`, `1MiB`, `2GiB` (also
`B`, and `K`/`M`/`G` for the same powers of 1024; case does not matter). A conv's workspace under
an algorithm is what the algorithm's emitter asks for (`workspace_bytes`, the scratch the arena
holds for that conv while it runs) at the heuristic's schedule, or, when that does not fit, at
the first of the algorithm's `candidates` that does (its search space: smaller blocks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from convir.dialects.conv import Conv2DOp
from convir.target import Target
from lowering.algorithms.common import Schedule

#: Binary suffixes of a byte count, lower case.
_SUFFIXES = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20}
_SUFFIXES |= {"g": 1 << 30, "gib": 1 << 30}
_BYTES = re.compile(r"\s*(\d+)\s*([a-z]*)\s*")


def parse_bytes(text: str) -> int:
    """`64KiB` -> 65536; ValueError saying what is accepted."""
    match = _BYTES.fullmatch(text.lower())
    if match is None or match.group(2) not in _SUFFIXES:
        raise ValueError(
            f"'{text}' is not a byte count; expected an integer with an optional suffix "
            "B, KiB, MiB or GiB (e.g. 65536, 64KiB, 1MiB)"
        )
    return int(match.group(1)) * _SUFFIXES[match.group(2)]


def budget_argument(budget: int | str | None) -> int | None:
    """A `workspace_budget` argument of `convir.compile`/`lower` (bytes, or text such as "64KiB")
    in bytes; None stays None; ValueError naming the argument when it is not a byte count."""
    if budget is None:
        return None
    if isinstance(budget, str):
        try:
            return parse_bytes(budget)
        except ValueError as error:
            raise ValueError(f"workspace_budget: {error}") from None
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise ValueError(f"workspace_budget: expected a byte count >= 0, got {budget!r}")
    return budget


def format_bytes(size: int) -> str:
    """A byte count for messages: `98304 bytes (96 KiB)`."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size} bytes ({size / scale:.4g} {unit})"
    return f"{size} bytes"


def workspace_bytes(op: Conv2DOp, algorithm: str, schedule: Schedule) -> int:
    """The workspace `op` needs when run by `algorithm` at `schedule`.

    The emitters read the algorithm and schedule from the op, so both are set for the question
    and put back after it.
    """
    from xdsl.dialects.builtin import StringAttr

    from lowering.algorithms import conv_emitter

    saved = {key: op.properties.get(key) for key in ("algorithm", "schedule")}
    op.algorithm, op.schedule = StringAttr(algorithm), schedule.to_attr()
    try:
        return conv_emitter(op).workspace_bytes(op)
    finally:
        for key, value in saved.items():
            if value is None:
                op.properties.pop(key, None)
            else:
                op.properties[key] = value


@dataclass(frozen=True)
class Fit:
    """An algorithm's answer to a budget: the schedule that fits (None: none does), whether it
    is the heuristic's own, and the smallest workspace the algorithm offers."""

    schedule: Schedule | None
    heuristic: bool
    smallest_bytes: int


def fit(op: Conv2DOp, algorithm, target: Target, budget: int) -> Fit:
    """The heuristic's schedule of `algorithm` (a module of ALGORITHMS) if its workspace fits
    `budget`, else its first candidate that fits."""
    first = algorithm.heuristic(op, target)
    schedules = [first, *getattr(algorithm, "candidates", lambda *_: [])(op, target)]
    sizes = {}
    for schedule in dict.fromkeys(schedules):
        sizes[schedule] = workspace_bytes(op, algorithm.NAME, schedule)
        if sizes[schedule] <= budget:
            return Fit(schedule, schedule == first, sizes[schedule])
    return Fit(None, False, min(sizes.values()))
