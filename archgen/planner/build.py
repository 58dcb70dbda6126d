"""Spec -> Plan: the graph, its legal sizes, and every shape, crop, param and FLOP."""

from __future__ import annotations

from dataclasses import replace

from archgen.errors import PlanError
from archgen.kinds import kind_of
from archgen.planner.blocks.se import sizeless
from archgen.planner.graph import down_factors
from archgen.planner.layout import build_graph
from archgen.planner.ir import LayerPlan, Node, Plan, SizeRule
from archgen.planner.shapes import SizeError, infer_axis
from archgen.planner.sizes import solve_sizes
from archgen.config.model import ArchSpec
from archgen.config.resolve import resolve, stage_count

MAX_LAYERS = 2_000  # 2,000 chained Keras layers take ~20 s to build on two cores

AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def make_plan(spec: ArchSpec) -> Plan:
    """Plan every layer of ``spec``; raises ``PlanError`` for an input size that does not tile.

    >>> from archgen.config import load_spec
    >>> make_plan(load_spec("conf/unet.yaml")).output_shapes
    {'logits': (388, 388, 2)}
    """
    graph = build_graph(spec)
    nodes = list(graph.nodes.values())
    if len(nodes) > MAX_LAYERS:
        raise PlanError(f"the network has {len(nodes):,} layers; archgen builds at most {MAX_LAYERS:,} "
                        "(Keras builds deeper graphs only slowly, by recursion)", path="encoder")
    heads = graph.outputs
    rules = _size_rules(spec, graph)

    axes = []  # per spatial axis: (sizes, amounts, dynamic)
    solved: dict[tuple, tuple] = {}
    for axis, n in enumerate(spec.input.shape[:-1]):
        if n is None:
            axes.append((*_dynamic_axis(spec, nodes, rules[axis], axis), True))
            continue
        key = (n, _axis_key(nodes, axis))
        if key not in solved:
            try:
                solved[key] = infer_axis(nodes, n, axis)
            except SizeError as exc:
                raise _size_error(spec, exc, rules[axis], axis) from None
        axes.append((*solved[key], False))

    layers = []
    fixed = sizeless(nodes)  # size 1 even on an axis left open
    same: dict[str, str] = {}  # a crop or pad of nothing -> the layer it would have copied
    for node in nodes:
        if node.kind in ("crop", "pad") and not any(any(amounts[node.name]) for _, amounts, _ in axes):
            same[node.name] = same.get(node.inputs[0], node.inputs[0])  # it would do nothing: not emitted
            continue
        if any(name in same for name in node.inputs):
            node = replace(node, inputs=tuple(same.get(name, name) for name in node.inputs))
        spatial = tuple(None if dyn and node.name not in fixed else sizes[node.name] for sizes, _, dyn in axes)
        attrs = node.attrs
        if node.kind == "crop":
            attrs = replace(attrs, cropping=tuple(amounts[node.name] for _, amounts, _ in axes))
        elif node.kind == "pad":
            attrs = replace(attrs, padding=tuple(amounts[node.name] for _, amounts, _ in axes))
        elif node.kind == "resize":
            attrs = replace(attrs, size=tuple(sizes[node.like] for sizes, _, _ in axes))
        in_spatial = tuple(None if dyn and node.inputs[0] not in fixed else sizes[node.inputs[0]]
                           for sizes, _, dyn in axes) if node.inputs else ()
        layers.append(LayerPlan(
            name=node.name, kind=node.kind, inputs=node.inputs, shape=(*spatial, node.channels),
            params=kind_of(node.kind).params(node, spatial, tuple(spec.input.shape)),
            flops=kind_of(node.kind).flops(node, graph.nodes, spatial, in_spatial, spec.ndim),
            group=node.group, attrs=attrs))
    rule = rules[0] if all(r == rules[0] for r in rules) else None
    return Plan(name=spec.name, ndim=spec.ndim, input_shape=tuple(spec.input.shape), layers=tuple(layers),
                outputs=heads, sizes=rule, depth=stage_count(resolve(spec)), axis_sizes=tuple(rules))


