"""The liveness-based first-fit allocator behind conv-plan-memory."""

from hypothesis import given, settings
from hypothesis import strategies as st

from passes.plan_memory import ALIGNMENT, first_fit


def test_buffers_with_disjoint_lifetimes_share_memory() -> None:
    # a: ops 0-1, b: ops 1-2, c: ops 2-3 -> c can reuse a's bytes, b cannot.
    offsets, arena = first_fit([(100, 0, 1), (100, 1, 2), (100, 2, 3)])
    assert offsets == [0, 128, 0]
    assert arena == 256


def test_empty_plan() -> None:
    assert first_fit([]) == ([], 0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 5000), st.integers(0, 20), st.integers(0, 10)),
        min_size=1,
        max_size=25,
    )
)
def test_no_two_live_buffers_overlap(raw) -> None:
    requests = [(size, first, first + length) for size, first, length in raw]
    offsets, arena = first_fit(requests)
    for i, (size_i, first_i, last_i) in enumerate(requests):
        assert offsets[i] % ALIGNMENT == 0
        assert offsets[i] + size_i <= arena
        for j in range(i):
            size_j, first_j, last_j = requests[j]
            if first_i <= last_j and first_j <= last_i:
                assert offsets[i] + size_i <= offsets[j] or offsets[j] + size_j <= offsets[i]
