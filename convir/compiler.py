"""The pipeline in one place: ONNX model -> `CompiledModel` (DESIGN §1).

    import_onnx                 graph form (conv dialect on NCHW tensors)         -> "conv"
    conv-fold-constants         constant subgraphs become constants
    conv-lower-conv-transpose   transposed convs become phase convs + an interleave
    conv-drop-padding-taps      kernel taps that read only padding are cut off
    conv-fold-batchnorm         BatchNorm into the conv before it, else scale/shift -> "folded"
    conv-fuse-epilogue          bias, residual add, activation into the conv      -> "fused"
    conv-convert-layout         NCHWc (block = the target's vector width)
    dce                         dead ops (unused constants) removed               -> "nchwc"
    conv-fuse-layers            conv chains into conv.fused (option `fusion`)
    conv-select-algorithm       every conv gets an algorithm (and a convir.name)  -> "selected"
    conv-tile                   every conv's schedule knobs filled for the target -> "scheduled"
    conv-concat-in-place        concats whose inputs can be written into them
    conv-plan-memory            arena offsets of intermediates and workspaces    -> "planned"
    convert-conv-to-loops       @forward + one kernel per distinct op            -> "loops"
    convert-parallel-to-pool    scf.parallel -> outlined chunk bodies + pool call -> "threaded"
    lower_to_llvm               scf/arith/math/vector/memref/func/cf -> llvm     -> "llvm"
    translate_to_llvm_ir        llvmlite IR text                                  -> "llvm-ir"
                                (to reach "llvm-ir", each kernel goes from loops to LLVM IR
                                text as soon as it is emitted: the IR of a whole model below
                                graph level never exists at once; LLVM links the parts)
    compile_ir                  O3 + shared object, cached on disk                -> "asm"

`compile` keys its cache by the planned module (`model_cache_key`: IR, weights, target, and
convir's own code): on a hit it only packs the weights and loads the shared object. On a miss it
lowers the kernels and hands their LLVM IR to a worker process (`lowering.codegen`) that builds
the shared object, so the compiling process never maps LLVM (see `lowering.jit`).

`compile` runs all of it; `lower` stops after any named stage so that a researcher can print it.
Both take per-conv overrides: `algorithms` ({conv key or "all": algorithm}) for
conv-select-algorithm and `tiles` ({conv key: {knob: value}}) for conv-tile, keyed by a conv's
`convir.name` or `onnx.name` (see `passes.conv_overrides`); `winograd_tolerance`, the
largest expected relative error of a Winograd m that selection and tiling may choose
(`lowering.algorithms.winograd_error`; default 1e-4); `workspace_budget`, the most workspace
one conv may take; and `tuning_db`, a tuning database (`convir tune`) whose records for this
target and thread count replace the heuristic where no override or pinned choice says otherwise
(`nearest_target`: records of a compatible target too); `fusion`, the `mode` of
conv-fuse-layers (`auto`, `all`, `none`; `passes.fuse_layers`).
"""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DenseResourceAttr, ModuleOp

from convir import __version__ as convir_version
from convir.dialects import make_context
from convir.dialects.resources import referenced_handles, resources_of
from convir.runtime import CompiledModel, TensorSpec
from convir.target import Target
from lowering.conv_to_loops import ENTRY_POINT
from lowering.stage_times import stage

if TYPE_CHECKING:
    from convir.tuning.records import TuningRecords
    from lowering.kernel_cache import KernelCompiler

STAGES = (
    "conv",
    "folded",
    "fused",
    "nchwc",
    "selected",
    "scheduled",
    "planned",
    "loops",
    "threaded",
    "llvm",
    "llvm-ir",
    "asm",
)
#: The stages `lower` times together as "graph passes" (see `lowering.stage_times`).
_GRAPH_STAGES = frozenset(("folded", "fused", "nchwc", "selected", "scheduled", "planned"))
#: The pass whose output each stage is, for `convir compile --dump-after PASS`.
STAGE_AFTER_PASS = {
    "import": "conv",
    "conv-fold-batchnorm": "folded",
    "conv-fuse-epilogue": "fused",
    "conv-convert-layout": "nchwc",
    "conv-select-algorithm": "selected",
    "conv-tile": "scheduled",
    "conv-plan-memory": "planned",
    "convert-conv-to-loops": "loops",
    "convert-parallel-to-pool": "threaded",
    "lower-to-llvm": "llvm",
}


