"""Measuring the candidates of one workload in a killable process (DESIGN §8).

`measure_workload` runs `python -m convir.tuning.worker` (which compiles every candidate, then
checks and times them one at a time: see its module doc) and follows its events. The worker is
given at most

- `COMPILE_TIMEOUT_S` between two events while it compiles, and
- while it times a candidate, `TIMING_FLOOR_S` + `TIMING_FACTOR` × (the samples it may take +
  calibration) × max(best median so far, 2 ms), or `FIRST_TIMING_TIMEOUT_S` before any candidate
  has a time: a timeout relative to the best so far.

When it hangs past that or dies (a crash in generated code, LLVM, anywhere), the candidate it
was busy with is recorded as `failed` with the reason (the signal or exit status and the last
line of its stderr), and a new worker continues with the candidates not measured yet (their
compiled objects come from the cache).
A `deadline` (time.monotonic) stops the measurement: what is left is `skipped`.

`confirm_speedup` re-times the heuristic's choice and the fastest other candidate alternately in
a fresh worker (their objects come from the cache) and returns the challenger's speed-up, which
the tuner requires to be at least `tuner.WIN_MARGIN` before it records a winner other than the
heuristic's choice.

The worker is killed however `measure_workload` ends (an exception, Ctrl-C), and on Linux also
when the tuner itself is killed (SIGKILL: the kernel's parent-death signal), so no orphan keeps
timing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from convir.bench.timing import MIN_SAMPLE_S
from convir.target import Target
from convir.tuning.database import CandidateResult
from convir.tuning.space import Candidate
from convir.tuning.workloads import Workload

COMPILE_TIMEOUT_S = 300.0
FIRST_TIMING_TIMEOUT_S = 120.0
TIMING_FLOOR_S = 5.0
TIMING_FACTOR = 10.0
#: Samples per candidate (the median is its time).
REPEATS = 7

#: Alternating rounds of `confirm_speedup` (one sample of each candidate per round).
CONFIRM_ROUNDS = 9

#: Called after each candidate's result: (candidate index, its result).
Progress = Callable[[int, CandidateResult], None]


def measure_workload(
    workload: Workload,
    candidates: Sequence[Candidate],
    *,
    threads: int,
    target: Target,
    repeats: int = REPEATS,
    deadline: float | None = None,
    on_result: Progress = lambda index, result: None,
    faults: Mapping[int, str] | None = None,
) -> list[CandidateResult]:
    """One result per candidate, in order (module doc). `faults` is the test hook of
    `convir.tuning.worker` (candidate index -> "crash", "hang" or "wrong")."""
    results: dict[int, CandidateResult] = {}
    workspaces: dict[int, int] = {}
    best_s: float | None = None
    while len(results) < len(candidates):
        remaining = [i for i in range(len(candidates)) if i not in results]
        if deadline is not None and time.monotonic() >= deadline:
            for index in remaining:
                results[index] = _result(candidates[index], "skipped", message="time budget")
            break
        request = {
            "workload": workload.to_json(),
            "candidates": [_spec(candidates[i]) for i in remaining],
            "threads": threads,
            "target": dataclasses.asdict(target),
            "best_s": best_s,
            "repeats": repeats,
            "faults": {
                str(position): (faults or {})[i]
                for position, i in enumerate(remaining)
                if i in (faults or {})
            },
        }
        with _Worker(request) as worker:
            busy, timing = None, False
            while True:
                timeout = _timeout(timing, best_s, repeats)
                if deadline is not None:
                    timeout = max(0.0, min(timeout, deadline - time.monotonic()))
                event = worker.next_event(timeout)
                if event is None or event["event"] == "exit":
                    if deadline is not None and time.monotonic() >= deadline and event is None:
                        break  # the budget ran out: the rest is skipped above
                    why = worker.failure(event, timeout)
                    if busy is not None:
                        failed = _result(candidates[busy], "failed", message=why)
                        results[busy] = failed
                        on_result(busy, failed)
                    else:  # died before saying what it was doing: nothing left to blame
                        for index in remaining:
                            results.setdefault(
                                index, _result(candidates[index], "failed", message=why)
                            )
                    break
                index = remaining[event["index"]] if "index" in event else None
                kind = event["event"]
                if kind == "done":
                    for index in remaining:  # compiled nothing more to time
                        results.setdefault(
                            index, _result(candidates[index], "failed", message="not compiled")
                        )
                    break
                if kind in ("compiling", "timing"):
                    busy, timing = index, kind == "timing"
                elif kind == "compiled":  # the worker is still busy with the last "compiling"
                    workspaces[index] = event["workspace_bytes"]
                elif kind in ("failed", "result"):
                    fields = {
                        k: v for k, v in event.items() if k not in ("event", "index", "stage")
                    }
                    status = fields.pop("status", "failed")
                    fields.setdefault("workspace_bytes", workspaces.get(index))
                    results[index] = _result(candidates[index], status, **fields)
                    on_result(index, results[index])
                    if status == "ok" and (best_s is None or fields["median_s"] < best_s):
                        best_s = fields["median_s"]
                    busy = None
    return [results[i] for i in range(len(candidates))]


def confirm_speedup(
    workload: Workload,
    heuristic: Candidate,
    challenger: Candidate,
    *,
    threads: int,
    target: Target,
    rounds: int = CONFIRM_ROUNDS,
) -> float | None:
    """Heuristic time / challenger time, timed alternately (module doc); None when the worker
    failed, hung or could not run both."""
    request = {
        "workload": workload.to_json(),
        "candidates": [_spec(heuristic), _spec(challenger)],
        "threads": threads,
        "target": dataclasses.asdict(target),
        "confirm": rounds,
    }
    with _Worker(request) as worker:
        while True:
            event = worker.next_event(COMPILE_TIMEOUT_S)
            if event is None or event["event"] in ("exit", "done"):
                return None
            if event["event"] == "confirmed":
                return event["speedup"]


def _spec(candidate: Candidate) -> dict:
    return {"algorithm": candidate.algorithm, "schedule": candidate.schedule}


def _result(candidate: Candidate, status: str, **fields) -> CandidateResult:
    return CandidateResult(candidate.algorithm, candidate.schedule, status, **fields)


def _timeout(timing: bool, best_s: float | None, repeats: int) -> float:
    """Seconds the worker may stay silent (module doc)."""
    if not timing:
        return COMPILE_TIMEOUT_S
    if best_s is None:
        return FIRST_TIMING_TIMEOUT_S
    calls = repeats + 3  # the samples, and calibration's warm-up and look
    return TIMING_FLOOR_S + TIMING_FACTOR * calls * max(best_s, MIN_SAMPLE_S)


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGKILL it when its parent dies."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


class _Worker:
    """One `python -m convir.tuning.worker` process fed `request`, read event by event."""

    def __init__(self, request: dict) -> None:
        env = dict(os.environ)
        source_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, env.get("PYTHONPATH")]))
        self._stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in __exit__)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "convir.tuning.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request).encode())
        self.process.stdin.close()
        self._stdout = self.process.stdout
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._stdout, selectors.EVENT_READ)
        self._buffer = b""

    def __enter__(self) -> _Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._selector.close()
        self._stdout.close()
        self._stderr.close()

    def next_event(self, timeout_s: float) -> dict | None:
        """The next event; {"event": "exit"} when the worker ended without one; None when it
        was silent for `timeout_s`."""
        end = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            left = end - time.monotonic()
            if left <= 0 or not self._selector.select(left):
                return None
            chunk = os.read(self._stdout.fileno(), 1 << 16)
            if not chunk:
                return {"event": "exit"}
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def failure(self, event: dict | None, timeout_s: float) -> str:
        """Why the worker stopped: a timeout, a signal or an exit status, and its last words."""
        if event is None:
            self.process.kill()
            self.process.wait()
            return f"timed out after {timeout_s:.1f} s"
        code = self.process.wait()
        why = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        self._stderr.seek(0)
        lines = [line for line in self._stderr.read().splitlines() if line.strip()]
        return why + (f": {lines[-1][:300]}" if lines else "")
