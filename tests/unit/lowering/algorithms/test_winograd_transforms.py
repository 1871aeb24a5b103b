"""The Cook–Toom matrices of F(m, 3), checked in exact arithmetic: the 1-D and 2-D algorithms
equal direct correlation for every input, and Aᵀ, Bᵀ are exact in fp32."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowering.algorithms.winograd_transforms import POINTS, cook_toom, matmul, transpose

MS = sorted(POINTS)


def _correlate_1d(d: list, g: list, m: int) -> list:
    return [sum(d[i + k] * g[k] for k in range(len(g))) for i in range(m)]


def _hadamard(x: list, y: list) -> list:
    return [a * b for a, b in zip(x, y, strict=True)]


def _unit(size: int, i: int) -> list[Fraction]:
    return [Fraction(int(j == i)) for j in range(size)]


@pytest.mark.parametrize("m", MS)
def test_1d_algorithm_is_correlation_on_a_basis(m: int) -> None:
    """Both sides are bilinear in (d, g), so equality on every pair of basis vectors proves
    equality for all inputs."""
    t = cook_toom(m)
    for i in range(t.alpha):
        for k in range(t.r):
            d, g = _unit(t.alpha, i), _unit(t.r, k)
            gg = [row[0] for row in matmul(t.g, transpose([g]))]
            bd = [row[0] for row in matmul(t.bt, transpose([d]))]
            y = [row[0] for row in matmul(t.at, transpose([_hadamard(gg, bd)]))]
            assert y == _correlate_1d(d, g, m)


@settings(max_examples=20, deadline=None)
@given(data=st.data(), m=st.sampled_from(MS))
def test_2d_algorithm_is_correlation(data, m: int) -> None:
    t = cook_toom(m)
    numbers = st.fractions(min_value=-8, max_value=8, max_denominator=16)
    d = [[data.draw(numbers) for _ in range(t.alpha)] for _ in range(t.alpha)]
    g = [[data.draw(numbers) for _ in range(t.r)] for _ in range(t.r)]
    u = matmul(matmul(t.g, g), transpose(t.g))
    v = matmul(matmul(t.bt, d), transpose(t.bt))
    product = [_hadamard(ur, vr) for ur, vr in zip(u, v, strict=True)]
    y = matmul(matmul(t.at, product), transpose(t.at))
    direct = [
        [sum(d[i + a][j + b] * g[a][b] for a in range(3) for b in range(3)) for j in range(m)]
        for i in range(m)
    ]
    assert y == direct


@pytest.mark.parametrize("m", MS)
def test_shapes_and_points(m: int) -> None:
    t = cook_toom(m)
    assert (len(t.at), len(t.at[0])) == (m, m + 2)
    assert (len(t.g), len(t.g[0])) == (m + 2, 3)
    assert (len(t.bt), len(t.bt[0])) == (m + 2, m + 2)
    assert len(POINTS[m]) == len(set(POINTS[m])) == m + 1


@pytest.mark.parametrize("m", MS)
def test_data_transforms_are_exact_in_fp32(m: int) -> None:
    """The kernel applies Aᵀ and Bᵀ with fp32 constants: every entry must round-trip."""
    t = cook_toom(m)
    for value in [v for row in (*t.at, *t.bt) for v in row]:
        assert Fraction(float(np.float32(value))) == value


def test_unsupported_m_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"F\(3, 3\).*supported m: \[2, 4, 6\]"):
        cook_toom(3)