@dataclass
class Lowered:
    """A module at some stage of the pipeline, with the context that owns its weights.

    At "llvm-ir", `llvm_parts` holds the LLVM IR of each kernel and of @forward, to be linked
    with only @forward exported; `llvm_ir` is that linked module (linked on first use, by LLVM in
    this process).
    """

    ctx: Context
    module: ModuleOp
    target: Target
    stage: str
    llvm_parts: list[str] | None = None
    _linked: str | None = field(default=None, repr=False)

    @property
    def llvm_ir(self) -> str | None:
        if self._linked is None and self.llvm_parts is not None:
            from lowering.codegen import link_ir

            self._linked = link_ir(self.llvm_parts, exported=[ENTRY_POINT])
        return self._linked


def lower(
    model: onnx.ModelProto | str | os.PathLike[str] | ModuleOp,
    *,
    target: Target | None = None,
    stop: str = "llvm-ir",
    ctx: Context | None = None,
    block: int | None = None,
    algorithms: Mapping[str, str] | None = None,
    tiles: Mapping[str, Mapping[str, int]] | None = None,
    workspace_budget: int | str | None = None,
    winograd_tolerance: float | None = None,
    tuning_db: str | os.PathLike[str] | TuningRecords | None = None,
    threads: int | None = None,
    nearest_target: bool = False,
    fusion: str = "none",
) -> Lowered:
    """Run the pipeline on `model` up to and including stage `stop` (one of STAGES).

    `block` is the NCHWc block (channels per vector); default: the target's vector width.
    `algorithms` and `tiles`: per-conv overrides of conv-select-algorithm and conv-tile.
    `workspace_budget`: the most workspace bytes one conv may take (an int, or a string such as
    "64KiB"), the option of conv-select-algorithm (`passes.workspace_budget`); None: no limit.
    `winograd_tolerance`: their `winograd-tolerance` (module doc); ValueError if it is not a
    finite number >= 0.
    `tuning_db`: a tuning database path (or open `TuningRecords`) whose records for `threads`
    threads (default: the target's cores) choose algorithms and schedules.
    `fusion`: the mode of conv-fuse-layers, run just before selection (`passes.fuse_layers`);
    ValueError if it is not one of auto, all, none. Default none: whole models measured no
    faster fused (MobileNetV2 1.00×, ShuffleNetV2 0.99× at 1 thread) and `auto`'s cost model
    is not yet checked against per-pair measurements.
    """
    from convir.importer.onnx import import_onnx
    from lowering.algorithms.winograd_error import DEFAULT_TOLERANCE, parse_tolerance
    from passes.fuse_layers import MODES
    from passes.workspace_budget import budget_argument

    if stop not in STAGES:
        raise ValueError(f"unknown stage '{stop}'; expected one of {', '.join(STAGES)}")
    if fusion not in MODES:
        raise ValueError(f"fusion: unknown mode '{fusion}'; expected one of {', '.join(MODES)}")
    budget = budget_argument(workspace_budget)
    try:
        tolerance = parse_tolerance(
            DEFAULT_TOLERANCE if winograd_tolerance is None else winograd_tolerance
        )
    except ValueError as error:
        raise ValueError(f"winograd_tolerance: {error}") from None
    target = target or Target.host()
    records = tuning_records(tuning_db, target, threads, nearest_target)
    # A private context may drop the weights the IR no longer refers to as the pipeline goes
    # (folded BatchNorms, then everything once weights are packed into one blob): peak memory.
    private = ctx is None
    ctx = ctx or make_context()
    release_large_blocks_at_once()
    with stage("import"):
        module = model if isinstance(model, ModuleOp) else import_onnx(model, ctx=ctx)
    from xdsl.transforms.dead_code_elimination import DeadCodeElimination

    from lowering.conv_to_loops import convert_to_loops
    from lowering.parallel_to_pool import ConvertParallelToPoolPass
    from lowering.to_llvm import lower_to_llvm
    from passes.concat_in_place import ConcatInPlacePass
    from passes.convert_layout import convert_layout
    from passes.drop_padding_taps import DropPaddingTapsPass
    from passes.fold_batchnorm import FoldBatchNormPass
    from passes.fold_constants import FoldConstantsPass
    from passes.fuse_epilogue import FuseEpiloguePass
    from passes.fuse_layers import fuse_layers
    from passes.lower_conv_transpose import LowerConvTransposePass
    from passes.plan_memory import PlanMemoryPass
    from passes.select_algorithm import select_algorithms
    from passes.tile import tile_convs

    def fold() -> None:
        FoldConstantsPass().apply(ctx, module)
        LowerConvTransposePass().apply(ctx, module)
        DropPaddingTapsPass().apply(ctx, module)
        FoldBatchNormPass().apply(ctx, module)

    def to_nchwc() -> None:
        convert_layout(ctx, module, block or target.vector_width)
        DeadCodeElimination().apply(ctx, module)

    def plan() -> None:
        ConcatInPlacePass().apply(ctx, module)
        PlanMemoryPass().apply(ctx, module)

    def select() -> None:
        fuse_layers(module, target, fusion)
        select_algorithms(
            module,
            target,
            algorithms,
            workspace_budget=budget,
            winograd_tolerance=tolerance,
            records=records,
        )

    steps = [
        ("conv", lambda: None),
        ("folded", fold),
        ("fused", lambda: FuseEpiloguePass().apply(ctx, module)),
        ("nchwc", to_nchwc),
        ("selected", select),
        (
            "scheduled",
            lambda: tile_convs(
                module, target, tiles, winograd_tolerance=tolerance, records=records
            ),
        ),
        ("planned", plan),
        ("loops", lambda: convert_to_loops(ctx, module, target.vector_width)),
        ("threaded", lambda: ConvertParallelToPoolPass().apply(ctx, module)),
        ("llvm", lambda: lower_to_llvm(module)),
    ]
    to_text = stop in ("llvm-ir", "asm")  # "asm" is compile_ir's business, from the LLVM IR
    for name, step in steps:
        with stage("graph passes" if name in _GRAPH_STAGES else name):
            step()
            if private:
                resources_of(ctx).retain(referenced_handles(module))
        if name == stop or (to_text and name == "planned"):
            break
    lowered = Lowered(ctx, module, target, name)
    return lower_to_llvm_ir(lowered, release_weights=private) if to_text else lowered


