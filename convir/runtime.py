"""`CompiledModel`: a compiled model called like an onnxruntime session.

The native entry point is `forward(inputs..., outputs..., weights, arena, threads)`: every
tensor argument is a bare pointer to a C-contiguous float32 buffer (see
`lowering.conv_to_loops`). This class owns the packed weights and a pool of arenas (one per
concurrent call, so several Python threads may call the model at once), checks every input's name,
shape and dtype before native code runs, and allocates the outputs.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lowering.conv_to_loops import ENTRY_POINT


@dataclass(frozen=True)
class TensorSpec:
    """Name and static shape of a graph input or output (always float32)."""

    name: str
    shape: tuple[int, ...]


class CompiledModel:
    """A model compiled to native code; `run(feed)` or `model(*arrays)`."""

    def __init__(
        self,
        library,
        inputs: Sequence[TensorSpec],
        outputs: Sequence[TensorSpec],
        weights: np.ndarray,
        arena_bytes: int,
        workspace_bytes: Mapping[str, int],
        threads: int | None = None,
        convs: Mapping[str, Mapping[str, object]] | None = None,
    ) -> None:
        self._library = library  # keeps the machine code alive as long as the model
        self.inputs, self.outputs = list(inputs), list(outputs)
        # A view, never a copy: the weights are the largest buffer a model has.
        self._weights = np.ascontiguousarray(weights).reshape(-1).view(np.uint8)
        self._arena_bytes = arena_bytes
        self._workspace_bytes = dict(workspace_bytes)
        self._convs = {name: dict(entry) for name, entry in (convs or {}).items()}
        self.threads = threads or len(os.sched_getaffinity(0))
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        argtypes = [ctypes.c_void_p] * (len(self.inputs) + len(self.outputs) + 2) + [ctypes.c_int32]
        self._forward = library.function(ENTRY_POINT, None, argtypes)
        self._arenas: list[np.ndarray] = []
        self._lock = threading.Lock()

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [spec.name for spec in self.outputs]

    def check(self, feed: Mapping[str, np.ndarray]) -> None:
        """Raise ValueError unless `feed` gives every input, by name, with its shape and dtype."""
        unknown = sorted(set(feed) - set(self.input_names))
        missing = [name for name in self.input_names if name not in feed]
        if unknown or missing:
            raise ValueError(
                f"inputs {unknown} are unknown and {missing} are missing; "
                f"the model takes {self.input_names}"
            )
        for spec in self.inputs:
            self._checked(spec, feed[spec.name])

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by name for inputs given by name (all inputs, nothing else)."""
        self.check(feed)
        results = self(*(feed[name] for name in self.input_names))
        return dict(zip(self.output_names, results, strict=True))

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """Outputs in order for inputs in order."""
        if len(arrays) != len(self.inputs):
            raise ValueError(
                f"the model takes {len(self.inputs)} inputs {self.input_names}, got {len(arrays)}"
            )
        inputs = [
            self._checked(spec, array) for spec, array in zip(self.inputs, arrays, strict=True)
        ]
        outputs = [np.empty(spec.shape, np.float32) for spec in self.outputs]
        arena = self._take_arena()
        try:
            pointers = [a.ctypes.data for a in (*inputs, *outputs, self._weights, arena)]
            self._forward(*pointers, self.threads)
        finally:
            with self._lock:
                self._arenas.append(arena)
        return outputs

    def memory_report(self) -> dict[str, object]:
        """Bytes of the packed weights, of the arena (activations and workspaces), of the
        workspace of each kernel that has one, each conv's algorithm and workspace bytes
        (`convs`: {convir.name: {"algorithm", "workspace_bytes"}}), and the peak resident bytes
        of the code generator worker that built the machine code (None when it came from the
        cache)."""
        return {
            "weights_bytes": int(self._weights.size),
            "arena_bytes": self._arena_bytes,
            "workspace_bytes": dict(self._workspace_bytes),
            "convs": {name: dict(entry) for name, entry in self._convs.items()},
            "codegen_peak_rss_bytes": getattr(self._library, "builder_peak_rss", None),
        }

    def _checked(self, spec: TensorSpec, array: np.ndarray) -> np.ndarray:
        if not isinstance(array, np.ndarray):
            raise ValueError(
                f"input '{spec.name}' must be a numpy array, got {type(array).__name__}"
            )
        if array.dtype != np.float32:
            raise ValueError(f"input '{spec.name}' has dtype {array.dtype}; expected float32")
        if array.shape != spec.shape:
            raise ValueError(
                f"input '{spec.name}' has shape {list(array.shape)}; expected {list(spec.shape)}"
            )
        return np.ascontiguousarray(array)

    def _take_arena(self) -> np.ndarray:
        with self._lock:
            if self._arenas:
                return self._arenas.pop()
        return np.zeros(max(self._arena_bytes, 1), np.uint8)
