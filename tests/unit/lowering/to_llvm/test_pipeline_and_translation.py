"""`lower_to_llvm` and `translate_to_llvm_ir`: what they accept, what they refuse, and the parts
of the LLVM IR text convir relies on."""

from __future__ import annotations

import ctypes.util
import re

import llvmlite.binding as llvm
import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects.builtin import Builtin
from xdsl.parser import Parser
from xdsl.utils.exceptions import DiagnosticException

from lowering import jit
from lowering.to_llvm import lower_to_llvm, translate_to_llvm_ir
from lowering.to_llvm.llvm_extra import LLVM_EXTRA_OPS
from tests.unit.lowering.to_llvm.jit_helpers import (
    compile_kernels,
    lowered_ir,
    parse,
    pointer,
)


def test_private_functions_are_internal_and_public_ones_external() -> None:
    ir_text = lowered_ir(
        """
        func.func private @twice(%x: f32) -> f32 {
          %y = arith.addf %x, %x : f32
          func.return %y : f32
        }
        func.func @entry(%x: f32) -> f32 {
          %y = func.call @twice(%x) : (f32) -> f32
          func.return %y : f32
        }
        """
    )
    assert re.search(r'define internal float @"twice"', ir_text)
    assert re.search(r'define float @"entry"', ir_text)


def test_fast_math_flags_print_in_a_fixed_order() -> None:
    ir_text = lowered_ir(
        """
        func.func @f(%x: vector<8xf32>, %y: vector<8xf32>) -> vector<8xf32> {
          %s = arith.addf %x, %y fastmath<reassoc,nsz,contract,nnan> : vector<8xf32>
          %e = math.exp2 %s fastmath<afn> : vector<8xf32>
          %m = arith.maximumf %e, %y fastmath<nsz,nnan> : vector<8xf32>
          func.return %m : vector<8xf32>
        }
        """
    )
    assert "fadd contract nnan nsz reassoc <8 x float>" in ir_text
    assert 'call afn <8 x float> @"llvm.exp2.v8f32"' in ir_text
    # With nnan and nsz, LLVM lowers llvm.maximum (ReLU) to a bare vmaxps.
    assert 'call nnan nsz <8 x float> @"llvm.maximum.v8f32"' in ir_text


def test_one_intrinsic_on_two_types_gets_two_declarations() -> None:
    ir_text = lowered_ir(
        """
        func.func @f(%x: vector<8xf32>, %s: f32) -> (vector<8xf32>, f32) {
          %v = math.sqrt %x : vector<8xf32>
          %t = math.sqrt %s : f32
          func.return %v, %t : vector<8xf32>, f32
        }
        """
    )
    assert 'declare <8 x float> @"llvm.sqrt.v8f32"' in ir_text
    assert 'declare float @"llvm.sqrt.f32"' in ir_text


def test_target_triple_is_passed_on() -> None:
    module = parse("func.func @f() {\n  func.return\n}")
    lower_to_llvm(module)
    ir_text = translate_to_llvm_ir(module, target_triple="aarch64-unknown-linux-gnu")
    assert 'target triple = "aarch64-unknown-linux-gnu"' in ir_text


def test_an_op_without_lowering_is_named() -> None:
    module = parse(
        """
        func.func @f(%m: memref<8xf32>) {
          %c0 = arith.constant 0 : index
          %c8 = arith.constant 8 : index
          %c1 = arith.constant 1 : index
          %zero = arith.constant 0.0 : f32
          "scf.parallel"(%c0, %c8, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
          ^bb0(%i: index):
            memref.store %zero, %m[%i] : memref<8xf32>
            scf.reduce
          }) : (index, index, index) -> ()
          func.return
        }
        """
    )
    message = "'scf.parallel' has no lowering to the llvm dialect"
    with pytest.raises(ValueError, match=re.escape(message)):
        lower_to_llvm(module)


def test_an_unsupported_op_fails_in_its_pass() -> None:
    module = parse(
        """
        func.func @f() -> memref<8xf32> {
          %m = memref.alloc() : memref<8xf32>
          func.return %m : memref<8xf32>
        }
        """
    )
    with pytest.raises(DiagnosticException, match=re.escape("cannot lower 'memref.alloc'")):
        lower_to_llvm(module)


def test_a_vector_comparison_cannot_drive_a_branch() -> None:
    module = parse(
        """
        func.func @f(%x: vector<8xf32>) -> i32 {
          %m = arith.cmpf ogt, %x, %x : vector<8xf32>
          %r = scf.if %m -> (i32) {
            %a = arith.constant 1 : i32
            scf.yield %a : i32
          } else {
            %b = arith.constant 2 : i32
            scf.yield %b : i32
          }
          func.return %r : i32
        }
        """
    )
    with pytest.raises(DiagnosticException, match="the condition is a vector comparison"):
        lower_to_llvm(module)


def test_translation_refuses_a_module_that_is_not_lowered() -> None:
    module = parse("func.func @f() {\n  func.return\n}")
    with pytest.raises(ValueError, match=re.escape("'func.func' is not an llvm-dialect module op")):
        translate_to_llvm_ir(module)


def test_extra_llvm_ops_print_and_parse_back() -> None:
    ctx = Context()
    ctx.load_dialect(Builtin)
    for op in LLVM_EXTRA_OPS:
        ctx.load_op(op)
    ctx.allow_unregistered = True
    text = """
    %v = "test.vector"() : () -> vector<8xf32>
    %i = "test.index"() : () -> i64
    %e = llvm.extractelement %v[%i : i64] : vector<8xf32>
    %n = llvm.fptosi %e : f32 to i32
    %u = llvm.fptoui %e : f32 to i32
    %f = llvm.uitofp %u : i32 to f32
    """
    module = Parser(ctx, text).parse_module()
    module.verify()
    printed = str(module)
    for line in ("llvm.extractelement %v[%i : i64] : vector<8xf32>", "llvm.uitofp %u : i32 to f32"):
        assert line in printed
    assert str(Parser(ctx, printed).parse_module()) == printed


PARALLEL_SCALE = """
func.func @scale(%x: memref<4096xf32>, %y: memref<4096xf32>, %alpha: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c512 = arith.constant 512 : index
  %c8 = arith.constant 8 : index
  %va = vector.broadcast %alpha : f32 to vector<8xf32>
  "scf.parallel"(%c0, %c512, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%block: index):
    %i = arith.muli %block, %c8 : index
    %v = vector.load %x[%i] : memref<4096xf32>, vector<8xf32>
    %w = arith.mulf %v, %va : vector<8xf32>
    vector.store %w, %y[%i] : memref<4096xf32>, vector<8xf32>
    scf.reduce
  }) : (index, index, index) -> ()
  func.return
}
"""


def test_the_output_of_convert_parallel_to_pool_runs_on_the_thread_pool() -> None:
    gomp = pytest.importorskip("lowering.parallel_to_pool")
    library = ctypes.util.find_library("gomp")
    if library is None:
        pytest.skip("libgomp is not installed")
    llvm.load_library_permanently(library)
    jit._load_pool()  # this test's engine resolves symbols in the process, not through jit
    module = parse(PARALLEL_SCALE)
    gomp.ConvertParallelToPoolPass(min_work=0).apply(Context(), module)
    lowered = str(module)
    kernels = compile_kernels(lowered)
    assert "convir_parallel_for" in kernels.ir
    scale = kernels.function("scale", "void", "ptr", "ptr", "f32")
    x = np.arange(4096, dtype=np.float32)
    y = np.zeros_like(x)
    scale(pointer(x), pointer(y), 0.5)
    np.testing.assert_array_equal(y, 0.5 * x)