def tuning_records(
    tuning_db: str | os.PathLike[str] | TuningRecords | None,
    target: Target,
    threads: int | None,
    nearest_target: bool = False,
) -> TuningRecords | None:
    """Open `tuning_db` for the passes (None: no database); `TuningDatabaseError` names a file
    that cannot be used."""
    if tuning_db is None or not isinstance(tuning_db, str | os.PathLike):
        return tuning_db
    from convir.tuning.records import open_records

    return open_records(os.fspath(tuning_db), target, threads, nearest_target)


def lower_to_llvm_ir(
    lowered: Lowered,
    *,
    emit_kernels: bool = True,
    release_weights: bool = False,
    kernels: KernelCompiler | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Lowered:
    """Take a module at "planned" to "llvm-ir": `llvm_parts` holds each kernel's LLVM IR, then
    @forward's. Each kernel goes all the way to LLVM IR text as soon as it is emitted: the
    loop-level IR of a whole model never exists at once (peak memory).

    Without `emit_kernels`, only the weights are packed and the arena and I/O noted (what a
    `CompiledModel` needs besides its machine code), and `llvm_parts` stays None: for a model
    whose machine code is in the cache. `release_weights` drops the unpacked weights from the
    context once they are packed (for a context private to the compile).

    With `kernels`, each part (a kernel, then @forward) goes to it instead of `llvm_parts`
    (which stays None): a part whose loop-level IR it has compiled before is not lowered at
    all, a new one is lowered and compiled in the background (`lowering.kernel_cache`).
    `progress(done, total)` follows the ops whose kernels are emitted.
    """
    from lowering.conv_to_loops import convert_to_loops
    from lowering.parallel_to_pool import ConvertParallelToPoolPass
    from lowering.to_llvm import lower_functions_to_llvm_ir

    if lowered.stage != "planned":
        raise ValueError(f"lower_to_llvm_ir needs a module at 'planned', not '{lowered.stage}'")
    ctx, module, target = lowered.ctx, lowered.module, lowered.target
    parts: list[str] = []

    def to_llvm_ir(function_module: ModuleOp) -> None:
        if kernels is not None:
            with stage("kernel cache key"):
                key = kernels.key(str(function_module))
            if kernels.cached(key):
                return

        def lowering() -> list[str]:
            with stage("lower to llvm dialect"):
                ConvertParallelToPoolPass().apply(ctx, function_module)
            return list(lower_functions_to_llvm_ir(function_module, target_triple=target.triple))

        if kernels is None:
            parts.extend(lowering())
        else:
            kernels.lower(key, lowering)

    def kernel_to_llvm_ir(kernel: func.FuncOp) -> None:
        to_llvm_ir(ModuleOp([kernel]))
        # xDSL IR is cyclic (ops, blocks and regions point at their parents), so a lowered
        # kernel is garbage only the cyclic collector frees, and with the many long-lived objects
        # of a compile its generation-2 collections are rare: without this, the kernels' IR
        # piles up (peak RSS of MobileNetV2 221 -> 193 MiB). The objects alive before the
        # kernels (the graph, imported modules) are frozen meanwhile, so that each collection
        # scans only what was made since (ResNet-18: 19 collections 2.7 -> 0.1 s under cProfile).
        with stage("gc"):
            gc.collect()

    with stage("weights + @forward"), _frozen_heap():
        if emit_kernels:
            convert_to_loops(ctx, module, target.vector_width, kernel_to_llvm_ir, progress=progress)
            to_llvm_ir(module)
        else:
            convert_to_loops(ctx, module, target.vector_width, emit_kernels=False)
    if release_weights:
        resources_of(ctx).retain(referenced_handles(module))
    return_freed_memory()
    llvm_parts = parts if emit_kernels and kernels is None else None
    return Lowered(ctx, module, target, "llvm-ir", llvm_parts)


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """Exempt the objects alive now from the cyclic collector's scans inside the block
    (`gc.freeze`); they are scanned again, and freed if garbage, after it."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def compile(
    model: onnx.ModelProto | str | os.PathLike[str],
    *,
    threads: int | None = None,
    target: Target | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    block: int | None = None,
    algorithms: Mapping[str, str] | None = None,
    tiles: Mapping[str, Mapping[str, int]] | None = None,
    workspace_budget: int | str | None = None,
    winograd_tolerance: float | None = None,
    tuning_db: str | os.PathLike[str] | TuningRecords | None = None,
    nearest_target: bool = False,
    progress: bool = False,
    fusion: str = "none",
) -> CompiledModel:
    """Compile an ONNX model (or a path to one) to a native `CompiledModel`.

    `block`: channels per NCHWc block (default: the target's vector width); any block runs
    correctly on any machine, other than the vector width it is only slower.
    `algorithms`, `tiles`, `winograd_tolerance` (default 1e-4): as for `lower`.
    `workspace_budget`: bytes (or "64KiB", "1MiB") of workspace one conv may take, as for `lower`;
    `memory_report()` then shows each conv's algorithm and workspace.
    `tuning_db`: a tuning database (path, or `TuningRecords` to see which convs it served);
    its records for `threads` threads (default: all cores) replace the heuristic, those of a
    compatible target too with `nearest_target`. A model file compiled with a database is not
    served by the model-file cache (the database may have changed since), only by the model
    cache, which is keyed by the chosen schedules.
    `progress`: a progress bar on stderr while kernels are compiled, when it is a terminal.
    `fusion`: the mode of layer fusion, as for `lower`.

    The machine code is cached under `model_cache_key` of the planned module: on a hit no
    kernel is emitted or lowered (the weights are only packed) and no code generator runs.
    On a miss, each kernel's machine code is looked up in the kernel cache, keyed by the
    kernel's own loop-level IR (`lowering.kernel_cache`): only kernels no model compiled before
    are lowered, and code-generator processes compile them while the next ones are lowered.
    A model file compiled before with the same options, and unchanged since, is loaded without
    reading it (`convir.warm_cache`).
    """
    from convir import warm_cache
    from passes.workspace_budget import budget_argument

    target = target or Target.host()
    budget = budget_argument(workspace_budget)
    records = tuning_records(tuning_db, target, threads, nearest_target)
    file_key = None
    if isinstance(model, str | os.PathLike) and records is None:
        options = {"target": target.fingerprint(), "block": block, "code": code_fingerprint()}
        options.update(algorithms=dict(algorithms or {}), tiles=dict(tiles or {}))
        options.update(workspace_budget=budget)
        options.update(winograd_tolerance=winograd_tolerance, fusion=fusion)
        with stage("load"):
            file_key = warm_cache.file_key(model, options)
            warm = None if file_key is None else warm_cache.load(file_key, cache_dir, threads)
        if warm is not None:
            return warm
    planned = lower(
        model,
        target=target,
        stop="planned",
        block=block,
        algorithms=algorithms,
        tiles=tiles,
        workspace_budget=budget,
        winograd_tolerance=winograd_tolerance,
        tuning_db=records,
        fusion=fusion,
    )
    compiled, key, weights = _compile_planned(planned, threads, cache_dir, progress)
    if file_key is not None:
        with stage("record the model file"):
            warm_cache.save(file_key, cache_dir, key, dataclasses.asdict(target), compiled, weights)
    return compiled


def _compile_planned(
    planned: Lowered,
    threads: int | None,
    cache_dir: str | os.PathLike[str] | None,
    progress: bool = False,
) -> tuple[CompiledModel, str, np.ndarray]:
    """`compile` from the planned module on: the model, its model-cache key, its weights."""
    from convir.compile_progress import progress_bar
    from lowering.jit import cached_library, load_code
    from lowering.kernel_cache import KernelCompiler

    with stage("model cache key"):
        key = model_cache_key(planned)
    with stage("load"):
        library = cached_library(key, planned.target, cache_dir=cache_dir)
    if library is not None:
        lowered = lower_to_llvm_ir(planned, emit_kernels=False, release_weights=True)
    else:
        with (
            KernelCompiler(
                planned.target, [ENTRY_POINT], code_fingerprint(), cache_dir=cache_dir
            ) as kernels,
            progress_bar(progress) as bar,
        ):
            lowered = lower_to_llvm_ir(
                planned, release_weights=True, kernels=kernels, progress=bar.update
            )
            bar.finishing()
            code = kernels.link()
        with stage("load"):
            library = load_code(code, planned.target, key, cache_dir=cache_dir)
    with stage("load"):
        compiled = _compiled_model(lowered, library, threads)
    return compiled, key, _weights(lowered)


def model_cache_key(planned: Lowered) -> str:
    """Hex sha256 of everything a planned module's machine code depends on: its IR (algorithms,
    schedules and arena offsets included), the weights it refers to, the target, and the code
    of convir that lowers it (`code_fingerprint`)."""
    digest = hashlib.sha256()
    for part in ("convir-model", code_fingerprint(), planned.target.fingerprint()):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(str(planned.module).encode())
    resources = resources_of(planned.ctx)
    for handle in sorted(referenced_handles(planned.module)):
        digest.update(handle.encode())
        digest.update(np.ascontiguousarray(resources.data(handle)).reshape(-1).view(np.uint8))
    return digest.hexdigest()


@cache
def code_fingerprint() -> str:
    """Hex sha256 of the source of convir, passes and lowering and of the versions of xDSL and
    llvmlite: a model's cached machine code is stale as soon as any of them changes."""
    import llvmlite
    import xdsl

    import lowering
    import passes

    versions = f"{convir_version}\0{xdsl.__version__}\0{llvmlite.__version__}"
    digest = hashlib.sha256(versions.encode())
    roots = [Path(__file__).parent, Path(passes.__file__).parent, Path(lowering.__file__).parent]
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root.parent)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def compile_lowered(
    lowered: Lowered,
    *,
    threads: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    key: str | None = None,
) -> CompiledModel:
    """Machine code for a module `lower` took to "llvm-ir" (from any graph-form module, e.g. a
    hand-built one), with its weights, arena and I/O specs, as a `CompiledModel`. The code is
    cached under `key`, by default a hash of the LLVM IR."""
    from lowering.jit import compile_ir

    if lowered.llvm_parts is None:
        raise ValueError(
            f"compile_lowered needs a module lowered to 'llvm-ir', not '{lowered.stage}'"
        )
    library = compile_ir(
        lowered.llvm_parts,
        lowered.target,
        exported=[ENTRY_POINT],
        cache_dir=cache_dir,
        isolated=True,
        key=key,
    )
    return _compiled_model(lowered, library, threads)


