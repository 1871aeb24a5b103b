"""Decomposed GELU, Mish and layer norm in ONNX graphs, recognised as one node each before import.

Exporters spell operators that ONNX gained late as chains of elementary nodes. PyTorch at opset
17 writes GELU as `Div(x, √2) → Erf → Add 1 → Mul x → Mul ½`, and its tanh form as
`x·x·x (or Pow 3) → Mul 0.044715 → Add x → Mul √(2/π) → Tanh → Add 1 → Mul x → Mul ½`; Mish
(even at opset 18) as `Softplus → Tanh → Mul x`; and before opset 17 a layer norm as
`ReduceMean → Sub → Pow 2 → ReduceMean → Add ε → Sqrt → Div`, usually followed by
`Mul γ → Add β`. Imported node by node, each chain would be several kernels with a tensor in
memory between each; recognised, it is one `Gelu` or `Mish` node (one activation, which epilogue
fusion can move into a conv) or one `LayerNormalization` node (one kernel).

`fuse_decomposed(graph)` returns the graph's node list with every such chain replaced by one
node, placed where the chain's last node was (so every input of the chain is defined by then)
and writing that node's output. A chain is replaced only when it computes exactly that function:
its constants are checked by value (initializers and `Constant` nodes), every intermediate value
is used only inside the chain and is not a graph output, and the layer norm's axes are the
trailing ones, given as negative axes (what PyTorch writes). Anything else is left as it was.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

_CONSTANT_TOLERANCE = 1e-4
"""Relative tolerance on the constants of a chain (exporters round √2, √(2/π) differently)."""


@dataclass
class _Graph:
    """What matching needs to know of a graph: producers, consumers, constant values."""

    nodes: list[onnx.NodeProto]
    outputs: set[str]
    # Stored tensors stay protos until a match asks for one (a model's weights are not read twice;
    # a damaged tensor is left for the importer to report by name).
    constants: dict[str, np.ndarray | onnx.TensorProto] = field(default_factory=dict)
    producer: dict[str, onnx.NodeProto] = field(default_factory=dict)
    consumers: dict[str, list[onnx.NodeProto]] = field(default_factory=dict)

    @classmethod
    def of(cls, graph: onnx.GraphProto) -> _Graph:
        # One list of the node objects, held for the whole match: protobuf makes a new wrapper
        # on every access to a repeated field, so only these objects have stable identities.
        view = cls(list(graph.node), {o.name for o in graph.output})
        view.constants = {i.name: i for i in graph.initializer}
        for node in view.nodes:
            for name in node.output:
                view.producer[name] = node
            for name in node.input:
                view.consumers.setdefault(name, []).append(node)
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                for attribute in node.attribute:
                    if attribute.name == "value":
                        view.constants[node.output[0]] = attribute.t
                    elif attribute.name == "value_float":
                        view.constants[node.output[0]] = np.float32(attribute.f)
        return view

    def constant(self, name: str) -> np.ndarray | None:
        """The value of constant `name`; None if it is not one, or if its data cannot be read
        (external or damaged: then no chain matches, and the importer names the tensor)."""
        value = self.constants.get(name)
        if isinstance(value, onnx.TensorProto):
            if value.data_location == onnx.TensorProto.EXTERNAL:
                return None
            try:
                value = numpy_helper.to_array(value)
            except (ValueError, TypeError):
                return None
            self.constants[name] = value
        return value

    def is_scalar(self, name: str, value: float) -> bool:
        array = self.constant(name)
        if array is None or array.size != 1 or not np.issubdtype(array.dtype, np.number):
            return False
        return math.isclose(float(array.reshape(())), value, rel_tol=_CONSTANT_TOLERANCE)

    def only_consumer(self, name: str) -> onnx.NodeProto | None:
        """The single node reading `name`, if it has exactly one and is not a graph output."""
        users = self.consumers.get(name, [])
        if len(users) != 1 or name in self.outputs:
            return None
        return users[0]

    def node(self, name: str, op_type: str) -> onnx.NodeProto | None:
        """The producer of `name` if it is an `op_type` node of the default domain."""
        node = self.producer.get(name)
        if node is None or node.op_type != op_type or node.domain not in ("", "ai.onnx"):
            return None
        return node


def _other(node: onnx.NodeProto, name: str) -> str | None:
    """The input of a two-input node that is not `name` (None if neither or both are)."""
    if len(node.input) != 2 or (node.input[0] == name) == (node.input[1] == name):
        return None
    return node.input[1] if node.input[0] == name else node.input[0]


def _scalar_operand(graph: _Graph, node: onnx.NodeProto, value: float) -> str | None:
    """The non-constant input of a binary `node` whose other input is the scalar `value`."""
    for mine, other in ((0, 1), (1, 0)):
        if len(node.input) == 2 and graph.is_scalar(node.input[other], value):
            return node.input[mine]
    return None


@dataclass(frozen=True)
class Fusion:
    """A chain of nodes to replace by `replacement`, which takes the place of `nodes[-1]`."""

    nodes: tuple[onnx.NodeProto, ...]
    replacement: onnx.NodeProto


def _private(graph: _Graph, chain: Sequence[onnx.NodeProto]) -> bool:
    """Whether every output of the chain but the last node's is read only inside the chain."""
    inside = {id(n) for n in chain}
    for node in chain[:-1]:
        for name in node.output:
            if name in graph.outputs:
                return False
            if any(id(user) not in inside for user in graph.consumers.get(name, [])):
                return False
    return True


