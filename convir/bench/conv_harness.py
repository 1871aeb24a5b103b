"""convir's side of `convir bench layers`: one conv compiled and called as a model calls it.

Inside a compiled model a conv reads an NCHWc tensor and writes one (block X = the target's
vector width; a stem with fewer input channels than X reads its NCHW image as it is), with its
bias and activation applied while the output tile is in registers; the packing to and from NCHW
happens once per model, not per conv. `NativeConv` builds exactly that as
a graph-form module in the conv dialect:

    func.func @main(%x: tensor<1 x ceil(C/X) x H x W x X xf32>)
        -> tensor<1 x ceil(O/X) x OH x OW x X xf32> {
      %y = conv.conv2d %x, %weight bias %bias {activation = ...}
      return %y
    }

and sends it through the normal pipeline (`convir.compiler.lower`: algorithm selection, memory
planning, lowering, the on-disk object cache). The compiled `@forward` is checked to call that
one conv kernel and nothing else (no pack, unpack or copy). Buffers are allocated once.
`seconds_per_call(n)` times `n` back-to-back calls made by a small native loop (`REPEAT_IR`),
so not even the ~1 µs of a ctypes call per conv is counted: onnxruntime's node time, which it
is compared with, has no call overhead either.
"""

from __future__ import annotations

import ctypes
import re
import time
from collections.abc import Callable, Mapping
from functools import cache

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseResourceAttr,
    DictionaryAttr,
    FloatAttr,
    ModuleOp,
    StringAttr,
    f32,
)
from xdsl.ir import Block, Region

from convir import reference
from convir.bench import BenchError
from convir.bench.workloads import ConvLayer
from convir.dialects import conv, make_context
from convir.dialects.resources import resources_of
from convir.dialects.shapes import blocked_shape, f32_tensor
from convir.target import Target

REPEAT_FUNCTION = "convir_bench_repeat"
#: The name conv-select-algorithm gives the one conv of `conv_module` (the key of its tiles).
CONV_NAME = "conv_0"
#: `repeat(forward, n, x, y, weights, arena, threads)` calls `forward(x, y, weights, arena,
#: threads)` n >= 1 times.
REPEAT_IR = f"""
define void @{REPEAT_FUNCTION}(ptr %forward, i64 %n, ptr %x, ptr %y, ptr %w, ptr %a, i32 %t) {{
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %next, %loop ]
  call void %forward(ptr %x, ptr %y, ptr %w, ptr %a, i32 %t)
  %next = add i64 %i, 1
  %done = icmp uge i64 %next, %n
  br i1 %done, label %exit, label %loop
exit:
  ret void
}}
"""


@cache
def _repeat_function(target: Target):
    """The compiled `REPEAT_IR` as a ctypes function (compiled once per process and target)."""
    from lowering.jit import compile_ir

    library = compile_ir(REPEAT_IR, target)
    return library.function(
        REPEAT_FUNCTION,
        None,
        [ctypes.c_void_p, ctypes.c_int64, *[ctypes.c_void_p] * 4, ctypes.c_int32],
    )


def conv_module(
    ctx: Context, layer: ConvLayer, weight: np.ndarray, bias: np.ndarray | None, block: int
) -> ModuleOp:
    """The graph-form module of `layer` on NCHWc tensors with its epilogue (module doc)."""
    from passes.graph_rewriting import new_constant

    input_shape = (1, layer.channels, layer.height, layer.width)
    if not reads_nchw_input(layer, block):
        input_shape = blocked_shape(input_shape, block)
    input_type = f32_tensor(input_shape)
    output_shape = (1, layer.out_channels, *layer.output_hw)
    body = Block(arg_types=[input_type])
    constants = [new_constant(ctx, f"{layer.name}.weight", weight)]
    if bias is not None:
        constants.append(new_constant(ctx, f"{layer.name}.bias", bias))
    op = conv.Conv2DOp(
        body.args[0],
        constants[0].output,
        constants[1].output if bias is not None else None,
        strides=layer.strides,
        pads=layer.pads,
        dilations=layer.dilations,
        group=layer.group,
        output_shape=blocked_shape(output_shape, block),
    )
    if layer.activation is not None:
        op.activation = StringAttr(layer.activation)
        if layer.alpha is not None:
            op.alpha = FloatAttr(layer.alpha, f32)
        if layer.beta is not None:
            op.beta = FloatAttr(layer.beta, f32)
    body.add_ops([*constants, op, func.ReturnOp(op.output)])

    def names(name: str) -> ArrayAttr:
        return ArrayAttr([DictionaryAttr({"onnx.name": StringAttr(name)})])

    main = func.FuncOp(
        "main",
        ([input_type], [op.output.type]),
        Region(body),
        arg_attrs=names("x"),
        res_attrs=names("y"),
    )
    module = ModuleOp([main])
    module.verify()
    return module


