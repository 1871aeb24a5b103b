"""LLVM's half of the code library: LLVM IR text -> an optimised shared object (DESIGN §6).

- `target_machine(target)`: a fresh O3 TargetMachine for position-independent code;
- `link_ir(parts, exported)`: one module from kernels compiled to IR one by one;
- `optimize(ir, target)` and `assembly(ir, target)`: LLVM's O3 pipeline, and the assembly of what
  `shared_object` builds (`--emit asm`);
- `object_code(ir, exported, target)`: one part, O3-optimised, as an ELF object with the symbols
  it imports and defines;
- `shared_object(parts, exported, target)`: every part's object, linked by the system's C
  compiler driver (`lowering.objects`) into a shared object, which `lowering.jit` loads with the
  dynamic loader;
- `python -m lowering.codegen`: the same as a worker process (see `serve`), so that a process
  that compiles a model never loads LLVM itself: libllvmlite.so alone makes 39 MiB of a process
  resident, more than onnxruntime's whole session of a small model; with `--objects`, a worker
  that compiles parts to objects as they arrive (`serve_objects`, used by
  `lowering.kernel_cache`).

Everything LLVM does runs under one module-level lock: llvmlite is not thread-safe.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

import llvmlite.binding as llvm

from convir.target import Target
from lowering.jit import JitError, SharedObject, _arch
from lowering.objects import ObjectCode, link_objects
from lowering.stage_times import recording, stage

_LOCK = threading.RLock()
_initialized = False
_all_targets = False


def _initialize() -> None:
    """Initialise LLVM's native target, once per process."""
    global _initialized
    with _LOCK:
        if not _initialized:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            llvm.initialize_native_asmparser()
            _initialized = True


def _initialize_all_targets() -> None:
    """Every LLVM backend, so that assembly() can print code for a preset of another ISA; only
    then, as it makes LLVM touch ~12 MiB more of its code, resident for the whole process."""
    global _all_targets
    with _LOCK:
        if not _all_targets:
            llvm.initialize_all_targets()
            llvm.initialize_all_asmprinters()
            _all_targets = True


def target_machine(target: Target) -> llvm.TargetMachine:
    """A new O3 TargetMachine for `target`, emitting position-independent code."""
    _initialize()
    if _arch(target.triple) != _arch(llvm.get_process_triple()):
        _initialize_all_targets()
    try:
        llvm_target = llvm.Target.from_triple(target.triple)
    except RuntimeError as error:
        raise JitError(
            f"target {target.name!r}: this LLVM has no backend for {target.triple!r}"
        ) from error
    return llvm_target.create_target_machine(
        cpu=target.cpu, features=target.features, opt=3, reloc="pic", codemodel="default"
    )


def _parse(llvm_ir: str, machine: llvm.TargetMachine) -> llvm.ModuleRef:
    """Parse and verify `llvm_ir` for `machine`, turning LLVM's complaints into a JitError."""
    module = _parsed(llvm_ir)
    module.triple = machine.triple
    module.data_layout = str(machine.target_data)
    try:
        module.verify()
    except RuntimeError as error:
        raise JitError(f"LLVM IR does not verify: {str(error).strip()}") from error
    return module


def _parsed(llvm_ir: str, context: llvm.ContextRef | None = None) -> llvm.ModuleRef:
    """`llvm_ir` parsed into `context`, by default a new one: LLVM keeps every type and
    constant a module uses in its context until the context dies, so everything a long-lived
    process compiled would pile up in the global one. Modules to be linked must share one."""
    try:
        return llvm.parse_assembly(llvm_ir, context=context or llvm.create_context())
    except RuntimeError as error:
        detail = str(error).removeprefix("LLVM IR parsing error").strip()
        raise JitError(f"malformed LLVM IR: {detail}") from error


def link_ir(parts: Iterable[str], exported: Iterable[str]) -> str:
    """One LLVM IR module from modules that declare what the others define; every function
    defined but not `exported` gets internal linkage (O3 may then inline or drop it)."""
    with _LOCK:
        _initialize()
        return str(_linked(parts, exported))


def _linked(parts: Iterable[str], exported: Iterable[str]) -> llvm.ModuleRef:
    linked: llvm.ModuleRef | None = None
    context = llvm.create_context()
    for text in parts:
        module = _parsed(text, context)
        if linked is None:
            linked = module
        else:
            linked.link_in(module)
    if linked is None:
        raise JitError("link_ir: no modules to link")
    public = set(exported)
    for function in linked.functions:
        if not function.is_declaration and function.name not in public:
            function.linkage = llvm.Linkage.internal
    return linked


def _run_o3(module: llvm.ModuleRef, machine: llvm.TargetMachine) -> None:
    """Run LLVM's default O3 module pipeline, tuned for `machine`, on `module` in place."""
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    tuning.loop_unrolling = True
    tuning.loop_interleaving = True
    builder = llvm.create_pass_builder(machine, tuning)
    builder.getModulePassManager().run(module, builder)


def _optimized(
    parts: Sequence[str], exported: Iterable[str] | None, target: Target
) -> Iterator[tuple[llvm.ModuleRef, llvm.TargetMachine]]:
    """Each part parsed, verified and O3-optimised, one after the other, with the TargetMachine
    that tuned it. With `exported`, every definition it does not name becomes hidden: the parts
    still reach each other's, the shared object exports only `exported`."""
    public = None if exported is None else set(exported)
    for text in parts:
        machine = target_machine(target)
        module = _parse(text, machine)
        if public is not None:
            for value in [*module.functions, *module.global_variables]:
                if not (value.is_declaration or value.name in public or _is_local(value)):
                    value.visibility = llvm.Visibility.hidden
        _run_o3(module, machine)
        yield module, machine