def _half_x_times(graph: _Graph, factor: str, x: str) -> list[onnx.NodeProto] | None:
    """The two Muls computing ½·x·`factor` from `factor`'s consumer on, as Mul(x, f) → Mul ½ or
    Mul(Mul(x, ½), f), the one writing the result last; None if there are no such Muls."""
    multiply = graph.only_consumer(factor)
    if multiply is None or multiply.op_type != "Mul":
        return None
    partner = _other(multiply, factor)
    if partner == x:
        halve = graph.only_consumer(multiply.output[0])
        if halve is None or halve.op_type != "Mul":
            return None
        return (
            [multiply, halve] if _scalar_operand(graph, halve, 0.5) == multiply.output[0] else None
        )
    half = graph.node(partner, "Mul") if partner else None
    if half is not None and _scalar_operand(graph, half, 0.5) == x:
        return [half, multiply]
    return None


def _gelu_exact(graph: _Graph, erf: onnx.NodeProto) -> Fusion | None:
    """x·½(1 + erf(x/√2)) around the `Erf` node `erf`."""
    scale = graph.producer.get(erf.input[0])
    if scale is None or scale.op_type not in ("Div", "Mul"):
        return None
    if scale.op_type == "Div":
        x = scale.input[0] if graph.is_scalar(scale.input[1], math.sqrt(2)) else None
    else:
        x = _scalar_operand(graph, scale, 1 / math.sqrt(2))
    plus_one = graph.only_consumer(erf.output[0])
    if x is None or plus_one is None or plus_one.op_type != "Add":
        return None
    if _scalar_operand(graph, plus_one, 1.0) != erf.output[0]:
        return None
    tail = _half_x_times(graph, plus_one.output[0], x)
    if tail is None:
        return None
    return _fusion(graph, [scale, erf, plus_one, *tail], "Gelu", [x], approximate="none")


def _gelu_tanh(graph: _Graph, tanh: onnx.NodeProto) -> Fusion | None:
    """x·½(1 + tanh(√(2/π)(x + 0.044715x³))) around the `Tanh` node `tanh`."""
    scale = graph.producer.get(tanh.input[0])
    if scale is None or scale.op_type != "Mul":
        return None
    inner = _scalar_operand(graph, scale, math.sqrt(2 / math.pi))
    add = graph.node(inner, "Add") if inner else None
    if add is None:
        return None
    for x, cubic_name in ((add.input[0], add.input[1]), (add.input[1], add.input[0])):
        cubic = graph.node(cubic_name, "Mul")
        cube_name = _scalar_operand(graph, cubic, 0.044715) if cubic else None
        cube = _cube_of(graph, cube_name, x) if cube_name else None
        if cube is not None:
            break
    else:
        return None
    plus_one = graph.only_consumer(tanh.output[0])
    if plus_one is None or plus_one.op_type != "Add":
        return None
    if _scalar_operand(graph, plus_one, 1.0) != tanh.output[0]:
        return None
    tail = _half_x_times(graph, plus_one.output[0], x)
    if tail is None:
        return None
    members = [*cube, cubic, add, scale, tanh, plus_one, *tail]
    return _fusion(graph, members, "Gelu", [x], approximate="tanh")


def _cube_of(graph: _Graph, name: str, x: str) -> list[onnx.NodeProto] | None:
    """The nodes computing `name` = x³: Pow(x, 3), or Mul(x, Mul(x, x)) in either order."""
    power = graph.node(name, "Pow")
    if power is not None:
        return [power] if power.input[0] == x and graph.is_scalar(power.input[1], 3.0) else None
    outer = graph.node(name, "Mul")
    square_name = _other(outer, x) if outer else None
    square = graph.node(square_name, "Mul") if square_name else None
    if square is None or list(square.input) != [x, x]:
        return None
    return [square, outer]


def _mish(graph: _Graph, softplus: onnx.NodeProto) -> Fusion | None:
    """x·tanh(softplus(x)) from the `Softplus` node: what exporters write before opset 18."""
    x = softplus.input[0]
    tanh = graph.only_consumer(softplus.output[0])
    multiply = graph.only_consumer(tanh.output[0]) if tanh and tanh.op_type == "Tanh" else None
    if multiply is None or multiply.op_type != "Mul" or _other(multiply, tanh.output[0]) != x:
        return None
    return _fusion(graph, [softplus, tanh, multiply], "Mish", [x])