def reads_nchw_input(layer: ConvLayer, block: int) -> bool:
    """Whether the compiled model's conv reads its input in NCHW (a few-channel stem: see
    `passes.convert_layout.reads_nchw_input`); every other layer reads NCHWc."""
    from passes.convert_layout import reads_nchw_input as keeps_nchw

    return keeps_nchw(layer.channels, layer.group, block)


def forward_calls(llvm_ir: str) -> list[str]:
    """The functions `@forward` calls in (unoptimised) LLVM IR text; names may be quoted, as
    llvmlite prints them."""
    match = re.search(r'define [^\n]*@"?forward"?\(.*?\n\}', llvm_ir, re.DOTALL)
    if match is None:
        raise BenchError("the compiled conv has no @forward function")
    return re.findall(r'call [^@\n]*@"?([\w.$]+)"?\(', match.group(0))


class NativeConv:
    """`layer` compiled by convir for `target`, ready to be called on fixed NCHWc buffers.

    `algorithm` pins the conv's algorithm and `schedule` its knobs (else convir's selection
    chooses). `NativeConv.from_library` wraps a conv compiled elsewhere (the tuner compiles
    many candidates at once)."""

    def __init__(
        self,
        layer: ConvLayer,
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None,
        *,
        threads: int = 1,
        target: Target | None = None,
        algorithm: str | None = None,
        knobs: dict[str, int] | None = None,
        schedule: Mapping[str, int] | None = None,
    ) -> None:
        """`algorithm` pins the conv's algorithm where it applies; `knobs` pins schedule knobs
        where the conv's algorithm has them (e.g. winograd's m), `schedule` pins knobs of the
        algorithm (a tuning candidate's whole schedule); the heuristic fills the rest."""
        from convir.compiler import lower
        from lowering.conv_to_loops import ENTRY_POINT
        from lowering.jit import compile_ir

        target = target or Target.host()
        block = target.vector_width
        ctx = make_context()
        module = conv_module(ctx, layer, weight, bias, block)
        pins = {"all": algorithm} if algorithm else None
        selected = lower(
            module, target=target, stop="selected", ctx=ctx, block=block, algorithms=pins
        ).module
        op = next(op for op in selected.walk() if isinstance(op, conv.Conv2DOp))
        own = {**_own_knobs(op, knobs or {}), **(schedule or {})}
        tiles = {CONV_NAME: own} if own else None
        scheduled = lower(
            selected, target=target, stop="scheduled", ctx=ctx, block=block, tiles=tiles
        ).module
        algorithm_name = op.algorithm.data if op.algorithm else "?"
        schedule_text = str(op.schedule) if op.schedule else ""
        lowered = lower(scheduled, target=target, stop="llvm-ir", ctx=ctx, block=block)
        # The parts compiled as convir.compile compiles them: one object per kernel.
        parts = lowered.llvm_parts
        assert parts is not None
        self.layer = layer
        self._check_only_the_conv_runs("\n".join(parts))
        library = compile_ir(parts, target, exported=[ENTRY_POINT])
        self._bind(layer, x, lowered, library, threads, target)
        #: The algorithm convir's selection chose, and its schedule as printed in the IR.
        self.algorithm, self.schedule = algorithm_name, schedule_text

    @classmethod
    def from_library(
        cls, layer: ConvLayer, x: np.ndarray, lowered, library, *, threads: int, target: Target
    ) -> NativeConv:
        """The conv of `lowered` (the module of `conv_module` lowered to "llvm-ir" in context
        `lowered.ctx`) whose machine code is `library`."""
        native = cls.__new__(cls)
        native._bind(layer, x, lowered, library, threads, target)
        native.algorithm = native.schedule = native.kernel = ""
        return native

    def _bind(self, layer: ConvLayer, x: np.ndarray, lowered, library, threads: int, target):
        from lowering.conv_to_loops import ENTRY_POINT

        self.layer, self.threads = layer, threads
        block = target.vector_width
        self._library = library
        weights_attr = lowered.module.attributes["convir.weights"]
        assert isinstance(weights_attr, DenseResourceAttr)
        self._weights = np.ascontiguousarray(
            resources_of(lowered.ctx).array(weights_attr), np.uint8
        )
        arena_bytes = lowered.module.attributes["convir.arena_bytes"].value.data
        self._arena = np.zeros(max(arena_bytes, 1), np.uint8)
        x = np.ascontiguousarray(x, np.float32)
        self._input = x if reads_nchw_input(layer, block) else reference.pack(x, block)
        output_shape = blocked_shape((1, layer.out_channels, *layer.output_hw), block)
        self._output = np.zeros(output_shape, np.float32)
        self._forward = self._library.function(
            ENTRY_POINT, None, [ctypes.c_void_p] * 4 + [ctypes.c_int32]
        )
        buffers = (self._input, self._output, self._weights, self._arena)
        self._arguments = (*(b.ctypes.data for b in buffers), threads)
        self._repeat = _repeat_function(target)
        self._forward_address = self._library.address(ENTRY_POINT)

    def _check_only_the_conv_runs(self, llvm_ir: str) -> None:
        calls = [name for name in forward_calls(llvm_ir) if name != "omp_set_num_threads"]
        if len(calls) != 1 or not calls[0].startswith("conv_"):
            raise BenchError(
                f"{self.layer.name}: the compiled module runs {calls or 'nothing'}, not one conv "
                "kernel; its time would not be the conv's"
            )
        #: The name of the kernel function that is timed.
        self.kernel = calls[0]

    def run(self) -> None:
        """One call of the compiled conv on the fixed buffers."""
        self._forward(*self._arguments)

    def seconds_per_call(
        self, iterations: int, clock: Callable[[], float] = time.perf_counter
    ) -> float:
        """Mean seconds per call over `iterations` calls made by a native loop, by `clock`
        (wall time; `time.thread_time` gives this thread's CPU time, which other processes on
        a busy machine do not inflate, for a conv run on the calling thread alone)."""
        start = clock()
        self._repeat(self._forward_address, iterations, *self._arguments)
        return (clock() - start) / iterations

    def output(self) -> np.ndarray:
        """Run once and return the result in NCHW (logical channels only)."""
        self.run()
        return reference.unpack(self._output, self.layer.out_channels)


