"""Tuned choices for the passes: what `conv-select-algorithm` and `conv-tile` ask a database.

`TuningRecords(database, target, threads, nearest)` answers `choice(op)` for a conv on NCHWc:
the recorded winner for the op's workload (`workloads.workload_of`) on this target at `threads`
threads with this convir version, or, with `nearest`, one of a compatible target (same ISA
class: `database.isa_class`), whose choice's source is then "tuned-nearest (<cpu>)". When this
convir cannot run the winner any more (its algorithm no longer exists or applies, or a knob of its
schedule is gone), the fastest measured candidate it can run serves instead; when none can, the
heuristic stands. A knob added since the tune takes its default, which by the schedules'
convention is the behaviour before the knob existed (e.g. gemm1x1's `chunk_blocks`: the whole
depth). Every conv a record served is noted in `used`, so a caller can
report that records of another target were used.

The passes import this module only when given a `tuning-db` (the dependency rule of DESIGN §2
puts `convir.tuning` above the passes; the import is lazy and one-way at run time).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, i64

from convir.dialects import conv
from convir.target import Target
from convir.tuning.database import Record, TuningDatabase
from convir.tuning.workloads import workload_of


@dataclass(frozen=True)
class TunedChoice:
    """A record made usable: algorithm, schedule attribute and source."""

    algorithm: str
    schedule: DictionaryAttr
    source: str
    record: Record


@dataclass
class TuningRecords:
    """Look-ups of one database for one target and thread count (module doc)."""

    database: TuningDatabase
    target: Target
    threads: int
    nearest: bool = False
    #: (conv name, source) of every conv a record served.
    used: list[tuple[str, str]] = field(default_factory=list)

    def choice(self, op: conv.Conv2DOp) -> TunedChoice | None:
        """The tuned choice for `op`, or None (module doc)."""
        workload = workload_of(op)
        if workload is None:
            return None
        record = self.database.lookup(self.target, self.threads, workload.key, nearest=self.nearest)
        if record is None:
            return None
        ranked = [(record.algorithm, record.schedule)]
        ranked += [(c.algorithm, c.schedule) for c in record.ranked]
        for name, knobs in ranked:
            schedule = _runnable(op, name, knobs)
            if schedule is not None:
                source = f"tuned-nearest ({record.target_cpu})" if record.nearest else "tuned"
                conv_name = op.attributes.get("convir.name")
                self.used.append((conv_name.data if conv_name is not None else "?", source))
                return TunedChoice(name, schedule, source, record)
        return None


def _runnable(op: conv.Conv2DOp, name: str, knobs: dict[str, int]) -> DictionaryAttr | None:
    """The schedule attribute of a measured candidate, if this convir can run it on `op`."""
    from lowering.algorithms import ALGORITHMS

    algorithm = ALGORITHMS.get(name)
    if algorithm is None or not algorithm.applicable(op):
        return None
    attr = DictionaryAttr({k: IntegerAttr(v, i64) for k, v in knobs.items()})
    try:  # a knob gone since the tune is an error; one added since takes its default
        return algorithm.SCHEDULE.from_attr(attr).to_attr()
    except (ValueError, TypeError):
        return None


def open_records(
    path: str, target: Target, threads: int | None, nearest: bool = False
) -> TuningRecords:
    """`TuningRecords` of the database at `path` ("" or "default": the default location);
    `threads` None means all of the target's cores, as a compiled model runs by default."""
    database = TuningDatabase(None if path in ("", "default") else path, create=False)
    return TuningRecords(database, target, threads or target.cores, nearest)
