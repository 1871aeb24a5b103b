"""A busy core: another process spinning on one CPU while a benchmark runs (`--busy-core`).

Shared servers and laptops always have something else running. `BusyCore` starts a child Python
process that pins itself to one CPU with `os.sched_setaffinity` (in the child only: the
benchmark process keeps every CPU it had, and so do convir's and onnxruntime's threads) and
spins until the benchmark ends. A thread the kernel schedules on that CPU shares it with the
spinner, so it runs about half the time and is regularly descheduled for whole time slices: what
a parallel region must survive without making every other thread wait for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from types import TracebackType

from convir.bench import BenchError

_SPIN = (
    "import os, sys\n"
    "os.sched_setaffinity(0, {int(sys.argv[1])})\n"
    "print('spinning', flush=True)\n"
    "while True:\n"
    "    pass\n"
)


def default_busy_cpu() -> int:
    """The CPU to keep busy: the highest one this process may run on."""
    return max(os.sched_getaffinity(0))


class BusyCore:
    """Context manager: a process spinning on CPU `cpu` for as long as the block runs."""

    def __init__(self, cpu: int | None = None) -> None:
        allowed = os.sched_getaffinity(0)
        self.cpu = default_busy_cpu() if cpu is None else cpu
        if self.cpu not in allowed:
            raise BenchError(f"--busy-core: CPU {self.cpu} is not one of {sorted(allowed)}")
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> BusyCore:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SPIN, str(self.cpu)], stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        # Pinned and spinning before the first sample is taken.
        if self._process.stdout.readline().strip() != "spinning":
            self._stop()
            raise BenchError("--busy-core: the spinning process did not start")
        time.sleep(0.05)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _stop(self) -> None:
        if self._process is None:
            return
        self._process.kill()
        self._process.wait()
        assert self._process.stdout is not None
        self._process.stdout.close()
        self._process = None