def _own_knobs(op: conv.Conv2DOp, knobs: dict[str, int]) -> dict[str, int]:
    """The entries of `knobs` that the schedule of `op`'s algorithm has."""
    from dataclasses import fields

    from lowering.algorithms import ALGORITHMS

    assert op.algorithm is not None
    known = {field.name for field in fields(ALGORITHMS[op.algorithm.data].SCHEDULE)}
    return {knob: value for knob, value in knobs.items() if knob in known}


def layer_data(layer: ConvLayer, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Input (N(0, 1)), He-normal weight and small bias of `layer`, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, layer.channels, layer.height, layer.width), np.float32)
    fan_in = layer.channels // layer.group * layer.kernel[0] * layer.kernel[1]
    shape = (layer.out_channels, layer.channels // layer.group, *layer.kernel)
    weight = rng.standard_normal(shape, np.float32) * np.float32(np.sqrt(2.0 / fan_in))
    bias = rng.standard_normal(layer.out_channels, np.float32) * np.float32(0.1)
    return x, weight, bias if layer.bias else None


def reference_output(
    layer: ConvLayer, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None
) -> np.ndarray:
    """numpy's answer for `layer` (`convir.reference`): conv, bias, activation."""
    y = reference.conv2d(
        x,
        weight,
        bias,
        strides=list(layer.strides),
        pads=list(layer.pads),
        dilations=list(layer.dilations),
        group=layer.group,
    )
    if layer.activation is None:
        return y
    return reference.activation(y, layer.activation, layer.alpha or 0.0, layer.beta or 0.0)
