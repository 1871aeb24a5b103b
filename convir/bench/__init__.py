"""`convir bench`: measured performance of convir against the machine's peak and onnxruntime.

- `peak`    the FP32 FMA peak of this machine, measured with a generated kernel (`peak.py`);
- `layers`  every distinct conv layer of standard CNNs as it runs inside the compiled model,
            beside onnxruntime's kernel for the same conv (`layers.py`, `conv_harness.py`,
            `onnxrt.py`);
- `models`  whole built-in models, convir against onnxruntime (`models.py`).

`timing.py` holds the timing discipline every benchmark shares (warm-up, calibrated samples,
interleaving, medians); `report.py` prints tables and draws plots. Everything here is a
library first; `convir.cli.bench` parses options and writes the JSON.
"""

from __future__ import annotations


class BenchError(Exception):
    """A benchmark that cannot run or would report something false; printed as one line."""