def _weights(lowered: Lowered) -> np.ndarray:
    weights_attr = lowered.module.attributes["convir.weights"]
    assert isinstance(weights_attr, DenseResourceAttr)
    return resources_of(lowered.ctx).array(weights_attr)


def _compiled_model(lowered: Lowered, library, threads: int | None) -> CompiledModel:
    module = lowered.module
    return CompiledModel(
        library,
        _specs(module, "input"),
        _specs(module, "output"),
        _weights(lowered),
        module.attributes["convir.arena_bytes"].value.data,
        _workspaces(module),
        threads,
        _convs(module),
    )


def return_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's `malloc_trim`; a no-op
    elsewhere). A stage frees the IR it is done with but glibc keeps the pages, so the next
    stage would grow the process past it: trimming between stages lowers the peak resident
    memory of a compile (ResNet-50: 546 -> 522 MiB, measured when LLVM still ran in-process)."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


#: glibc's `mallopt` parameter of the size from which a block gets its own mapping.
_M_MMAP_THRESHOLD = -3
#: Blocks from 128 KiB (glibc's initial threshold) up are mapped on their own.
_MMAP_THRESHOLD_BYTES = 128 * 1024


@cache
def release_large_blocks_at_once() -> None:
    """Pin glibc's mmap threshold at its initial 128 KiB (once per process; a no-op elsewhere).

    By default glibc raises the threshold to the size of every mapped block that is freed (up
    to 32 MiB), after which blocks that size come from the heap and stay there once freed. A
    compile frees and allocates weight-sized arrays in turn (imported, folded, packed), so the
    heap would keep each generation: pinned, every such array goes back to the system when it
    dies (peak RSS of compiling and running ResNet-18: 317 -> 254 MiB).
    """
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


@cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def _specs(module: ModuleOp, kind: str) -> list[TensorSpec]:
    names = module.attributes[f"convir.{kind}_names"]
    shapes = module.attributes[f"convir.{kind}_shapes"]
    assert isinstance(names, ArrayAttr) and isinstance(shapes, ArrayAttr)
    return [
        TensorSpec(name.data, tuple(int(d) for d in shape.iter_values()))
        for name, shape in zip(names.data, shapes.data, strict=True)
    ]


def _convs(module: ModuleOp) -> dict[str, dict[str, object]]:
    """Per named conv: its algorithm and workspace bytes (`convir.convs`, from conv_to_loops)."""
    attr = module.attributes.get("convir.convs")
    if attr is None:
        return {}
    return {
        name: {
            "algorithm": entry.data["algorithm"].data,
            "workspace_bytes": entry.data["workspace_bytes"].value.data,
        }
        for name, entry in attr.data.items()
    }


def _workspaces(module: ModuleOp) -> dict[str, int]:
    attr = module.attributes.get("convir.workspace_bytes")
    return {} if attr is None else {k: v.value.data for k, v in attr.data.items()}
