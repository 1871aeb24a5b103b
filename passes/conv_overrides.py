"""Per-conv overrides of `conv-select-algorithm` and `conv-tile`: their syntax and resolution.

One syntax serves the pass options and the `convir` command line (`--algorithm`, `--tile`):

    algorithms   CONV=ALGORITHM[,CONV=ALGORITHM...]          conv_3=im2col,conv_7=direct
    tiles        CONV:KNOB=VALUE[,KNOB=VALUE...][;CONV:...]   conv_3:ow_block=4,oc_blocks=2

CONV is a conv's `convir.name` ("conv_3") or the name of the ONNX node it was imported from (its
`onnx.name`); both are printed on every conv by `convir compile MODEL --emit scheduled` (see
`convir.dialects.conv_names`). For algorithms, CONV may also be `all`: the algorithm of every conv
not named otherwise, where that algorithm applies. Knob values are integers.
"""

from __future__ import annotations

from collections.abc import Mapping

from xdsl.utils.exceptions import PassFailedException

from convir.dialects.conv import Conv2DOp
from convir.dialects.conv_names import CONV_NAME, conv_name, convs_by_key
from convir.target import Target

#: The key of an algorithm override that applies to every conv.
ALL = "all"

#: The default of the passes' `winograd-tolerance` option, as written in a pipeline: the value
#: of `lowering.algorithms.winograd_error.DEFAULT_TOLERANCE` (not imported: passes load lowering
#: only when they run).
WINOGRAD_TOLERANCE = "1e-4"


def parse_target(name: str, where: str) -> Target:
    """The target an option names: `host` or a preset of `convir.target`."""
    try:
        return Target.host() if name == "host" else Target.preset(name)
    except ValueError as error:
        raise PassFailedException(f"{where}: option target: {error}") from None


def parse_tolerance_option(value: str | float, where: str) -> float:
    """The `winograd-tolerance` option of pass `where` as a float
    (`lowering.algorithms.winograd_error.parse_tolerance`)."""
    from lowering.algorithms.winograd_error import parse_tolerance

    try:
        return parse_tolerance(value)
    except ValueError as error:
        raise PassFailedException(f"{where}: option winograd-tolerance: {error}") from None


def parse_algorithms(text: str) -> dict[str, str]:
    """`CONV=ALGORITHM,...` -> {CONV: ALGORITHM}; ValueError naming the bad entry."""
    algorithms: dict[str, str] = {}
    for entry in _entries(text, ","):
        key, sep, algorithm = entry.rpartition("=")
        if not sep or not key.strip() or not algorithm.strip():
            raise ValueError(f"'{entry}' is not CONV=ALGORITHM (e.g. conv_3=im2col)")
        _add(algorithms, key.strip(), algorithm.strip(), entry)
    return algorithms


def parse_tiles(text: str) -> dict[str, dict[str, int]]:
    """`CONV:KNOB=VALUE,...;...` -> {CONV: {KNOB: VALUE}}; ValueError naming the bad entry."""
    tiles: dict[str, dict[str, int]] = {}
    for entry in _entries(text, ";"):
        key, sep, knobs = entry.rpartition(":")
        if not sep or not key.strip() or not knobs.strip():
            raise ValueError(f"'{entry}' is not CONV:KNOB=VALUE[,KNOB=VALUE...]")
        _add(tiles, key.strip(), _parse_knobs(knobs, entry), entry)
    return tiles


def parse_knobs(text: str) -> dict[str, int]:
    """`KNOB=VALUE,...` (the knobs of one tiles entry) -> {KNOB: VALUE}; ValueError naming the
    bad item."""
    knobs = _parse_knobs(text, text)
    if not knobs:
        raise ValueError(f"'{text}' is not KNOB=VALUE[,KNOB=VALUE...]")
    return knobs


def format_algorithm(key: str, algorithm: str) -> str:
    """One override as it is written, for error messages."""
    return f"{key}={algorithm}"


def format_tile(key: str, knobs: Mapping[str, int]) -> str:
    """One tile override as it is written, for error messages."""
    return f"{key}:" + ",".join(f"{knob}={value}" for knob, value in knobs.items())


def resolve(convs: list[Conv2DOp], entries: Mapping[str, str], where: str) -> dict[str, Conv2DOp]:
    """{key: the conv it names} for every key of `entries` (key -> the entry as written, for
    messages); PassFailedException for a key naming no conv or several, or two keys naming the
    same conv. Messages start `<where> '<entry>': `."""
    by_key = convs_by_key(convs)
    resolved: dict[str, Conv2DOp] = {}
    claimed: dict[Conv2DOp, str] = {}
    for key, entry in entries.items():
        designated = by_key.get(key, [])
        if not designated:
            raise PassFailedException(
                f"{where} '{entry}': no conv is named '{key}'; {_accepted(convs)}"
            )
        if len(designated) > 1:
            raise PassFailedException(
                f"{where} '{entry}': '{key}' names {len(designated)} convs; use their {CONV_NAME}"
            )
        op = designated[0]
        if op in claimed:
            raise PassFailedException(
                f"{where} '{entry}': names the same conv as '{claimed[op]}'; give it once"
            )
        claimed[op] = entry
        resolved[key] = op
    return resolved


def describe(op: Conv2DOp) -> str:
    """How error messages name a conv: `conv_3 ('conv.conv2d')`."""
    return f"{conv_name(op) or 'unnamed conv'} ('{op.name}')"


def _entries(text: str, separator: str) -> list[str]:
    entries = [entry.strip() for entry in text.split(separator)]
    return [entry for entry in entries if entry]


def _parse_knobs(text: str, entry: str) -> dict[str, int]:
    knobs: dict[str, int] = {}
    for item in _entries(text, ","):
        knob, sep, value = item.partition("=")
        try:
            number = int(value)
        except ValueError:
            number = 0
        if not sep or not knob.strip() or number < 1:
            raise ValueError(f"'{entry}': '{item}' is not KNOB=INTEGER >= 1 (e.g. ow_block=4)")
        _add(knobs, knob.strip(), number, entry)
    return knobs


def _add(mapping: dict, key: str, value: object, entry: str) -> None:
    if key in mapping:
        raise ValueError(f"'{entry}': '{key}' is given twice")
    mapping[key] = value


def _accepted(convs: list[Conv2DOp]) -> str:
    names = [name for name in map(conv_name, convs) if name is not None]
    if not names:
        return "the module has no conv"
    shown = ", ".join(names) if len(names) <= 6 else f"{', '.join(names[:3])}, ..., {names[-1]}"
    return (
        f"expected {shown} or a conv's onnx.name, as printed on each conv.conv2d by "
        "`convir compile MODEL --emit scheduled`"
    )
