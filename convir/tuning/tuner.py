"""Tuning a model: every distinct conv workload × thread count, measured and recorded.

`tune_model` lists the model's workloads (`workloads.model_workloads`), largest total FLOPs
first so that a short budget goes where the time is, and for each thread count skips those the
database already holds complete for this target and convir version (resume; `retune` measures
them again). The database is looked at again just before a workload starts, so two tuners on
one file mostly split the work instead of doing it twice; if both do measure a workload, the
later record replaces the earlier whole, and nothing is lost. Each workload's candidates
(`space.search_space`) are measured by `measure.measure_workload` and recorded in one
transaction, so a tuner stopped by Ctrl-C or SIGKILL loses at most the workload in progress.

The budget (seconds of wall time) is honoured: no workload starts after it, and the one in
progress stops starting candidates when it runs out; its record is then marked incomplete (the
heuristic is always measured first, so even a partial record never picks a slower choice than
the heuristic as measured) and the next run tunes it again.

A candidate other than the heuristic's choice wins only when it is confirmed: timed again
alternately with the heuristic's choice (`measure.confirm_speedup`), it must be at least
`WIN_MARGIN` faster. A conv measured alone, in a warm cache, can look a few per cent faster than
it runs inside the model; below that margin the heuristic's choice is recorded as the winner
(the challenger's result keeps its time and says why it lost), so a tuned model does not become
slower by the noise of its measurements.

Progress is a `tqdm` bar on stderr: workloads done/total, elapsed and estimated time left, and
the current workload with its candidates measured and best time so far.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import onnx

from convir.target import Target
from convir.tuning.database import CandidateResult, TuningDatabase
from convir.tuning.measure import REPEATS, confirm_speedup, measure_workload
from convir.tuning.space import PER_ALGORITHM, heuristic_candidate, search_space
from convir.tuning.workloads import ModelWorkload, model_workloads

#: The speed-up over the heuristic's choice a challenger must confirm to win (module doc).
WIN_MARGIN = 1.03


@dataclass
class TuneSummary:
    """What a `tune_model` run did."""

    workloads: int = 0
    tuned: int = 0
    skipped: int = 0
    candidates: int = 0
    failed: int = 0
    rejected: int = 0
    incomplete: int = 0
    seconds: float = 0.0
    stopped_by_budget: bool = False
    statuses: dict[str, int] = field(default_factory=dict)


def tune_model(
    model: str | os.PathLike[str] | onnx.ModelProto,
    database: TuningDatabase,
    *,
    thread_counts: Sequence[int] = (1,),
    budget_s: float | None = None,
    algorithms: Iterable[str] | None = None,
    retune: bool = False,
    per_algorithm: int = PER_ALGORITHM,
    repeats: int = REPEATS,
    target: Target | None = None,
    progress: bool = True,
    faults: Mapping[str, Mapping[int, str]] | None = None,
) -> TuneSummary:
    """Tune every conv workload of `model` at every thread count into `database` (module doc).
    `faults`: test hook, workload key -> `measure_workload`'s faults."""
    from tqdm import tqdm

    start = time.monotonic()
    deadline = None if budget_s is None else start + budget_s
    target = target or Target.host()
    chosen = None if algorithms is None else list(algorithms)
    found = sorted(model_workloads(model, target), key=lambda w: -w.workload.flop * w.count)
    tasks = [(threads, entry) for threads in thread_counts for entry in found]
    summary = TuneSummary(workloads=len(tasks))
    done = lambda threads, entry: database.has(target, threads, entry.workload.key)  # noqa: E731
    todo = tasks if retune else [task for task in tasks if not done(*task)]
    summary.skipped = len(tasks) - len(todo)
    bar = tqdm(
        total=len(tasks),
        initial=summary.skipped,
        unit="workload",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    try:
        for threads, entry in todo:
            if deadline is not None and time.monotonic() >= deadline:
                summary.stopped_by_budget = True
                break
            if not retune and done(threads, entry):  # another tuner did it meanwhile
                summary.skipped += 1
                bar.update(1)
                continue
            _tune_one(
                entry,
                threads,
                database,
                target,
                chosen,
                per_algorithm,
                repeats,
                deadline,
                bar,
                summary,
                (faults or {}).get(entry.workload.key),
            )
            bar.update(1)
    finally:
        bar.close()
        summary.seconds = time.monotonic() - start
    if deadline is not None and summary.tuned + summary.skipped < len(tasks):
        summary.stopped_by_budget = True
    return summary


def _tune_one(
    entry: ModelWorkload,
    threads: int,
    database: TuningDatabase,
    target: Target,
    algorithms: list[str] | None,
    per_algorithm: int,
    repeats: int,
    deadline: float | None,
    bar,
    summary: TuneSummary,
    faults: Mapping[int, str] | None,
) -> None:
    """Measure one workload's candidates at `threads` threads and record them."""
    started = time.monotonic()
    candidates = search_space(entry.op, target, algorithms, per_algorithm)
    best: list[float] = []
    bar.set_description(f"{entry.workload.shape} {threads}T")

    def on_result(index: int, result: CandidateResult) -> None:
        if result.status == "ok" and result.median_s is not None:
            best.append(result.median_s)
        fastest = f"{min(best) * 1e3:.3f} ms" if best else "-"
        measured = sum(1 for _ in best)
        bar.set_postfix_str(
            f"candidate {index + 1}/{len(candidates)}, ok {measured}, best {fastest}"
        )

    results = measure_workload(
        entry.workload,
        candidates,
        threads=threads,
        target=target,
        repeats=repeats,
        deadline=deadline,
        on_result=on_result,
        faults=faults,
    )
    complete = all(result.status != "skipped" for result in results)
    heuristic = results[0] if candidates[:1] == [heuristic_candidate(entry.op, target)] else None
    winner = _confirmed_winner(entry, candidates, results, heuristic, threads, target)
    database.record(
        target,
        threads,
        entry.workload.key,
        entry.workload.to_json(),
        results,
        heuristic=heuristic,
        winner=winner,
        complete=complete,
        seconds=time.monotonic() - started,
    )
    summary.tuned += 1
    summary.incomplete += not complete
    summary.candidates += sum(result.status != "skipped" for result in results)
    for result in results:
        summary.statuses[result.status] = summary.statuses.get(result.status, 0) + 1
    summary.failed = summary.statuses.get("failed", 0)
    summary.rejected = summary.statuses.get("rejected", 0)


def _confirmed_winner(
    entry: ModelWorkload,
    candidates: Sequence,
    results: list[CandidateResult],
    heuristic: CandidateResult | None,
    threads: int,
    target: Target,
) -> CandidateResult | None:
    """The result to record as the winner (module doc): the fastest when it is the heuristic's
    choice or confirms `WIN_MARGIN` over it, else the heuristic's. Notes the confirmation in
    the challenger's message. None: the fastest (no heuristic measured ok to compare with)."""
    accepted = [i for i, r in enumerate(results) if r.status == "ok" and r.median_s is not None]
    if heuristic is None or heuristic.status != "ok" or not accepted:
        return None
    fastest = min(accepted, key=lambda i: results[i].median_s or 0.0)
    if fastest == 0:
        return heuristic
    speedup = confirm_speedup(
        entry.workload, candidates[0], candidates[fastest], threads=threads, target=target
    )
    won = speedup is not None and speedup >= WIN_MARGIN
    verdict = "unconfirmed" if speedup is None else f"{speedup:.3f}x over the heuristic"
    results[fastest] = replace(
        results[fastest],
        message=f"confirmed {verdict}" if won else f"lost: {verdict} (< {WIN_MARGIN}x)",
    )
    return results[fastest] if won else heuristic
