"""Elementwise maps over an iteration space with affine memref accesses.

Most non-conv ops are one loop nest that reads some memrefs and writes one, each at an index
that is an affine function of the loop's induction variables: broadcasting (an axis that reads
index 0), slicing and concatenation (an offset), transposition (permuted axes), NCHWc packing
(`channel = block * c + lane`). `emit_map` builds that nest once for all of them: the innermost
axis is vectorised when every access is contiguous or constant along it, threaded over its outer
axes (or over chunks of a long innermost axis) when the work is large enough.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.ir import SSAValue

from convir.dialects.shapes import volume
from lowering.emit import Index, affine, mul
from lowering.kernels.common import (
    PARALLEL_MIN_ITERATIONS,
    Width,
    along_row,
    is_threaded,
    iterate,
    load,
    store,
    widen,
)

Term = tuple[int, int]
"""(iteration axis, coefficient)."""

Compute = Callable[[list[SSAValue], Width], SSAValue]
"""The value to store, from the values loaded (one per input access), at a lane width."""


@dataclass(frozen=True)
class Access:
    """Where one memref is read or written at each point of an iteration space.

    Memref index `d` is `offsets[d] + sum(coefficient * iv[axis] for axis, coefficient in
    terms[d])`.
    """

    ref: SSAValue
    terms: tuple[tuple[Term, ...], ...]
    offsets: tuple[int, ...]

    @staticmethod
    def following(
        ref: SSAValue, axes: Sequence[int | None], offsets: Sequence[int] | None = None
    ) -> Access:
        """Memref index `d` is iteration axis `axes[d]` (None: the constant) plus `offsets[d]`."""
        terms = tuple(() if axis is None else ((axis, 1),) for axis in axes)
        return Access(ref, terms, tuple(offsets or [0] * len(axes)))

    @staticmethod
    def identity(ref: SSAValue, rank: int, offsets: Sequence[int] | None = None) -> Access:
        """Memref index `d` is iteration axis `d` (plus `offsets[d]`)."""
        return Access.following(ref, range(rank), offsets)

    @staticmethod
    def broadcast(ref: SSAValue, shape: Sequence[int], space: Sequence[int]) -> Access:
        """numpy broadcasting of a memref of `shape` to the iteration space `space`."""
        lead = len(space) - len(shape)
        axes = [
            lead + d if size == space[lead + d] and size > 1 else None
            for d, size in enumerate(shape)
        ]
        return Access.following(ref, axes)

    def indices(self, ivs: Sequence[Index]) -> list[Index]:
        """The memref indices at the point `ivs` of the iteration space."""
        result: list[Index] = []
        for terms, offset in zip(self.terms, self.offsets, strict=True):
            constant = offset
            dynamic: list[tuple[Index, int]] = []
            for axis, coefficient in terms:
                iv = ivs[axis]
                if isinstance(iv, int):
                    constant += iv * coefficient
                else:
                    dynamic.append((iv, coefficient))
            result.append(affine(dynamic, constant) if dynamic else constant)
        return result

    def along(self, axis: int) -> str:
        """How the access moves along `axis`: "contiguous", "invariant" or "strided"."""
        moving = [
            (d, coefficient)
            for d, terms in enumerate(self.terms)
            for term_axis, coefficient in terms
            if term_axis == axis and coefficient != 0
        ]
        if not moving:
            return "invariant"
        if moving == [(len(self.terms) - 1, 1)]:
            return "contiguous"
        return "strided"


def emit_map(
    space: Sequence[int],
    out: Access,
    inputs: Sequence[Access],
    compute: Compute,
    vector_width: int,
    cost: int = 1,
) -> None:
    """out[at(p)] = compute(input[at(p)] for each input) for every point p of `space`.

    `cost` is the number of scalar operations per point, for the threading decision. Inputs
    invariant along the innermost axis are loaded once per row and broadcast.
    """
    space = list(space)
    if not space:
        values = [load(a.ref, a.indices([]), None) for a in inputs]
        store(compute(values, None), out.ref, out.indices([]))
        return
    inner_axis = len(space) - 1
    roles = [a.along(inner_axis) for a in inputs]
    vectorised = out.along(inner_axis) == "contiguous" and "strided" not in roles
    lanes = vector_width if vectorised else 1

    def row(outer: list[Index], start: Index, length: int) -> None:
        hoisted = {
            i: load(a.ref, a.indices([*outer, 0]), None)
            for i, (a, role) in enumerate(zip(inputs, roles, strict=True))
            if role == "invariant"
        }
        widened = {i: widen(v, lanes) for i, v in hoisted.items()} if lanes > 1 else {}

        def body(iv: SSAValue, width: Width) -> None:
            point = [*outer, iv]
            values = [
                (widened if width else hoisted)[i]
                if i in hoisted
                else load(a.ref, a.indices(point), width)
                for i, a in enumerate(inputs)
            ]
            store(compute(values, width), out.ref, out.indices(point))

        along_row(start, length, lanes, body)

    outer_space, inner = space[:-1], space[-1]
    rows = volume(outer_space)
    threaded = is_threaded(volume(space) * cost)
    if not threaded or rows >= PARALLEL_MIN_ITERATIONS or inner < 2 * max(lanes, 2):
        with iterate(outer_space, threaded) as ivs:
            row(ivs, 0, inner)
        return
    # Few long rows: thread over chunks of the innermost axis as well.
    pieces = -(-PARALLEL_MIN_ITERATIONS // rows)
    chunk = -(-inner // pieces)
    chunk = -(-chunk // lanes) * lanes
    full = inner // chunk
    with iterate([*outer_space, full], True) as ivs:
        row(ivs[:-1], mul(ivs[-1], chunk), chunk)
    if full * chunk < inner:
        with iterate(outer_space, False) as ivs:
            row(ivs, full * chunk, inner - full * chunk)