def _is_local(value: llvm.ValueRef) -> bool:
    return value.linkage in (llvm.Linkage.internal, llvm.Linkage.private)


def optimize(llvm_ir: str, target: Target | None = None) -> llvm.ModuleRef:
    """Parse, verify and O3-optimise `llvm_ir` for `target` (default: the host)."""
    with _LOCK:
        return next(_optimized([llvm_ir], None, target or Target.host()))[0]


def assembly(
    llvm_ir: str | Sequence[str],
    target: Target | None = None,
    *,
    exported: Iterable[str] | None = None,
) -> str:
    """The assembly of `llvm_ir` (one module's text, or parts as for `shared_object`) after O3
    for `target`: the code `shared_object` builds."""
    parts = [llvm_ir] if isinstance(llvm_ir, str) else llvm_ir
    with _LOCK:
        optimized = _optimized(parts, exported, target or Target.host())
        return "\n".join(machine.emit_assembly(module) for module, machine in optimized)


def shared_object(
    parts: Sequence[str], exported: Iterable[str] | None, target: Target
) -> SharedObject:
    """Machine code of the IR `parts` for `target` as one shared object.

    The parts are modules that declare what the others define (a model's kernels and @forward,
    see `lowering.to_llvm.lower_functions_to_llvm_ir`); each is optimised and compiled to an
    object on its own, so that only one part's LLVM module exists at a time (the peak memory of
    compiling a model is that of its largest kernel), and the system linker joins the objects.
    No kernel is small enough for inlining across parts to pay: they run whole layers.
    """
    with _LOCK, stage("LLVM O3 + codegen"):
        code = [object_code(text, exported, target) for text in parts]
    with stage("link"):
        return link_objects(code, exported)


def object_code(llvm_ir: str, exported: Iterable[str] | None, target: Target) -> ObjectCode:
    """One part's relocatable object after O3 (see `shared_object`), with the symbols it
    imports and defines."""
    imported: set[str] = set()
    defined: set[str] = set()
    with _LOCK:
        module, machine = next(_optimized([llvm_ir], exported, target))
        # After O3, which drops unused declarations and internal functions.
        for value in [*module.functions, *module.global_variables]:
            if value.is_declaration:
                if not value.name.startswith("llvm."):
                    imported.add(value.name)
            elif not _is_local(value):
                defined.add(value.name)
        data = machine.emit_object(module)
    return ObjectCode((data,), tuple(sorted(imported)), tuple(sorted(defined)))


def serve(request: dict[str, object], output: Path) -> dict[str, object]:
    """One worker request: build `request`'s shared object into `output`; its symbols, the
    worker's peak memory and its seconds per stage (`lowering.stage_times`)."""
    target = Target(**request["target"])  # type: ignore[arg-type]
    exported = request["exported"]
    with recording() as times:
        built = shared_object(request["parts"], exported, target)  # type: ignore[arg-type]
    output.write_bytes(built.data)
    return {
        "imports": built.imports,
        "exports": built.exports,
        "peak_rss_bytes": _peak_rss(),
        "stage_seconds": times.seconds,
        "stage_cpu_seconds": times.cpu_seconds,
    }


def _peak_rss() -> int | None:
    """This process's peak resident memory (VmHWM: its own pages since exec; getrusage would
    also count the parent's pages when the parent started it with vfork)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def serve_objects(requests: TextIO, replies: TextIO) -> None:
    """A worker that compiles parts to objects as they come (`lowering.kernel_cache`).

    JSON lines: the first request names the `target` and the `exported` symbols; each further
    one the file holding a part's LLVM IR (`ir`) and the file to write its object to
    (`object`). Each part gets one reply line, written as soon as the object is: the symbols
    it `imports` and `defines` and the `seconds` LLVM took, or an `error` for IR LLVM refuses.
    At the end of the input a last line reports the worker's `peak_rss_bytes`.
    """
    header = json.loads(requests.readline())
    target = Target(**header["target"])
    exported = header["exported"]
    for line in requests:
        request = json.loads(line)
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            code = object_code(Path(request["ir"]).read_text(), exported, target)
        except JitError as error:
            reply: dict[str, object] = {"error": str(error)}
        else:
            Path(request["object"]).write_bytes(code.objects[0])
            reply = {"imports": code.imports, "defines": code.defines}
        reply["seconds"] = time.perf_counter() - started
        reply["cpu_seconds"] = time.process_time() - cpu_started
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    replies.write(json.dumps({"peak_rss_bytes": _peak_rss()}) + "\n")
    replies.flush()


def main() -> int:
    """`python -m lowering.codegen OUTPUT`: a JSON request on stdin (`parts`, `exported`,
    `target`), the shared object written to OUTPUT, a JSON reply on stdout: the symbols and
    the worker's peak resident memory, or `{"error": message}` (exit status 1) for IR that LLVM
    refuses. `python -m lowering.codegen --objects`: the streaming worker of `serve_objects`."""
    if sys.argv[1:] == ["--objects"]:
        serve_objects(sys.stdin, sys.stdout)
        return 0
    request = json.load(sys.stdin)
    try:
        reply = serve(request, Path(sys.argv[1]))
    except JitError as error:
        json.dump({"error": str(error)}, sys.stdout)
        return 1
    json.dump(reply, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