def _reduce_axes(graph: _Graph, node: onnx.NodeProto) -> list[int] | None:
    """The axes of a ReduceMean with keepdims=1, from its attribute or (opset 18) its input."""
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attributes.get("keepdims", 1) != 1:
        return None
    if "axes" in attributes:
        return [int(a) for a in attributes["axes"]]
    if len(node.input) > 1 and node.input[1]:
        axes = graph.constant(node.input[1])
        return None if axes is None else [int(a) for a in axes.ravel()]
    return None


def _trailing_axis(axes: Sequence[int] | None) -> int | None:
    """The first of `axes` if they are -k..-1 in order (the trailing axes), else None."""
    if not axes or sorted(axes) != list(range(-len(axes), 0)):
        return None
    return -len(axes)


def _layer_norm(graph: _Graph, mean: onnx.NodeProto) -> Fusion | None:
    """(x - mean(x)) / sqrt(mean((x - mean(x))²) + ε) [· γ + β] from the first `ReduceMean`."""
    axis = _trailing_axis(_reduce_axes(graph, mean))
    x = mean.input[0]
    subtract = graph.only_consumer(mean.output[0])
    if axis is None or subtract is None or subtract.op_type != "Sub":
        return None
    if list(subtract.input) != [x, mean.output[0]]:
        return None
    centred = subtract.output[0]
    users = graph.consumers.get(centred, [])
    square = next((u for u in users if u.op_type == "Pow"), None)
    divide = next((u for u in users if u.op_type == "Div"), None)
    if len(users) != 2 or square is None or divide is None or centred in graph.outputs:
        return None
    if list(square.input[:1]) != [centred] or not graph.is_scalar(square.input[1], 2.0):
        return None
    variance = graph.only_consumer(square.output[0])
    if variance is None or variance.op_type != "ReduceMean":
        return None
    if _trailing_axis(_reduce_axes(graph, variance)) != axis:
        return None
    add_epsilon = graph.only_consumer(variance.output[0])
    if add_epsilon is None or add_epsilon.op_type != "Add":
        return None
    epsilon_name = _other(add_epsilon, variance.output[0])
    epsilon = graph.constant(epsilon_name) if epsilon_name else None
    if epsilon is None or epsilon.size != 1:
        return None
    root = graph.only_consumer(add_epsilon.output[0])
    if root is None or root.op_type != "Sqrt" or list(divide.input) != [centred, root.output[0]]:
        return None
    members = [mean, subtract, square, variance, add_epsilon, root, divide]
    inputs = [x]
    # An affine tail with constant γ and β of at most the normalised rank becomes Scale and B.
    for op_type in ("Mul", "Add"):
        follower = graph.only_consumer(members[-1].output[0])
        parameter = _other(follower, members[-1].output[0]) if follower else None
        value = graph.constant(parameter) if parameter else None
        if follower is None or follower.op_type != op_type or value is None:
            break
        if value.ndim > -axis and any(d != 1 for d in value.shape[: value.ndim + axis]):
            break
        members.append(follower)
        inputs.append(parameter)
    return _fusion(
        graph,
        members,
        "LayerNormalization",
        inputs,
        axis=axis,
        epsilon=float(epsilon.reshape(())),
    )


def _fusion(
    graph: _Graph, members: list[onnx.NodeProto], op_type: str, inputs: list[str], **attributes
) -> Fusion | None:
    """The fusion of `members` into one `op_type` node, if their intermediates are private."""
    positions = {id(n): i for i, n in enumerate(graph.nodes)}
    members = sorted({id(m): m for m in members}.values(), key=lambda n: positions[id(n)])
    if not _private(graph, members):
        return None
    last = members[-1]
    replacement = helper.make_node(
        op_type, inputs, [last.output[0]], name=last.name or last.output[0], **attributes
    )
    return Fusion(tuple(members), replacement)


_MATCHERS = {
    "Erf": _gelu_exact,
    "Tanh": _gelu_tanh,
    "ReduceMean": _layer_norm,
    "Softplus": _mish,
}


def _find_fusions(view: _Graph) -> Iterator[Fusion]:
    """Every decomposed GELU, Mish and layer norm of the graph (module docstring), in order."""
    claimed: set[int] = set()
    for node in view.nodes:
        matcher = _MATCHERS.get(node.op_type)
        if matcher is None or node.domain not in ("", "ai.onnx") or id(node) in claimed:
            continue
        fusion = matcher(view, node)
        if fusion is not None and not any(id(n) in claimed for n in fusion.nodes):
            claimed.update(id(n) for n in fusion.nodes)
            yield fusion


def fuse_decomposed(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """`graph`'s nodes with every recognised chain replaced by its one node (module docstring)."""
    view = _Graph.of(graph)
    replaced: dict[int, onnx.NodeProto | None] = {}
    for fusion in _find_fusions(view):
        for node in fusion.nodes:
            replaced[id(node)] = None
        replaced[id(fusion.nodes[-1])] = fusion.replacement
    kept = (replaced.get(id(node), node) for node in view.nodes)
    return [node for node in kept if node is not None]
