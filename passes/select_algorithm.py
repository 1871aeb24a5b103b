"""`conv-select-algorithm`: choose the algorithm of every `conv.conv2d`.

Expects graph-form IR, NCHW or NCHWc. Sets each conv's `algorithm` and nothing else (filling the
schedule's knobs is `conv-tile`'s job), and names every conv that has no `convir.name` yet
(`convir.dialects.conv_names`): names are the keys of per-conv overrides.

The heuristic, a starting point to be tuned with measurements. Candidates are tried in this order;
the first that exists (is in `lowering.algorithms.ALGORITHMS`) and applies to the conv (its
`applicable(op)`) wins, and the other algorithms of ALGORITHMS follow as a last resort:

1. `depthwise` for depthwise convs (group = C = O);
2. `gemm1x1` for 1×1 convs with group 1 and no padding on NCHWc (a plain GEMM, no column buffer);
3. `winograd` for 3×3 stride-1 dense convs on NCHWc with at least 64 input and 64 output
   channels (`lowering.algorithms.winograd.faster_than_gemm`), provided some m is within the
   `winograd-tolerance` (`lowering.algorithms.winograd_error`; with none, the conv falls
   through to 4). Measured on AVX2 Zen 3 (16 vector registers), 1 thread, CPU ms of the conv
   as the model runs it, medians of 7 interleaved samples, load average 7-12
   (`python examples/benchmarks/winograd_selection.py resnet18,resnet50,vgg16`; the heuristic
   m marked *):

       conv (C×HW->O)   direct  im2col      F(2,3)    F(4,3)    F(6,3)   best other / winograd*
       64×56->64         3.64    3.64       1.68      1.20*     1.34     3.03
       128×28->128       4.77    3.79       1.79      1.34*     1.79     2.83
       256×14->256       4.15    5.14       2.39*     2.38      3.01     1.74
       512×7->512        5.73    8.16       4.01*     4.59      8.08     1.43
       64×224->64       64.0    67.7       37.5      35.8      31.5*     2.03
       64×112->128      33.1    33.7       17.6      16.0      13.7*     2.42
       128×112->128     57.0    59.8       29.7      26.2      21.4*     2.66
       128×56->256      42.1    33.4       18.1      12.9*     13.4      2.59
       256×56->256      88.3    86.0       39.0      25.6*     24.1      3.36
       256×28->512      38.2    38.1       18.9      12.5*     11.8      3.04
       512×28->512      93.8   116.7       32.5      20.6*     21.3      4.56
       512×14->512      15.6    30.7        8.40*     9.10     12.1      1.86

   Every m is faster than direct and im2col on every one of these layers (F(2,3), the only m
   a tolerance of 1e-6 leaves, by 1.4-2.9×), so the rule needs no size limit within them. At
   2 threads the per-layer comparison could not be measured meaningfully on this shared machine
   (load 11 on 2 cores: wall times moved in steps of the scheduler's time slice, ~20 ms); the
   rule is taken over from 1 thread, since winograd splits its tiles (or, on small images, its
   weight panels) between the workers as im2col does; `convir bench models --threads 2` is
   the check. Convs with fewer than 64 channels were not measured (the only one in these
   models, VGG's 3-channel stem, reads NCHW, where winograd does not apply), so the rule leaves
   them to direct/im2col. Only AVX2 was measured; the rule applies to every target (2.25-5×
   fewer multiplies than the GEMMs) until a measurement there says otherwise.
4. `direct` then `im2col` when the weights one direct register tile runs over fit in half of L2
   (`lowering.algorithms.direct.streams_weights_from_l2`), else `im2col` then `direct`.
   Measured on Zen 4 with AVX-512 (`convir bench layers --models resnet50 --algorithm
   direct|im2col`, 1 thread, 4×4 direct tiles): direct wins the 7×7 stem 3→64 (106 vs 92
   GFLOP/s; im2col's panel fill is 147 scalar taps per pixel for one panel of 64 channels) and
   the 3×3 convs with 64 and 128 input channels (113 vs 107, 111 vs 106); im2col wins at 256 and
   512 input channels (512→512 s2 @14: 108 vs 89), whose tile weights leave L2. Direct remains
   for what im2col does not take: NCHW convs and grouped convs that are not depthwise.

Precedence for one conv: an `algorithm` option entry naming it; else an `algorithm` already in the
IR (pinned by hand or by a tuner: kept, after checking it exists and applies); else the option's
`all` entry if that algorithm applies to the conv; else the heuristic.

Options:
- `target`: `host` (default) or a preset of `convir.target`; the heuristic reads its vector width.
- `winograd-tolerance`: the largest expected relative error of a Winograd m that rule 3 may
  rely on (default 1e-4; `lowering.algorithms.winograd_error` has the measured table), e.g.
  `conv-select-algorithm{winograd-tolerance=1e-6}`; 0 selects winograd nowhere. A conv pinned
  to winograd (by hand, an `algorithm` entry or a tuner) keeps it whatever the tolerance.
- `algorithm`: overrides, `CONV=ALGORITHM[,CONV=ALGORITHM...]` with CONV a conv's `convir.name`,
  its `onnx.name` or `all` (syntax: `passes.conv_overrides`), e.g.
  `conv-select-algorithm{algorithm="conv_3=im2col,conv_7=direct,all=direct"}`. An entry that
  changes a pinned algorithm drops the conv's schedule, whose knobs belonged to the old one.

Errors (PassFailedException naming the conv, the option entry and what is accepted): a key that
names no conv, an unknown algorithm, an algorithm forced on a conv it does not apply to, a pinned
algorithm that is unknown or does not apply, a conv no algorithm applies to, a
`winograd-tolerance` that is not a finite number >= 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from convir.dialects.conv import Conv2DOp
from convir.dialects.conv_names import name_convs
from convir.target import Target
from passes.conv_overrides import (
    ALL,
    WINOGRAD_TOLERANCE,
    describe,
    format_algorithm,
    parse_algorithms,
    parse_target,
    parse_tolerance_option,
    resolve,
)

PASS = "conv-select-algorithm"


def preferred_algorithms(
    op: Conv2DOp, target: Target, winograd_tolerance: float | None = None
) -> list[str]:
    """The heuristic's candidates for `op`, best first (see the module docstring);
    `winograd_tolerance` defaults to `winograd_error.DEFAULT_TOLERANCE`."""
    from lowering.algorithms import direct, winograd
    from lowering.algorithms.common import ConvGeometry

    g = ConvGeometry.of(op)
    order = []
    if g.group == g.c == g.o:
        order.append("depthwise")
    if (g.kh, g.kw) == (1, 1) and g.group == 1 and g.block is not None and not g.needs_padding:
        order.append("gemm1x1")
    if winograd.applicable(op) and winograd.faster_than_gemm(op, winograd_tolerance):
        order.append("winograd")
    if direct.streams_weights_from_l2(op, target):
        return [*order, "direct", "im2col"]
    return [*order, "im2col", "direct"]


def choose_algorithm(
    op: Conv2DOp,
    target: Target,
    algorithms: Mapping[str, ModuleType] | None = None,
    winograd_tolerance: float | None = None,
) -> str:
    """The heuristic's algorithm for `op` among `algorithms` (default: all of ALGORITHMS)."""
    algorithms = _algorithms() if algorithms is None else algorithms
    preferred = [
        name for name in preferred_algorithms(op, target, winograd_tolerance) if name in algorithms
    ]
    for name in [*preferred, *(name for name in algorithms if name not in preferred)]:
        if algorithms[name].applicable(op):
            return name
    raise PassFailedException(
        f"{PASS}: no algorithm applies to {describe(op)} (tried {', '.join(algorithms)}; every "
        "algorithm needs constant weights and bias)"
    )


