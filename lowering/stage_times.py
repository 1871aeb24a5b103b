"""Where a compile spends its time: wall seconds per pipeline stage (`convir bench compile`).

The pipeline marks its stages with `stage(name)`; nothing is measured unless a caller records
(`with recording() as times: convir.compile(...)`), and then each stage's time is exclusive: a
stage entered inside another (a kernel's emission inside `convert-conv-to-loops`) is not counted
twice. Work done in another process (the code generator) is reported with `add`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class StageTimes:
    """Wall seconds, CPU seconds (of the process that ran the stage: on a loaded machine they
    vary far less than wall time) and number of entries per stage, in the order the stages
    were first entered."""

    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, seconds: float, cpu_seconds: float, count: int = 1) -> None:
        """Count `seconds`, `cpu_seconds` (and `count` entries) towards stage `name`."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + cpu_seconds
        self.counts[name] = self.counts.get(name, 0) + count


_recording: StageTimes | None = None
#: The open stages, innermost last: [name, start, CPU start, wall and CPU seconds spent in
#: nested stages].
_open: list[list] = []


@contextmanager
def recording() -> Iterator[StageTimes]:
    """Record the stages run inside the block (in this thread's process) into a new StageTimes."""
    global _recording
    outer = _recording
    _recording = StageTimes()
    try:
        yield _recording
    finally:
        _recording = outer


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as stage `name` (minus the stages nested in it) while recording."""
    if _recording is None:
        yield
        return
    entry = [name, time.perf_counter(), time.process_time(), 0.0, 0.0]
    _open.append(entry)
    try:
        yield
    finally:
        _open.pop()
        elapsed = time.perf_counter() - entry[1]
        cpu = time.process_time() - entry[2]
        if _recording is not None:
            _recording.add(name, elapsed - entry[3], cpu - entry[4])
        if _open:
            _open[-1][3] += elapsed
            _open[-1][4] += cpu


def add(name: str, seconds: float, cpu_seconds: float, count: int = 1) -> None:
    """Count seconds spent elsewhere (another process) towards stage `name`, while recording;
    they are not subtracted from an enclosing stage (its wall time includes the wait)."""
    if _recording is not None:
        _recording.add(name, seconds, cpu_seconds, count)


def recording_active() -> bool:
    """Whether stages are being recorded (a caller may then ask a worker for its times)."""
    return _recording is not None
