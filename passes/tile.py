"""`conv-tile`: fill the schedule of every conv that has an algorithm.

Expects the output of `conv-select-algorithm` (any conv without an `algorithm` is left alone).
For each conv with one, every knob of the algorithm's schedule gets its value from, first to last:

1. an entry of the `tiles` option naming the conv;
2. the knob already in the conv's `schedule`, pinned by hand in a `.mlir` file or by a tuner
   (conv-select-algorithm pins a tuned record's whole schedule);
3. with a `tuning-db`, a record of the database for the conv's workload, when its algorithm is
   the conv's (`convir.tuning.records`);
4. the algorithm's heuristic for the target, `ALGORITHMS[name].heuristic(op, target)`, which reads
   the target's vector registers, cache sizes and cores; winograd's also reads the
   `winograd-tolerance` option, so that the m it picks is accurate enough
   (`lowering.algorithms.winograd_error`). A pinned m (1 to 3 above) is kept whatever its error.

A conv without a `convir.choice` attribute gets one: `tuned` when a record gave its schedule,
`pinned` when the IR had one, else `heuristic` (see conv-select-algorithm).

The merged schedule is validated by the algorithm's schedule class (`from_attr`: known knobs,
integers >= 1) and written back whole, in the class's knob order. Nothing else changes, except
that a conv without a `convir.name` is given one (`convir.dialects.conv_names`), as
`conv-select-algorithm` does.

Options:
- `target`: `host` (default) or a preset of `convir.target`.
- `tuning-db`, `threads`, `nearest-target`: the tuning database and how to read it, as for
  conv-select-algorithm.
- `tiles`: knobs pinned per conv, `CONV:KNOB=VALUE[,KNOB=VALUE...][;CONV:...]` with CONV a conv's
  `convir.name` or `onnx.name` (syntax: `passes.conv_overrides`), e.g.
  `conv-tile{tiles="conv_3:ow_block=4,oc_blocks=2;conv_5:ow_block=2"}`.
- `winograd-tolerance`: the largest expected relative error of the m winograd's heuristic may
  pick (default 1e-4; see `lowering.algorithms.winograd_error` for the measured table), e.g.
  `conv-tile{winograd-tolerance=1e-5}`.

Errors (PassFailedException naming the conv or the option): a key that names no conv, a conv
named in `tiles` without an algorithm, an unknown algorithm, a knob the algorithm does not have,
a knob < 1, a `winograd-tolerance` that is not a finite number >= 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import ModuleType
from typing import TYPE_CHECKING

from xdsl.context import Context
from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, ModuleOp, StringAttr, i64
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from convir.dialects.conv import Conv2DOp
from convir.dialects.conv_names import name_convs
from convir.target import Target
from passes.conv_overrides import (
    WINOGRAD_TOLERANCE,
    describe,
    format_tile,
    parse_target,
    parse_tiles,
    parse_tolerance_option,
    resolve,
)
from passes.select_algorithm import CHOICE_ATTRIBUTE, tuning_records

if TYPE_CHECKING:
    from convir.tuning.records import TuningRecords

PASS = "conv-tile"


def tile_conv(
    op: Conv2DOp,
    target: Target,
    knobs: Mapping[str, int] | None = None,
    winograd_tolerance: float | None = None,
) -> None:
    """Fill `op`'s schedule: `knobs`, then knobs pinned in the IR, then the heuristic
    (winograd's within `winograd_tolerance`, default `winograd_error.DEFAULT_TOLERANCE`)."""
    algorithm = _algorithm(op)
    pinned = dict(op.schedule.data) if op.schedule is not None else {}
    given = {knob: IntegerAttr(value, i64) for knob, value in (knobs or {}).items()}
    if algorithm.NAME == "winograd" and winograd_tolerance is not None:
        heuristic = algorithm.heuristic(op, target, winograd_tolerance)
    else:
        heuristic = algorithm.heuristic(op, target)
    merged = {**heuristic.to_attr().data, **pinned, **given}
    try:
        schedule = algorithm.SCHEDULE.from_attr(DictionaryAttr(merged))
    except ValueError as error:
        raise PassFailedException(f"{PASS}: {describe(op)}: {error}") from None
    op.schedule = schedule.to_attr()


def tile_convs(
    module: ModuleOp,
    target: Target,
    tiles: Mapping[str, Mapping[str, int]] | None = None,
    *,
    winograd_tolerance: float | None = None,
    records: TuningRecords | None = None,
) -> None:
    """`tile_conv` on every conv of `module` with an algorithm; `tiles` maps conv keys to the
    knobs pinned on that conv; `records` gives tuned schedules (module doc)."""
    tiles = tiles or {}
    convs = name_convs(module)
    entries = {key: format_tile(key, knobs) for key, knobs in tiles.items()}
    pinned = {op: key for key, op in resolve(convs, entries, f"{PASS}: tiles").items()}
    for op in convs:
        key = pinned.get(op)
        if op.algorithm is None and key is None:
            continue
        source = "pinned" if op.schedule is not None else "heuristic"
        if key is not None:
            _check_knobs(op, entries[key], tiles[key])
            tile_conv(op, target, tiles[key], winograd_tolerance)
        elif op.schedule is None and (tuned := _tuned(op, records)) is not None:
            op.schedule = tuned.schedule
            source = tuned.source
            tile_conv(op, target, winograd_tolerance=winograd_tolerance)
        else:
            tile_conv(op, target, winograd_tolerance=winograd_tolerance)
        if CHOICE_ATTRIBUTE not in op.attributes:
            op.attributes[CHOICE_ATTRIBUTE] = StringAttr(source)


def _tuned(op: Conv2DOp, records: TuningRecords | None):
    """The record's choice for `op` when it is for the conv's algorithm."""
    if records is None:
        return None
    tuned = records.choice(op)
    if tuned is None or op.algorithm is None or tuned.algorithm != op.algorithm.data:
        return None
    return tuned


@dataclass(frozen=True)
class TilePass(ModulePass):
    """Fill every scheduled conv's knobs: options, pinned knobs, heuristic (see module doc)."""

    name = PASS

    target: str = "host"
    tiles: str = ""
    # A string as well: xDSL's option parser reads 1e-4 as a string, 0.001 as a float.
    winograd_tolerance: str | float | int = WINOGRAD_TOLERANCE
    tuning_db: str = ""
    threads: int = 0
    nearest_target: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        try:
            tiles = parse_tiles(self.tiles)
        except ValueError as error:
            raise PassFailedException(f"{PASS}: option tiles: {error}") from None
        tolerance = parse_tolerance_option(self.winograd_tolerance, PASS)
        target = parse_target(self.target, PASS)
        records = tuning_records(PASS, self.tuning_db, target, self.threads, self.nearest_target)
        tile_convs(op, target, tiles, winograd_tolerance=tolerance, records=records)


def _algorithm(op: Conv2DOp) -> ModuleType:
    from lowering.algorithms import ALGORITHMS

    if op.algorithm is None:
        raise PassFailedException(
            f"{PASS}: {describe(op)} has no algorithm; run conv-select-algorithm first"
        )
    name = op.algorithm.data
    if name not in ALGORITHMS:
        raise PassFailedException(
            f"{PASS}: {describe(op)}: algorithm '{name}' is unknown; expected one of "
            f"{', '.join(ALGORITHMS)}"
        )
    return ALGORITHMS[name]


def _check_knobs(op: Conv2DOp, entry: str, knobs: Mapping[str, int]) -> None:
    """Name the option entry when it gives a knob the conv's algorithm does not have."""
    algorithm = _algorithm(op)
    known = [field.name for field in fields(algorithm.SCHEDULE)]
    for knob in knobs:
        if knob not in known:
            raise PassFailedException(
                f"{PASS}: tiles '{entry}': {describe(op)} runs {algorithm.NAME}, which has no "
                f"knob '{knob}'; its knobs: {', '.join(known)}"
            )