def select_algorithms(
    module: ModuleOp,
    target: Target,
    algorithms: Mapping[str, str] | None = None,
    winograd_tolerance: float | None = None,
) -> None:
    """Name every conv of `module` and set its algorithm: `algorithms` maps conv keys (and `all`)
    to algorithm names, then pinned algorithms, then the heuristic (see the module docstring),
    which picks winograd only where an m within `winograd_tolerance` exists."""
    overrides = dict(algorithms or {})
    for key, name in overrides.items():
        _check_known(name, format_algorithm(key, name))
    default = overrides.pop(ALL, None)
    convs = name_convs(module)
    entries = {key: format_algorithm(key, name) for key, name in overrides.items()}
    forced = {op: key for key, op in resolve(convs, entries, f"{PASS}: algorithm").items()}
    for op in convs:
        if op in forced:
            _force(op, overrides[forced[op]], entries[forced[op]])
        elif op.algorithm is not None:
            _check_applies(op, op.algorithm.data, "pinned in the IR")
        elif default is not None and _algorithms()[default].applicable(op):
            op.algorithm = StringAttr(default)
        else:
            op.algorithm = StringAttr(choose_algorithm(op, target, None, winograd_tolerance))


@dataclass(frozen=True)
class SelectAlgorithmPass(ModulePass):
    """Choose the algorithm of every conv: overrides, pinned, heuristic (see module doc)."""

    name = PASS

    target: str = "host"
    algorithm: str = ""
    # A string as well: xDSL's option parser reads 1e-4 as a string, 0.001 as a float.
    winograd_tolerance: str | float | int = WINOGRAD_TOLERANCE

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        try:
            algorithms = parse_algorithms(self.algorithm)
        except ValueError as error:
            raise PassFailedException(f"{PASS}: option algorithm: {error}") from None
        tolerance = parse_tolerance_option(self.winograd_tolerance, PASS)
        select_algorithms(op, parse_target(self.target, PASS), algorithms, tolerance)


def _algorithms() -> Mapping[str, ModuleType]:
    from lowering.algorithms import ALGORITHMS

    return ALGORITHMS


def _check_known(name: str, entry: str) -> None:
    if name not in _algorithms():
        raise PassFailedException(
            f"{PASS}: algorithm '{entry}': unknown algorithm '{name}'; expected one of "
            f"{', '.join(_algorithms())}"
        )


def _force(op: Conv2DOp, name: str, entry: str) -> None:
    _check_applies(op, name, f"forced by algorithm '{entry}'")
    if op.algorithm is not None and op.algorithm.data != name:
        op.properties.pop("schedule", None)
    op.algorithm = StringAttr(name)


def _check_applies(op: Conv2DOp, name: str, why: str) -> None:
    algorithms = _algorithms()
    if name not in algorithms:
        raise PassFailedException(
            f"{PASS}: {describe(op)}: algorithm '{name}' ({why}) is unknown; expected one of "
            f"{', '.join(algorithms)}"
        )
    if not algorithms[name].applicable(op):
        applicable = [other for other, module in algorithms.items() if module.applicable(op)]
        raise PassFailedException(
            f"{PASS}: {describe(op)}: algorithm '{name}' ({why}) does not apply to this conv; "
            f"applicable: {', '.join(applicable) or 'none'}"
        )
