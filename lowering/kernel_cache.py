"""Machine code per kernel: cached on disk, and compiled in the background while Python lowers.

A model's machine code is made of parts: one per kernel (the kernel function and the bodies
outlined from its parallel loops) and one for @forward. `KernelCompiler` keys each part by its
own loop-level IR (`part_key`: the text of the kernel as `convert-conv-to-loops` emitted it,
the target, the symbols the library exports, and a digest of the code that lowers it, given by
the caller), so that

- a part compiled before, by any model or tuning candidate, is neither lowered to the llvm
  dialect nor compiled again: its objects come from the cache (`<key>.cvso` under `kernels/` in
  the cache directory, written atomically by `lowering.jit`'s entry format);
- a new part is lowered to LLVM IR (`lower`) and handed at once to code-generator processes
  (`python -m lowering.codegen --objects`) that compile it while Python lowers the next
  kernels: LLVM's work overlaps the lowering and spreads over the cores.

Lowering a kernel to the llvm dialect and to LLVM IR is most of a cold compile's Python time
(ResNet-50: ~11 of 17 CPU seconds), and kernels lower independently. So on a machine with several
cores each new part is lowered in a child process forked right after the kernel is emitted (`fork`
shares the emitted IR without serialising it; the child writes its LLVM IR texts to the scratch
directory and exits), while the parent emits the next kernel: up to `lowering_processes()` children
at once (the cores, bounded by memory at `LOWERING_BYTES` each), none on one core or while the
process runs other threads (the parent lowers in place, as before: a fork copies only the calling
thread, and a lock another thread holds would stay held in the child). A child's stage times are
added to the parent's record, and an exception it raises is raised again by the parent.

Workers: one fewer than the cores (Python's lowering keeps one busy), at least one, and no more
than the available memory holds at `WORKER_BYTES` each. `link` waits for the children and the
workers, stores the new objects in the cache and links every part into the shared object.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NoReturn

import llvmlite

import convir
from convir.target import Target
from lowering import stage_times
from lowering.jit import CACHE_DIR_ENV, JitError, SharedObject, _ObjectCache
from lowering.objects import ObjectCode, link_objects

#: Bump when the entry layout or what a key covers changes.
KERNEL_CACHE_FORMAT = "1"
#: The memory a code-generator process may need (LLVM and the largest kernel's module).
WORKER_BYTES = 1 << 30
#: The memory a lowering child may dirty: the llvm-dialect form of the largest kernel, and the
#: parent's pages that its reference counting copies.
LOWERING_BYTES = 1 << 30


def part_key(loop_ir: str, target: Target, exported: Iterable[str], code_digest: str) -> str:
    """Hex sha256 of what one part's objects depend on (module docstring)."""
    digest = hashlib.sha256()
    fixed = (KERNEL_CACHE_FORMAT, convir.__version__, llvmlite.__version__, code_digest)
    for text in (*fixed, target.fingerprint(), ",".join(sorted(exported)), loop_ir):
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def worker_count(cores: int | None = None, available_bytes: int | None = None) -> int:
    """Code-generator processes to run beside the lowering (module docstring)."""
    cores = cores if cores is not None else len(os.sched_getaffinity(0))
    available = available_bytes if available_bytes is not None else _available_memory()
    by_memory = max(1, available // WORKER_BYTES) if available is not None else cores
    return max(1, min(cores - 1, by_memory))


def lowering_processes(cores: int | None = None, available_bytes: int | None = None) -> int:
    """Children that may lower kernels at once (module docstring); 0: lower in this process."""
    cores = cores if cores is not None else len(os.sched_getaffinity(0))
    if cores < 2 or not hasattr(os, "fork"):
        return 0
    available = available_bytes if available_bytes is not None else _available_memory()
    by_memory = available // LOWERING_BYTES if available is not None else cores
    return min(cores, by_memory) if by_memory >= 1 else 0


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class KernelCompiler:
    """The parts of one library: cached objects reused, new ones compiled in the background.

    Call `cached(key)` for each part in order; for a miss, `lower(key, lowering)` with a
    function that lowers the part to LLVM IR (one text per function), or `submit(key, texts)`
    with the texts; then `link()` once. `close()` stops the children and workers (`link` does,
    and so does leaving a `with` block).
    """

    def __init__(
        self,
        target: Target,
        exported: Iterable[str],
        code_digest: str,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        use_cache: bool = True,
        workers: int | None = None,
        lowering_children: int | None = None,
    ) -> None:
        self.target = target
        self.exported = sorted(exported)
        self.code_digest = code_digest
        self.cache = _kernel_cache(cache_dir) if use_cache else None
        self.max_workers = workers if workers is not None else worker_count()
        self.max_children = (
            lowering_children if lowering_children is not None else lowering_processes()
        )
        #: Lowering children still running: process id -> index of their part in `_parts`.
        self._children: dict[int, int] = {}
        #: Per part in order: its key and either its cached code or its pending objects.
        self._parts: list[tuple[str, ObjectCode | list[int]]] = []
        self._scratch = tempfile.TemporaryDirectory(prefix="convir-objects-")
        self._workers: list[_Worker] = []
        self._submitted = 0
        #: How many parts came from the cache and how many were compiled (for tests, reports).
        self.hits = 0
        self.misses = 0

    def __enter__(self) -> KernelCompiler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def key(self, loop_ir: str) -> str:
        """The key of the part whose loop-level IR is `loop_ir` (see `part_key`)."""
        return part_key(loop_ir, self.target, self.exported, self.code_digest)

    def cached(self, key: str) -> bool:
        """Whether the part `key` is in the cache; if so it is taken from there."""
        code = None if self.cache is None else self.cache.load(key)
        if code is None:
            return False
        self._parts.append((key, _unpack(code)))
        self.hits += 1
        return True

    def submit(self, key: str, llvm_ir: Iterable[str]) -> None:
        """Compile part `key`, whose functions' LLVM IR texts are `llvm_ir`, in the background."""
        self._parts.append((key, self._send(llvm_ir)))
        self.misses += 1

    def _send(self, llvm_ir: Iterable[str]) -> list[int]:
        """Send each function's LLVM IR text to a worker; the numbers of their objects."""
        numbers = []
        for text in llvm_ir:
            number = self._submitted
            self._submitted += 1
            ir_path = Path(self._scratch.name, f"{number}.ll")
            ir_path.write_text(text)
            self._worker().send(number, ir_path, Path(self._scratch.name, f"{number}.o"))
            numbers.append(number)
        return numbers

    def lower(self, key: str, lowering: Callable[[], list[str]]) -> None:
        """Compile part `key`, whose LLVM IR texts `lowering()` makes from IR in this process's
        memory: lowered in a child process when children are allowed (module docstring), else
        here; compiled in the background either way."""
        if self.max_children == 0 or threading.active_count() > 1:
            # Forking a process that runs other threads could copy a lock one of them holds.
            self.submit(key, lowering())
            return
        while len(self._children) >= self.max_children:
            self._reap()
        index = len(self._parts)
        self._parts.append((key, []))
        result = self._child_result(index)
        pid = os.fork()
        if pid == 0:  # the child: never returns
            _lower_and_exit(lowering, result)
        self._children[pid] = index
        self.misses += 1

    def _child_result(self, index: int) -> Path:
        return Path(self._scratch.name, f"part{index}.pickle")

    def _reap(self) -> None:
        """Wait for the oldest lowering child and submit its part's texts."""
        pid = next(iter(self._children))
        _, status = os.waitpid(pid, 0)
        index = self._children.pop(pid)
        key = self._parts[index][0]
        result = self._child_result(index)
        if not result.exists():
            raise JitError(
                f"the process lowering kernel part {index} died (status {status}) without a result"
            )
        outcome = pickle.loads(result.read_bytes())
        result.unlink()
        if "error" in outcome:
            raise outcome["error"]
        for name, seconds, cpu_seconds, count in outcome["stages"]:
            stage_times.add(name, seconds, cpu_seconds, count)
        self._parts[index] = (key, self._send(outcome["texts"]))

    def _worker(self) -> _Worker:
        """A worker to take the next function: a new one while fewer than allowed run, else the
        one sent the least IR so far."""
        if len(self._workers) < self.max_workers:
            self._workers.append(_Worker(self.target, self.exported, Path(self._scratch.name)))
            return self._workers[-1]
        return min(self._workers, key=lambda worker: worker.sent_bytes)

    def link(self) -> SharedObject:
        """Wait for the children and the workers, cache the new parts' objects and link every
        part."""
        with stage_times.stage("wait for lowering processes"):
            while self._children:
                self._reap()
        with stage_times.stage("wait for codegen workers"):
            replies: dict[int, dict] = {}
            for worker in self._workers:
                replies.update(worker.finish())
        errors = [reply["error"] for reply in replies.values() if "error" in reply]
        if errors:
            raise JitError(errors[0])
        stage_times.add(
            "worker: LLVM O3 + codegen",
            sum(reply["seconds"] for reply in replies.values()),
            sum(reply["cpu_seconds"] for reply in replies.values()),
        )
        code = []
        for key, part in self._parts:
            if isinstance(part, list):
                part = ObjectCode(
                    tuple(Path(self._scratch.name, f"{n}.o").read_bytes() for n in part),
                    tuple(sorted({name for n in part for name in replies[n]["imports"]})),
                    tuple(sorted({name for n in part for name in replies[n]["defines"]})),
                )
                if self.cache is not None:
                    self.cache.save(key, _pack(part))
            code.append(part)
        with stage_times.stage("link"):
            linked = link_objects(code, self.exported)
        peaks = [worker.peak_rss_bytes or 0 for worker in self._workers]
        self.close()
        return dataclasses.replace(linked, builder_peak_rss=max(peaks) if peaks else None)

    def close(self) -> None:
        """Stop the children and the workers and delete the scratch files."""
        for pid in self._children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self._children.clear()
        for worker in self._workers:
            worker.kill()
        self._workers.clear()
        self._scratch.cleanup()


class _Worker:
    """One `python -m lowering.codegen --objects` process and the functions sent to it. Its
    replies go to a file, read once it has finished: a pipe that nobody reads would stall it."""

    def __init__(self, target: Target, exported: list[str], scratch: Path) -> None:
        env = dict(os.environ)
        source_root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, env.get("PYTHONPATH")]))
        # Closed by `kill`: they live as long as the process.
        self.replies = tempfile.TemporaryFile("w+", dir=scratch)  # noqa: SIM115
        self.errors = tempfile.TemporaryFile("w+", dir=scratch)  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lowering.codegen", "--objects"],
            stdin=subprocess.PIPE,
            stdout=self.replies,
            stderr=self.errors,
            text=True,
            env=env,
        )
        self.numbers: list[int] = []
        self.sent_bytes = 0
        #: The process's peak resident memory, once it has finished.
        self.peak_rss_bytes: int | None = None
        self._write({"target": dataclasses.asdict(target), "exported": exported})

    def _write(self, request: dict[str, object]) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # the worker died; `finish` reports how

    def send(self, number: int, ir_path: Path, object_path: Path) -> None:
        """Ask for function `number`'s object."""
        self.numbers.append(number)
        self.sent_bytes += ir_path.stat().st_size
        self._write({"ir": str(ir_path), "object": str(object_path)})

    def finish(self) -> dict[int, dict]:
        """Close the input, wait for the worker and return its reply per function number."""
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        status = self.process.wait()
        self.replies.seek(0)
        lines = [json.loads(line) for line in self.replies if line.startswith("{")]
        if status != 0 or len(lines) != len(self.numbers) + 1:
            self.errors.seek(0)
            detail = " | ".join(self.errors.read().strip().splitlines()[-5:])
            raise JitError(
                f"the code generator (python -m lowering.codegen --objects) died with status "
                f"{status}" + (f": {detail}" if detail else "")
            )
        self.peak_rss_bytes = lines[-1].get("peak_rss_bytes")
        return dict(zip(self.numbers, lines[:-1], strict=True))

    def kill(self) -> None:
        """Stop the process if it still runs, and close its files."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        self.replies.close()
        self.errors.close()


def _lower_and_exit(lowering: Callable[[], list[str]], result: Path) -> NoReturn:
    """In a forked child: run `lowering`, write its texts, stage times or exception to
    `result` (atomically: the parent reads only a whole file) and exit at once, without the
    parent's exit handlers (they would delete the parent's scratch directory)."""
    status = 1
    try:
        gc.disable()  # a short-lived process: its garbage goes with it
        with stage_times.recording() as times:
            texts = list(lowering())
        stages = [
            (name, times.seconds[name], times.cpu_seconds[name], times.counts[name])
            for name in times.seconds
        ]
        outcome: dict[str, object] = {"texts": texts, "stages": stages}
        status = 0
    except BaseException as error:  # handed to the parent, which raises it
        outcome = {"error": _picklable(error)}
    try:
        partial = result.with_suffix(".partial")
        partial.write_bytes(pickle.dumps(outcome))
        os.replace(partial, result)
    finally:
        os._exit(status)


def _picklable(error: BaseException) -> BaseException:
    """`error` if it survives pickling, else a RuntimeError with its type and message."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


def _kernel_cache(cache_dir: str | os.PathLike[str] | None) -> _ObjectCache | None:
    chosen = cache_dir or os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "convir"
    return _ObjectCache.open(Path(chosen).expanduser() / "kernels")


def _pack(code: ObjectCode) -> SharedObject:
    """A part as a cache entry: its objects, each after its 8-byte length, in `data`; `exports`
    holds what it defines."""
    data = b"".join(len(obj).to_bytes(8, "little") + obj for obj in code.objects)
    return SharedObject(data, code.imports, code.defines)


def _unpack(entry: SharedObject) -> ObjectCode:
    objects, position, data = [], 0, entry.data
    while position < len(data):
        size = int.from_bytes(data[position : position + 8], "little")
        objects.append(data[position + 8 : position + 8 + size])
        position += 8 + size
    return ObjectCode(tuple(objects), entry.imports, entry.exports)
