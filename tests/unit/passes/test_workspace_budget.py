"""The workspace budget of conv-select-algorithm: byte counts, the filter over the heuristic's
order, pinned smaller schedules, the error when nothing fits, and the option's plumbing."""

from __future__ import annotations

import pytest
from xdsl.context import Context
from xdsl.dialects.builtin import StringAttr
from xdsl.utils.exceptions import PassFailedException

from convir.target import Target
from lowering.algorithms import ALGORITHMS, conv_emitter, im2col
from passes.select_algorithm import (
    SelectAlgorithmPass,
    choose_algorithm,
    preferred_algorithms,
    select_algorithms,
)
from passes.workspace_budget import fit, parse_bytes, workspace_bytes
from tests.unit.passes.conv_ir import conv_module, only_conv

AVX2 = Target.preset("x86-avx2").with_(l2_bytes=512 << 10, cores=2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("65536", 65536),
        ("64KiB", 65536),
        ("64k", 65536),
        (" 1 MiB ", 1 << 20),
        ("2GiB", 2 << 30),
        ("512b", 512),
    ],
)
def test_byte_counts(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "-1", "1.5MiB", "64KB", "KiB", "1 TiB"])
def test_malformed_byte_counts_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a byte count; expected an integer .* 64KiB"):
        parse_bytes(text)


def im2col_conv():
    """A 5×5 conv on 256 input channels: its direct tile's weights leave half of L2, so the
    heuristic prefers im2col, whose panels take a workspace."""
    op = only_conv(conv_module(c=256, o=64, kernel=5, pad=2, block=8, hw=14))
    op.attributes["convir.name"] = StringAttr("conv_4")
    assert preferred_algorithms(op, AVX2)[0] == "im2col"
    return op


def test_without_a_budget_the_heuristic_wins() -> None:
    op = im2col_conv()
    assert choose_algorithm(op, AVX2) == "im2col"
    assert choose_algorithm(op, AVX2, workspace_budget=1 << 30) == "im2col"
    assert op.schedule is None


def test_a_budget_below_every_gemm_panel_falls_back_to_direct() -> None:
    op = im2col_conv()
    assert choose_algorithm(op, AVX2, workspace_budget=0) == "direct"
    assert op.schedule is None  # direct's heuristic schedule fits: nothing pinned


def test_a_smaller_candidate_is_pinned_when_the_heuristic_does_not_fit() -> None:
    op = im2col_conv()
    heuristic = workspace_bytes(op, "im2col", im2col.heuristic(op, AVX2))
    smallest = min(workspace_bytes(op, "im2col", s) for s in im2col.candidates(op, AVX2))
    assert smallest < heuristic
    assert choose_algorithm(op, AVX2, workspace_budget=heuristic - 1) == "im2col"
    op.algorithm = StringAttr("im2col")
    assert conv_emitter(op).workspace_bytes(op) <= heuristic - 1


def test_asking_for_a_workspace_leaves_the_op_as_it_was() -> None:
    op = im2col_conv()
    assert fit(op, ALGORITHMS["im2win"], AVX2, 0).schedule is None
    assert op.algorithm is None and op.schedule is None


def test_a_budget_nothing_fits_names_the_conv_and_the_smallest_workspace() -> None:
    op = im2col_conv()
    gemms = {name: ALGORITHMS[name] for name in ("im2col", "im2win")}
    smallest = min(fit(op, module, AVX2, 0).smallest_bytes for module in gemms.values())
    with pytest.raises(
        PassFailedException,
        match=rf"option workspace-budget 0 bytes: no algorithm fits conv_4 .*"
        rf"the smallest workspace available is {smallest} bytes .*, with (im2col|im2win)$",
    ):
        choose_algorithm(op, AVX2, gemms, workspace_budget=0)


def test_the_all_entry_is_taken_only_where_it_fits() -> None:
    module = conv_module(c=256, o=64, kernel=5, pad=2, block=8, hw=14)
    select_algorithms(module, AVX2, {"all": "im2win"}, workspace_budget=1 << 30)
    assert only_conv(module).algorithm.data == "im2win"
    module = conv_module(c=256, o=64, kernel=5, pad=2, block=8, hw=14)
    select_algorithms(module, AVX2, {"all": "im2win"}, workspace_budget=0)
    assert only_conv(module).algorithm.data == "direct"


def test_the_pass_option_takes_suffixes_and_names_itself_when_malformed() -> None:
    module = conv_module(c=256, o=64, kernel=5, pad=2, block=8, hw=14)
    SelectAlgorithmPass(target="x86-avx2", workspace_budget="0KiB").apply(Context(), module)
    assert only_conv(module).algorithm.data == "direct"
    with pytest.raises(PassFailedException, match=r"option workspace-budget: 'lots' is not a"):
        SelectAlgorithmPass(workspace_budget="lots").apply(Context(), module)
