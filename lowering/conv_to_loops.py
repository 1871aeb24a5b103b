"""`convert-conv-to-loops`: a planned graph-form function becomes kernel calls over one arena.

Expects the output of `conv-select-algorithm` and `conv-plan-memory`: a module with a graph-form
`func.func @main`. Produces a loop-level module:

    func.func @forward(%in0: memref<B0xi8>, ..., %out0: memref<Bkxi8>, ...,
                       %weights: memref<Wxi8>, %arena: memref<Axi8>,
                       %threads: i32 {convir.num_threads})

plus one private kernel function per distinct op (`lowering.kernels`), called from `@forward` on
`memref.view`s of those byte buffers. `@forward` first calls `omp_set_num_threads(%threads)`:
libgomp keeps that setting per calling thread, and every kernel's parallel loop reads it
(`omp_get_max_threads`) to size its share of convir's pool (`lowering.thread_pool`).

Constants are repacked for their kernels at compile time and concatenated into one weights blob,
stored in the context's resource store as `dense_resource<__weights>` and named by the module
attribute `convir.weights`. The module also records `convir.arena_bytes`, the input and output
names and shapes, and each kernel's workspace bytes. A concat marked `convir.in_place`
(`conv-concat-in-place`) emits nothing: its inputs already sit in their slices of its result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from xdsl.builder import ImplicitBuilder
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseResourceAttr,
    DictionaryAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    UnitAttr,
    i8,
    i32,
)
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from convir.dialects import conv, onnx_names
from convir.dialects.resources import constant_array, resources_of
from convir.dialects.shapes import i64_array, tensor_shape, volume
from lowering.emit import byte_memref, f32_memref, view
from lowering.kernels import KernelEmitter, kernel_symbol
from lowering.stage_times import stage

ENTRY_POINT = "forward"
"""The name of the one function a compiled model exports."""

WEIGHT_ALIGNMENT = 64


def emitter_for(op: Operation) -> KernelEmitter:
    """The kernel emitter of a conv-dialect op (conv: the one of its algorithm)."""
    if isinstance(op, conv.Conv2DOp | conv.FusedOp):
        from lowering.algorithms import conv_emitter

        return conv_emitter(op)
    from lowering.kernels.registry import EMITTERS

    if type(op) not in EMITTERS:
        raise ValueError(f"'{op.name}' has no loop-level kernel")
    return EMITTERS[type(op)]


@dataclass
class _WeightsBlob:
    """Packed constants, laid out one after the other at aligned offsets."""

    parts: list[np.ndarray] = field(default_factory=list)
    size: int = 0
    offsets: dict[tuple, int] = field(default_factory=dict)

    def add(self, key: tuple, array: np.ndarray) -> int:
        if key not in self.offsets:
            offset = -(-self.size // WEIGHT_ALIGNMENT) * WEIGHT_ALIGNMENT
            if offset > self.size:
                self.parts.append(np.zeros(offset - self.size, np.uint8))
            data = np.ascontiguousarray(array, dtype=np.float32).view(np.uint8).ravel()
            self.parts.append(data)
            self.offsets[key] = offset
            self.size = offset + data.size
        return self.offsets[key]

    def take_bytes(self) -> np.ndarray:
        """The blob as one array; the parts are released while they are copied in, so the
        weights exist about once, not twice (np.empty's pages become resident as written)."""
        blob = np.empty(max(self.size, 1), np.uint8)
        blob[self.size :] = 0
        position = 0
        self.parts.reverse()
        while self.parts:
            part = self.parts.pop()
            blob[position : position + part.size] = part
            position += part.size
        return blob


KernelSink = Callable[[func.FuncOp], None]
"""Takes each kernel function as soon as it is emitted (see `convert_to_loops`)."""


def convert_to_loops(
    ctx: Context,
    module: ModuleOp,
    vector_width: int,
    kernel_sink: KernelSink | None = None,
    *,
    emit_kernels: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Rewrite `module`'s planned `@main` into `@forward` and its kernels (module docstring).

    With a `kernel_sink`, each kernel is detached from `module` as soon as it is emitted and
    handed to the sink, and `module` keeps a declaration of it in its place: a caller that lowers
    kernels one by one (`convir.compiler`) never holds the loop-level IR of a whole model.
    Without `emit_kernels`, no kernel is emitted at all (@forward calls undeclared functions):
    only the weights blob and the module's attributes are made, for a caller that has the
    machine code already. `progress(done, total)` is called after each op's kernel is emitted
    (and handed to the sink).
    """
    main = next(
        (op for op in module.ops if isinstance(op, func.FuncOp) and op.sym_name.data == "main"),
        None,
    )
    if main is None:
        raise PassFailedException("convert-conv-to-loops: the module has no func.func @main")
    if "convir.arena_bytes" not in main.attributes:
        raise PassFailedException("convert-conv-to-loops: run conv-plan-memory first")
    block = main.body.block
    returned = block.last_op
    assert isinstance(returned, func.ReturnOp)
    inputs, outputs = list(block.args), list(returned.operands)
    arena_bytes = main.attributes["convir.arena_bytes"].value.data

    lowering = _Lowering(ctx, module, vector_width, kernel_sink, emit_kernels)
    ops = [op for op in block.ops if not isinstance(op, func.ReturnOp)]
    try:
        for i, value in enumerate(outputs):
            if lowering.needs_copy(value, i):
                lowering.prepare_copy(value)
            if isinstance(value.owner, conv.ConstantOp):
                lowering.constant_offset(value, None, ("output",))
        for done, op in enumerate(ops, 1):  # first sweep: kernels, constants packed
            lowering.prepare(op)
            lowering.release_packed_constants(op)
            if progress is not None:
                progress(done, len(ops))
    except ValueError as error:
        raise PassFailedException(f"convert-conv-to-loops: {error}") from None
    weights = lowering.weights.take_bytes()

    buffer_types = [byte_memref(4 * volume(tensor_shape(v))) for v in [*inputs, *outputs]]
    arg_types = [*buffer_types, byte_memref(weights.size), byte_memref(arena_bytes), i32]
    forward_block = Block(arg_types=arg_types)
    *io_args, lowering.weights_arg, lowering.arena, threads = forward_block.args
    for value, arg in zip(inputs, io_args[: len(inputs)], strict=True):
        lowering.storage[value] = (arg, 0)
    output_args = io_args[len(inputs) :]
    module.body.block.add_op(func.FuncOp("omp_set_num_threads", ([i32], []), Region(), "private"))
    with ImplicitBuilder(forward_block):
        # Every parallel loop asks omp_get_max_threads how many of the pool's threads to use.
        func.CallOp("omp_set_num_threads", [threads], [])
        try:
            for op in ops:
                lowering.lower(op, output_args)
            for i, value in enumerate(outputs):
                if lowering.needs_copy(value, i):
                    lowering.copy(value, output_args[i])
        except ValueError as error:
            raise PassFailedException(f"convert-conv-to-loops: {error}") from None
        func.ReturnOp()

    handle = resources_of(ctx).add("__weights", weights)
    arg_attrs = [DictionaryAttr({}) for _ in forward_block.args]
    arg_attrs[-1] = DictionaryAttr({"convir.num_threads": UnitAttr()})
    forward = func.FuncOp(
        ENTRY_POINT,
        ([a.type for a in forward_block.args], []),
        Region(forward_block),
        arg_attrs=ArrayAttr(arg_attrs),
    )
    module.body.block.insert_op_before(forward, main)
    module.attributes["convir.weights"] = DenseResourceAttr.from_params(
        handle, TensorType(i8, [weights.size])
    )
    module.attributes["convir.arena_bytes"] = IntegerAttr(arena_bytes, 64)
    for kind, attrs, values in (
        ("input", main.arg_attrs, inputs),
        ("output", main.res_attrs, outputs),
    ):
        names = onnx_names(attrs, len(values), kind)
        module.attributes[f"convir.{kind}_names"] = ArrayAttr([StringAttr(n) for n in names])
    module.attributes["convir.input_shapes"] = _shapes(inputs)
    module.attributes["convir.output_shapes"] = _shapes(outputs)
    module.attributes["convir.workspace_bytes"] = DictionaryAttr(
        {name: IntegerAttr(size, 64) for name, size in lowering.workspaces.items()}
    )
    module.attributes["convir.convs"] = DictionaryAttr(
        {
            name: DictionaryAttr(
                {"algorithm": StringAttr(algorithm), "workspace_bytes": IntegerAttr(size, 64)}
            )
            for name, (algorithm, size) in lowering.convs.items()
        }
    )
    main.detach()
    main.erase()


def _shapes(values: list[SSAValue]) -> ArrayAttr:
    return ArrayAttr([i64_array(tensor_shape(v)) for v in values])


class _Lowering:
    """State of one conversion: where each tensor lives, which kernels exist, the weights."""

    weights_arg: SSAValue
    arena: SSAValue

    def __init__(
        self,
        ctx: Context,
        module: ModuleOp,
        vector_width: int,
        kernel_sink: KernelSink | None,
        emit_kernels: bool,
    ) -> None:
        self.ctx, self.module, self.vector_width = ctx, module, vector_width
        self.kernel_sink, self.emit_kernels = kernel_sink, emit_kernels
        self.weights = _WeightsBlob()
        self.kernels: set[str] = set()
        self.packed_shapes: dict[tuple, tuple[int, ...]] = {}
        self.workspaces: dict[str, int] = {}
        #: Per named conv (`convir.name`): its algorithm and workspace bytes (memory_report).
        self.convs: dict[str, tuple[str, int]] = {}
        self.storage: dict[SSAValue, tuple[SSAValue, int]] = {}  # value -> (byte buffer, offset)
        self.prepared: set[Operation] = set()
        # Resource handle -> the constants holding it that still have readers to prepare.
        self.constants_of: dict[str, set[Operation]] = {}
        for op in module.walk():
            if isinstance(op, conv.ConstantOp) and isinstance(op.value, DenseResourceAttr):
                self.constants_of.setdefault(op.value.resource_handle.data, set()).add(op)

    def prepare(self, op: Operation) -> None:
        """Emit `op`'s kernel unless an identical one exists; pack its constant operands."""
        self.prepared.add(op)
        if isinstance(op, conv.ConstantOp | conv.ReshapeOp) or _in_place(op):
            return
        emitter = emitter_for(op)
        key, packers = kernel_symbol(emitter, op, self.vector_width), emitter.packers(op)
        if key not in self.kernels:
            with stage(f"emit {_kind(op)}"):
                self._emitted(lambda: emitter.emit(op, self.module, key, self.vector_width))
            self.kernels.add(key)
        for i, operand in enumerate(op.operands):
            if isinstance(operand.owner, conv.ConstantOp):
                self.constant_offset(operand, packers.get(i), (key, i))

    def _emitted(self, emit: Callable[[], None]) -> None:
        """Run `emit`, which appends kernel functions to the module; with a kernel sink, hand
        them over and leave declarations behind."""
        if not self.emit_kernels:
            return
        last = self.module.body.block.last_op
        emit()
        if self.kernel_sink is None:
            return
        new = []
        op = self.module.body.block.first_op if last is None else last.next_op
        while op is not None:
            new.append(op)
            op = op.next_op
        for kernel in new:
            assert isinstance(kernel, func.FuncOp)
            types = kernel.function_type
            declaration = func.FuncOp.external(
                kernel.sym_name.data, types.inputs.data, types.outputs.data
            )
            self.module.body.block.insert_op_before(declaration, kernel)
            kernel.detach()
            self.kernel_sink(kernel)

    def release_packed_constants(self, op: Operation) -> None:
        """Drop the arrays of `op`'s constant operands that no later op reads: they are packed
        into the weights blob now, and keeping both would hold every weight twice."""
        for operand in op.operands:
            owner = operand.owner
            if not isinstance(owner, conv.ConstantOp) or not isinstance(
                owner.value, DenseResourceAttr
            ):
                continue
            if {use.operation for use in operand.uses} <= self.prepared:
                handle = owner.value.resource_handle.data
                holders = self.constants_of.get(handle, set())
                holders.discard(owner)
                if not holders:
                    resources_of(self.ctx).release(handle)

    def constant_offset(self, value: SSAValue, packer, use: tuple) -> tuple[int, tuple[int, ...]]:
        """Offset and shape of constant `value` as packed by `packer` for the kernel use `use`."""
        key = (id(value), *use)
        if key not in self.packed_shapes:
            array = constant_array(self.ctx, value.owner.value).astype(np.float32)
            packed = packer(array) if packer else array
            self.packed_shapes[key] = packed.shape or (1,)
            self.weights.add(key, packed)
        return self.weights.offsets[key], self.packed_shapes[key]

    def lower(self, op: Operation, output_args: list[SSAValue]) -> None:
        """Emit the call (and, once per key, the kernel) computing `op`."""
        if isinstance(op, conv.ConstantOp):
            return
        if isinstance(op, conv.ReshapeOp):
            if isinstance(op.input.owner, conv.ConstantOp):
                raise ValueError("a reshape of a constant must be folded before lowering")
            self.storage[op.output] = self.storage[op.input]
            return
        if _in_place(op):  # its producers wrote every input into its slice already
            self.storage[op.results[0]] = (self.arena, _offset(op, "convir.arena_offset"))
            return
        emitter = emitter_for(op)
        name = kernel_symbol(emitter, op, self.vector_width)
        args = [
            self._constant_view(operand, (name, i))
            if isinstance(operand.owner, conv.ConstantOp)
            else self._view(operand)
            for i, operand in enumerate(op.operands)
        ]
        if "convir.output" in op.attributes:
            self.storage[op.results[0]] = (
                output_args[op.attributes["convir.output"].value.data],
                0,
            )
        else:
            self.storage[op.results[0]] = (self.arena, _offset(op, "convir.arena_offset"))
        args.append(self._view(op.results[0]))
        workspace = emitter.workspace_bytes(op)
        algorithm = op.properties.get("algorithm")
        if "convir.name" in op.attributes and isinstance(algorithm, StringAttr):
            self.convs[op.attributes["convir.name"].data] = (algorithm.data, workspace)
        if workspace:
            self.workspaces[name] = workspace
            args.append(
                view(self.arena, _offset(op, "convir.workspace_offset"), byte_memref(workspace))
            )
        func.CallOp(name, args, [])

    @staticmethod
    def needs_copy(value: SSAValue, index: int) -> bool:
        """Whether graph output `index` must be copied (its producer did not write it there)."""
        owner = value.owner
        written = isinstance(owner, Operation) and owner.attributes.get(
            "convir.output"
        ) == IntegerAttr(index, 64)
        return not written

    def prepare_copy(self, value: SSAValue) -> None:
        """Emit the copy kernel for `value`'s shape once."""
        from lowering.kernels.registry import emit_copy

        name = _copy_name(value)
        if name not in self.kernels:
            self._emitted(
                lambda: emit_copy(self.module, name, tensor_shape(value), self.vector_width)
            )
            self.kernels.add(name)

    def copy(self, value: SSAValue, output: SSAValue) -> None:
        """Call the copy kernel from `value`'s storage into the output buffer."""
        if isinstance(value.owner, conv.ConstantOp):
            source = self._constant_view(value, ("output",))
        else:
            source = self._view(value)
        target = view(output, 0, f32_memref(tensor_shape(value)))
        func.CallOp(_copy_name(value), [source, target], [])

    def _constant_view(self, value: SSAValue, use: tuple) -> SSAValue:
        offset, shape = (
            self.weights.offsets[(id(value), *use)],
            self.packed_shapes[(id(value), *use)],
        )
        return view(self.weights_arg, offset, f32_memref(shape))

    def _view(self, value: SSAValue) -> SSAValue:
        buffer, offset = self.storage[value]
        return view(buffer, offset, f32_memref(tensor_shape(value) or (1,)))


def _kind(op: Operation) -> str:
    """What a kernel's emission is timed as: a conv's algorithm, else the op's name."""
    if isinstance(op, conv.Conv2DOp) and op.algorithm is not None:
        return op.algorithm.data
    return op.name


def _in_place(op: Operation) -> bool:
    """A concat that `conv-concat-in-place` marked: planning placed its inputs inside it."""
    return isinstance(op, conv.ConcatOp) and "convir.in_place" in op.attributes


def _copy_name(value: SSAValue) -> str:
    return "copy_" + "x".join(map(str, tensor_shape(value)))


def _offset(op: Operation, name: str) -> int:
    if name not in op.attributes:
        raise ValueError(f"'{op.name}' has no {name}; run conv-plan-memory first")
    return op.attributes[name].value.data


@dataclass(frozen=True)
class ConvertConvToLoopsPass(ModulePass):
    """Lower a planned graph-form `@main` to `@forward` and loop-level kernels (module doc)."""

    name = "convert-conv-to-loops"

    vector_width: int = 8

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        convert_to_loops(ctx, op, self.vector_width)
