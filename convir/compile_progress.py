"""The progress bar of a compile: `convir run` and `convir demo` show it on a terminal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class CompileProgress:
    """The progress bar of a compile (`tqdm` on stderr, shown only when it is a terminal): ops
    whose kernels are emitted, then the wait for the lowering and code-generator processes."""

    def __init__(self, enabled: bool) -> None:
        self._bar = None
        if enabled:
            from tqdm import tqdm

            # No monitor thread: a compile forks, and forks only while it runs no other thread
            # (`lowering.kernel_cache`).
            tqdm.monitor_interval = 0
            self._bar = tqdm(desc="convir: compiling", unit="op", leave=False, disable=None)

    def update(self, done: int, total: int) -> None:
        if self._bar is not None:
            self._bar.total = total
            self._bar.n = done
            self._bar.refresh()

    def finishing(self) -> None:
        if self._bar is not None:
            self._bar.set_description("convir: waiting for code generators")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextmanager
def progress_bar(enabled: bool) -> Iterator[CompileProgress]:
    """A `CompileProgress` (shown only when `enabled` and stderr is a terminal), closed after the
    block."""
    progress = CompileProgress(enabled)
    try:
        yield progress
    finally:
        progress.close()
