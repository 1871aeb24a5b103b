"""The search space of one conv: every applicable algorithm × its `candidates(op, target)`.

A `Candidate` is an algorithm and a complete schedule (every knob), the plain data the database
stores and `conv-select-algorithm`/`conv-tile` replay. The space starts with the heuristic's own
choice, so a tuned record is never slower than the heuristic *as measured*, then takes from each
algorithm of `lowering.algorithms.ALGORITHMS` that applies at most `per_algorithm` of its
candidates: its heuristic schedule and points spread evenly over the rest of its list (the
lists are ordered by kind, e.g. winograd's by m, so even spacing covers every kind). A future
algorithm (im2win, layer fusion as on/off per fusible pair) joins by being in ALGORITHMS with a
`candidates` function; nothing here names one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from convir.dialects import conv
from convir.target import Target

#: Candidates per algorithm by default: enough to cover register tiles and block sizes while a
#: ResNet-50 tunes in minutes on two cores (compiling a candidate takes ~1 s).
PER_ALGORITHM = 4


@dataclass(frozen=True)
class Candidate:
    """An algorithm and every knob of its schedule, knobs in the schedule class's order."""

    algorithm: str
    knobs: tuple[tuple[str, int], ...]

    @staticmethod
    def of(algorithm: str, schedule) -> Candidate:
        """From an algorithm name and a schedule dataclass."""
        data = schedule.to_attr().data
        return Candidate(algorithm, tuple((k, v.value.data) for k, v in data.items()))

    @property
    def schedule(self) -> dict[str, int]:
        return dict(self.knobs)

    def schedule_json(self) -> str:
        return json.dumps(self.schedule)

    def label(self) -> str:
        """`im2col{mr=2,nr=4,block_pixels=112,slots=2}`."""
        return f"{self.algorithm}{{{','.join(f'{k}={v}' for k, v in self.knobs)}}}"


def heuristic_candidate(op: conv.Conv2DOp, target: Target) -> Candidate:
    """What conv-select-algorithm and conv-tile choose for `op` without a record."""
    from lowering.algorithms import ALGORITHMS
    from passes.select_algorithm import choose_algorithm

    name = choose_algorithm(op, target)
    return Candidate.of(name, ALGORITHMS[name].heuristic(op, target))


def search_space(
    op: conv.Conv2DOp,
    target: Target,
    algorithms: Iterable[str] | None = None,
    per_algorithm: int = PER_ALGORITHM,
) -> list[Candidate]:
    """The candidates for `op` (module doc), the heuristic's first, without duplicates;
    `algorithms` restricts the algorithms (all of ALGORITHMS by default)."""
    from lowering.algorithms import ALGORITHMS

    chosen = list(ALGORITHMS) if algorithms is None else list(algorithms)
    space = []
    heuristic = heuristic_candidate(op, target)
    if heuristic.algorithm in chosen:
        space.append(heuristic)
    for name in chosen:
        algorithm = ALGORITHMS[name]
        if not algorithm.applicable(op):
            continue
        menu = [Candidate.of(name, s) for s in algorithm.candidates(op, target)]
        space.extend(spread(menu, per_algorithm))
    return list(dict.fromkeys(space))


def spread(menu: Sequence[Candidate], count: int) -> list[Candidate]:
    """The first of `menu` and `count - 1` more evenly spaced over the rest."""
    if len(menu) <= count:
        return list(menu)
    if count <= 1:
        return list(menu[:1])
    rest = menu[1:]
    step = (len(rest) - 1) / (count - 2) if count > 2 else 0
    return [menu[0], *(rest[round(i * step)] for i in range(count - 1))]


def tolerance(candidate: Candidate) -> float:
    """The largest relative error `candidate`'s algorithm accepts (`tolerance(schedule)`)."""
    from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, i64

    from lowering.algorithms import ALGORITHMS

    algorithm = ALGORITHMS[candidate.algorithm]
    attr = DictionaryAttr({k: IntegerAttr(v, i64) for k, v in candidate.knobs})
    return algorithm.tolerance(algorithm.SCHEDULE.from_attr(attr))
