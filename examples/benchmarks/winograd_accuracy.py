"""fp32 error of Winograd F(m×m, 3×3) per m over the 3×3 stride-1 convs of built-in models:

    python examples/benchmarks/winograd_accuracy.py resnet18,resnet50,vgg16

For each distinct 3×3 stride-1 conv (as `convir bench layers` takes them: after convir's fusion
passes, 224×224, batch 1; He-normal weights, N(0, 1) input, small bias, from
`convir.bench.conv_harness.layer_data`), the relative error max|y - y64| / max|y64| of

- `fp32 direct`: the conv as one fp32 GEMM (im2col, sgemm's fp32 accumulation), and
- `F(m,3)` for m = 2, 4, 6: the Winograd algorithm of `lowering.algorithms.winograd` emulated in
  numpy float32 step by step (U = G g Gᵀ in float64 rounded to fp32, as the compile-time packer
  does; V = Bᵀ d B, the α² channel sums and Aᵀ M A in fp32),

against y64, the same GEMM in float64 (`convir.reference.conv2d` accumulates in float64 but
returns float32, so it serves as neither). Rows are layers; the last row is the max over layers.
"""

from __future__ import annotations

import sys

import numpy as np

from convir import reference
from convir.bench.conv_harness import layer_data
from convir.bench.workloads import ConvLayer, select_layers
from lowering.algorithms.winograd_transforms import cook_toom

MS = (2, 4, 6)


def winograd_fp32(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, pads, m: int):
    """Conv of NCHW `x` (batch 1) by F(m×m, 3×3) in fp32, as the native kernel computes it."""
    t = cook_toom(m)
    alpha = t.alpha
    at = np.array(t.at, np.float64).astype(np.float32)
    bt = np.array(t.bt, np.float64).astype(np.float32)
    g = np.array(t.g, np.float64)
    top, left, bottom, right = pads
    _, c, h, w = x.shape
    oh, ow = h + top + bottom - 2, w + left + right - 2
    th, tw = -(-oh // m), -(-ow // m)
    padded = np.zeros((c, th * m + 2, tw * m + 2), np.float32)
    padded[:, top : top + h, left : left + w] = x[0][:, : th * m + 2 - top, : tw * m + 2 - left]
    rows = np.arange(th)[:, None] * m + np.arange(alpha)
    columns = np.arange(tw)[:, None] * m + np.arange(alpha)
    tiles = padded[:, rows[:, None, :, None], columns[None, :, None, :]]  # C, TH, TW, α, α
    v = np.einsum("ik,cyxkl,jl->ijyxc", bt, tiles, bt).reshape(alpha * alpha, th * tw, c)
    u = np.einsum("ik,ockl,jl->ijco", g, weight.astype(np.float64), g).astype(np.float32)
    products = np.matmul(v, u.reshape(alpha * alpha, c, -1))  # α², tiles, O
    products = products.reshape(alpha, alpha, th, tw, -1)
    y = np.einsum("ik,klyxo,jl->oyixj", at, products, at).reshape(-1, th * m, tw * m)
    y = y[:, :oh, :ow]
    if bias is not None:
        y = y + bias[:, None, None]
    return y[None]


def gemm_conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, pads, dtype):
    """3×3 stride-1 conv of NCHW `x` (batch 1) as one GEMM in `dtype`."""
    top, left, bottom, right = pads
    padded = np.pad(x[0].astype(dtype), ((0, 0), (top, bottom), (left, right)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))
    c, oh, ow = windows.shape[:3]
    columns = windows.transpose(0, 3, 4, 1, 2).reshape(c * 9, oh * ow)
    y = weight.astype(dtype).reshape(weight.shape[0], -1) @ columns
    if bias is not None:
        y = y + bias.astype(dtype)[:, None]
    return y.reshape(1, -1, oh, ow)


def relative_error(y: np.ndarray, y64: np.ndarray) -> float:
    return float(np.abs(y.astype(np.float64) - y64).max() / np.abs(y64).max())


def layer_errors(layer: ConvLayer) -> list[float]:
    """[fp32 direct, F(2,3), F(4,3), F(6,3)] relative errors of `layer`."""
    x, weight, bias = layer_data(layer)
    pads = list(layer.pads)
    y64 = gemm_conv(x, weight, bias, pads, np.float64)
    reference_y = reference.conv2d(x, weight, bias, pads=pads)
    assert relative_error(reference_y, y64) < 1e-6, "the float64 GEMM is not the conv"
    errors = [relative_error(gemm_conv(x, weight, bias, pads, np.float32), y64)]
    errors += [relative_error(winograd_fp32(x, weight, bias, pads, m), y64) for m in MS]
    return errors


def main(models: str) -> None:
    layers = [
        layer
        for layer in select_layers(models.split(","))
        if layer.kernel == (3, 3) and layer.strides == (1, 1) and layer.group == 1
    ]
    header = f"{'layer':40s} {'shape':22s} {'fp32 direct':>11s}" + "".join(
        f" {f'F({m},3)':>9s}" for m in MS
    )
    print(header)
    worst = [0.0] * (1 + len(MS))
    for layer in layers:
        errors = layer_errors(layer)
        worst = [max(a, b) for a, b in zip(worst, errors, strict=True)]
        shape = f"{layer.channels}x{layer.height}x{layer.width}->{layer.out_channels}"
        print(f"{layer.name:40s} {shape:22s}" + "".join(f" {e:9.2e}" for e in errors))
    print(f"{'max over layers':63s}" + "".join(f" {e:9.2e}" for e in worst))
    ratios = " ".join(f"F({m},3) {e / worst[0]:.1f}x" for m, e in zip(MS, worst[1:], strict=True))
    print(f"ratio to fp32 direct: {ratios}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "resnet18,resnet50,vgg16")
