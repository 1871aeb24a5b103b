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
   On 16-register (AVX2) targets, `im2win` goes before both for 3×3 convs with group 1 on
   NCHWc (`lowering.algorithms.im2win.measured_faster`): measured on znver3 (AVX2), 1 thread,
   thread CPU time (`examples/benchmarks/im2win_vs.py --models resnet50,vgg16`), it beat the
   better of direct and im2col on all 15 distinct 3×3 layers of ResNet-50 and VGG-16 by
   1.07–1.70× (geomean 1.29×). Not measured on AVX-512: there the order above stands. It comes
   after `winograd`, which was faster than im2win on every layer it takes (im2win takes
   1.1–2.7× winograd's time, same run), so im2win runs ResNet-50's stride-2 3×3 convs.
   A dilated conv with at least 15 % of its multiply-adds on padding takes `direct` first,
   then `im2win` where it leads otherwise, then `im2col`
   (`lowering.algorithms.direct.skips_much_padding`): direct skips padded kernel rows and
   columns, which the window and panel algorithms compute. Measured on znver3
   (AVX2), 1 thread: DeepLabV3's ASPP conv (3×3, dilation 12 on 14×14) ~2× faster than im2win,
   FCN-ResNet50's dilation-4 convs ~1.5×; its dilation-2 convs (10 % padding) stay on im2win.

Precedence for one conv: an `algorithm` option entry naming it; else an `algorithm` already in the
IR (pinned by hand or by a tuner: kept, after checking it exists and applies); else the option's
`all` entry if that algorithm applies to the conv; else a record of the tuning database (its
algorithm and its whole schedule, which conv-tile then keeps); else the heuristic. Each conv's
`convir.choice` attribute says which: `option`, `pinned`, `tuned` (or `tuned-nearest (<cpu>)`
for a compatible target's record) or `heuristic`; it is a placement attribute (not part of a
kernel's identity, `lowering.kernels.PLACEMENT_ATTRIBUTES`).

**Workspace budget.** With the `workspace-budget` option (bytes: `65536`, `64KiB`, `1MiB`;
`passes.workspace_budget`), the heuristic's order above is filtered: each applicable algorithm
in turn is asked for the workspace of its heuristic schedule, then of its `candidates` (smaller
blocks); the first algorithm with a schedule that fits wins, and when that is not the heuristic's
own schedule it is pinned on the conv (`conv-tile` keeps pinned knobs). `direct` and `depthwise`
need none, so they take the convs where the GEMM algorithms' panels do not fit. The `all` entry
is taken only where it fits (else the heuristic, within the budget); a conv named in the
`algorithm` option or pinned in the IR keeps its algorithm whatever its workspace. A budget no
applicable algorithm fits is an error naming the conv and the smallest workspace available.

Options:
- `target`: `host` (default) or a preset of `convir.target`; the heuristic reads its vector width.
- `tuning-db`: a tuning database (`convir tune`; `default` for the default location); `threads`
  the thread count its records are for (default: the target's cores); `nearest-target`: also
  use records of a compatible target (same ISA and vector width) when this one has none.
- `winograd-tolerance`: the largest expected relative error of a Winograd m that rule 3 may
  rely on (default 1e-4; `lowering.algorithms.winograd_error` has the measured table), e.g.
  `conv-select-algorithm{winograd-tolerance=1e-6}`; 0 selects winograd nowhere. A conv pinned
  to winograd (by hand, an `algorithm` entry or a tuner) keeps it whatever the tolerance.
- `algorithm`: overrides, `CONV=ALGORITHM[,CONV=ALGORITHM...]` with CONV a conv's `convir.name`,
  its `onnx.name` or `all` (syntax: `passes.conv_overrides`), e.g.
  `conv-select-algorithm{algorithm="conv_3=im2col,conv_7=direct,all=direct"}`. An entry that
  changes a pinned algorithm drops the conv's schedule, whose knobs belonged to the old one.
- `workspace-budget`: the most bytes of workspace one conv may take (above); empty: no limit.

Errors (PassFailedException naming the conv, the option entry and what is accepted): a key that
names no conv, an unknown algorithm, an algorithm forced on a conv it does not apply to, a pinned
algorithm that is unknown or does not apply, a conv no algorithm applies to, a
`winograd-tolerance` that is not a finite number >= 0, a workspace budget that is not a byte
count or that no applicable algorithm fits, a tuning database that cannot be opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

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
from passes.workspace_budget import fit, format_bytes, parse_bytes, workspace_bytes

if TYPE_CHECKING:
    from convir.tuning.records import TuningRecords

PASS = "conv-select-algorithm"
#: The attribute saying where a conv's choice came from (module doc).
CHOICE_ATTRIBUTE = "convir.choice"


def preferred_algorithms(
    op: Conv2DOp, target: Target, winograd_tolerance: float | None = None
) -> list[str]:
    """The heuristic's candidates for `op`, best first (see the module docstring);
    `winograd_tolerance` defaults to `winograd_error.DEFAULT_TOLERANCE`."""
    from lowering.algorithms import direct, im2win, winograd
    from lowering.algorithms.common import ConvGeometry

    g = ConvGeometry.of(op)
    order = []
    if g.group == g.c == g.o:
        order.append("depthwise")
    if (g.kh, g.kw) == (1, 1) and g.group == 1 and g.block is not None and not g.needs_padding:
        order.append("gemm1x1")
    if winograd.applicable(op) and winograd.faster_than_gemm(op, winograd_tolerance):
        order.append("winograd")
    if direct.skips_much_padding(op):
        window = ["im2win"] if im2win.measured_faster(op, target) else []
        return [*order, "direct", *window, "im2col"]
    if im2win.measured_faster(op, target):
        order.append("im2win")
    if direct.streams_weights_from_l2(op, target):
        return [*order, "direct", "im2col"]
    return [*order, "im2col", "direct"]


def choose_algorithm(
    op: Conv2DOp,
    target: Target,
    algorithms: Mapping[str, ModuleType] | None = None,
    *,
    workspace_budget: int | None = None,
    winograd_tolerance: float | None = None,
) -> str:
    """The heuristic's algorithm for `op` among `algorithms` (default: all of ALGORITHMS); with
    a `workspace_budget` (bytes), the first of them whose workspace fits, whose schedule is then
    pinned on `op` when the heuristic's own does not fit (see the module docstring)."""
    algorithms = _algorithms() if algorithms is None else algorithms
    preferred = [
        name for name in preferred_algorithms(op, target, winograd_tolerance) if name in algorithms
    ]
    order = [*preferred, *(name for name in algorithms if name not in preferred)]
    applicable = [name for name in order if algorithms[name].applicable(op)]
    if not applicable:
        raise PassFailedException(
            f"{PASS}: no algorithm applies to {describe(op)} (tried {', '.join(algorithms)}; "
            "every algorithm needs constant weights and bias)"
        )
    if workspace_budget is None:
        return applicable[0]
    smallest = {}
    for name in applicable:
        fitted = fit(op, algorithms[name], target, workspace_budget)
        if fitted.schedule is not None:
            if not fitted.heuristic:  # algorithm first: the order the IR prints them in
                op.algorithm = StringAttr(name)
                op.schedule = fitted.schedule.to_attr()
            return name
        smallest[name] = fitted.smallest_bytes
    name = min(smallest, key=smallest.__getitem__)
    raise PassFailedException(
        f"{PASS}: option workspace-budget {format_bytes(workspace_budget)}: no algorithm fits "
        f"{describe(op)}; the smallest workspace available is {format_bytes(smallest[name])}, "
        f"with {name}"
    )


def select_algorithms(
    module: ModuleOp,
    target: Target,
    algorithms: Mapping[str, str] | None = None,
    *,
    workspace_budget: int | None = None,
    winograd_tolerance: float | None = None,
    records: TuningRecords | None = None,
) -> None:
    """Name every conv of `module` and set its algorithm: `algorithms` maps conv keys (and `all`)
    to algorithm names, then pinned algorithms, then `records` of a tuning database, then the
    heuristic, within `workspace_budget` bytes when given and taking winograd only where an m
    within `winograd_tolerance` exists (see the module docstring)."""
    overrides = dict(algorithms or {})
    for key, name in overrides.items():
        _check_known(name, format_algorithm(key, name))
    default = overrides.pop(ALL, None)
    convs = name_convs(module)
    entries = {key: format_algorithm(key, name) for key, name in overrides.items()}
    forced = {op: key for key, op in resolve(convs, entries, f"{PASS}: algorithm").items()}
    for op in convs:
        source = "option"
        if op in forced:
            _force(op, overrides[forced[op]], entries[forced[op]])
        elif op.algorithm is not None:
            _check_applies(op, op.algorithm.data, "pinned in the IR")
            source = "pinned"
        elif (tuned := _tuned(op, records, default, workspace_budget)) is not None:
            op.algorithm = StringAttr(tuned.algorithm)
            op.schedule = tuned.schedule
            source = tuned.source
        else:
            name, source = _default(op, target, default, workspace_budget, winograd_tolerance)
            op.algorithm = StringAttr(name)
        if CHOICE_ATTRIBUTE not in op.attributes or source != "pinned":
            op.attributes[CHOICE_ATTRIBUTE] = StringAttr(source)


def _tuned(op: Conv2DOp, records: TuningRecords | None, default: str | None, budget: int | None):
    """The tuning record's choice for `op`, unless the `all` entry applies to it or the record's
    workspace exceeds the budget."""
    if records is None or (default is not None and _algorithms()[default].applicable(op)):
        return None
    tuned = records.choice(op)
    if tuned is None or budget is None:
        return tuned
    schedule = _algorithms()[tuned.algorithm].SCHEDULE.from_attr(tuned.schedule)
    return tuned if workspace_bytes(op, tuned.algorithm, schedule) <= budget else None


def _default(
    op: Conv2DOp, target: Target, default: str | None, budget: int | None, tolerance: float | None
) -> tuple[str, str]:
    """The `all` entry's algorithm where it applies (and fits the budget), else the heuristic's;
    and which of the two it is (`option` or `heuristic`)."""
    if default is not None and _algorithms()[default].applicable(op):
        module = _algorithms()[default]
        if budget is None or fit(op, module, target, budget).schedule is not None:
            name = choose_algorithm(
                op, target, {default: module}, workspace_budget=budget, winograd_tolerance=tolerance
            )
            return name, "option"
    name = choose_algorithm(op, target, workspace_budget=budget, winograd_tolerance=tolerance)
    return name, "heuristic"


@dataclass(frozen=True)
class SelectAlgorithmPass(ModulePass):
    """Choose the algorithm of every conv: overrides, pinned, heuristic (see module doc)."""

    name = PASS

    target: str = "host"
    algorithm: str = ""
    workspace_budget: str = ""
    # A string as well: xDSL's option parser reads 1e-4 as a string, 0.001 as a float.
    winograd_tolerance: str | float | int = WINOGRAD_TOLERANCE
    tuning_db: str = ""
    threads: int = 0
    nearest_target: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        try:
            algorithms = parse_algorithms(self.algorithm)
        except ValueError as error:
            raise PassFailedException(f"{PASS}: option algorithm: {error}") from None
        try:
            budget = parse_bytes(self.workspace_budget) if self.workspace_budget else None
        except ValueError as error:
            raise PassFailedException(f"{PASS}: option workspace-budget: {error}") from None
        tolerance = parse_tolerance_option(self.winograd_tolerance, PASS)
        target = parse_target(self.target, PASS)
        records = tuning_records(PASS, self.tuning_db, target, self.threads, self.nearest_target)
        select_algorithms(
            op,
            target,
            algorithms,
            workspace_budget=budget,
            winograd_tolerance=tolerance,
            records=records,
        )


def tuning_records(
    pass_name: str, path: str, target: Target, threads: int, nearest: bool
) -> TuningRecords | None:
    """The records of the `tuning-db` option of `pass_name` (None when it is empty)."""
    if not path:
        return None
    from convir.tuning.database import TuningDatabaseError
    from convir.tuning.records import open_records

    try:
        return open_records(path, target, threads or None, nearest)
    except TuningDatabaseError as error:
        raise PassFailedException(f"{pass_name}: option tuning-db: {error}") from None


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