def _axis_key(nodes: list[Node], axis: int) -> tuple:
    """What one axis's sizes depend on, beyond the input size: per-axis kernels, strides, factors."""
    return tuple(tuple(v[axis] for v in node.attrs.values() if isinstance(v, tuple) and len(v) > axis)
                 for node in nodes)


def size_rule(spec: ArchSpec) -> SizeRule | None:
    """The legal input sizes of ``spec`` when every spatial axis has the same rule, whatever its input
    shape; None when there is no rule or the axes differ (see ``size_rules``)."""
    rules = size_rules(spec)
    return rules[0] if all(r == rules[0] for r in rules) else None


def size_rules(spec: ArchSpec) -> list[SizeRule | None]:
    """The legal input sizes of each spatial axis of ``spec`` (anisotropic strides give each its own)."""
    return _size_rules(spec, build_graph(spec))


def _size_rules(spec: ArchSpec, graph) -> list[SizeRule | None]:
    periods = down_factors(resolve(spec))
    nodes = list(graph.nodes.values())
    return [solve_sizes(nodes, period, graph.outputs, graph.bottleneck_in, axis)
            for axis, period in enumerate(periods)]


def _dynamic_axis(spec: ArchSpec, nodes: list[Node], rule: SizeRule | None, axis: int):
    """Sizes at the smallest legal size, after checking crops do not vary with the size."""
    if rule is None:
        raise PlanError("no rule for legal input sizes could be derived for this network, so this size "
                        "cannot be left open; give a number", path=f"input.shape[{axis}]", value=None)
    resized = [node.name for node in nodes if node.kind == "resize"]
    if resized:
        raise PlanError(f"{resized[0]} resizes the skip to a fixed size, so this size cannot be left open; "
                        f"give a number or use decoder.align crop or pad", path=f"input.shape[{axis}]", value=None)
    sizes, amounts = infer_axis(nodes, rule.first, axis)
    _, later = infer_axis(nodes, rule.first + rule.period, axis)
    for name, amount in amounts.items():
        if later[name] != amount:
            raise PlanError(f"{name} would crop or pad {amount} at size {rule.first} but {later[name]} at "
                            f"{rule.first + rule.period}; a Keras layer needs a fixed amount, so give a number",
                            path=f"input.shape[{axis}]", value=None)
    return sizes, amounts


def _size_error(spec: ArchSpec, exc: SizeError, rule: SizeRule | None, axis: int) -> PlanError:
    names = AXIS_NAMES[spec.ndim]
    n = spec.input.shape[axis]
    where = f" on axis {names[axis]}" if spec.ndim > 1 else ""
    if spec.encoder.type == "backbone":
        depth = f"backbone {spec.encoder.name}"
    elif spec.encoder.type == "vit":
        depth = f"patches of {spec.encoder.patch_size}"
    elif spec.encoder.type == "swin":
        depth = f"{len(spec.encoder.depths)} swin stages"
    else:
        depth = f"encoder.depth={spec.encoder.depth}" if spec.encoder.stages is None else \
            f"{len(spec.encoder.stages)} encoder stages"
    context = f"with {depth} and padding={spec.padding}, "
    message = f"{context}{exc.node.name} gets {exc.size}{where}, which is {exc.reason}"
    if exc.reason.startswith(("its inputs", "cannot")):
        message = f"{context}{exc.node.name} gets {exc.size}{where}: {exc.reason}"
    hint = ""
    if rule is not None:
        head = next(iter(rule.outputs))
        nearest = ", ".join(f"{m} (output {rule.output_size(head, m)})" for m in rule.nearest(n))
        hint = f"legal sizes: {rule.describe(names[axis])}; nearest: {nearest}"
    else:
        message += "; no input size works for this network"
    return PlanError(message, path="input.shape", value=list(spec.input.shape), hint=hint)
