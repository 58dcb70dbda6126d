"""Spec -> graph of ``Node``: topology, names, channels and parameter counts.

Spatial sizes are not known here; ``shapes.py`` solves them for a given input size.
Layer names say where a layer is: ``enc2_conv1``, ``enc2_pool``, ``bottleneck_conv2``,
``dec2_up``, ``dec2_crop``, ``dec2_concat``, ``dec2_conv1``. A head's layer is named after its output
(``logits``, ``logits_dec2``): Keras names a model's outputs after their layers, so ``compile`` and
``fit`` take dicts keyed by head name.
"""

from __future__ import annotations

from math import prod
from typing import Any

from archgen.errors import PlanError
from archgen.planner.ir import Node
from archgen.spec.model import (
    AddMerge,
    ArchSpec,
    AttentionMerge,
    AvgPool,
    MaxPool,
    ResidualBlock,
    ResizeUp,
    StridedConv,
    TransposeUp,
)


class Graph:
    """Nodes in build order; ``add`` returns the new node's name for chaining."""

    def __init__(self, ndim: int):
        self.ndim = ndim
        self.nodes: dict[str, Node] = {}
        self.outputs: dict[str, str] = {}  # output name -> head layer

    def add(self, name: str, kind: str, inputs: tuple[str, ...], channels: int, *, group: str,
            path: str, params: int = 0, like: str | None = None, **attrs: Any) -> str:
        assert name not in self.nodes, name
        self.nodes[name] = Node(name, kind, inputs, channels, params, group, path, attrs, like)
        return name

    def prune(self) -> None:
        """Drop layers no output depends on (e.g. the decoder above a head that reads the bottleneck):
        Keras leaves them out of the model, so the plan must too."""
        needed, stack = set(), list(self.outputs.values())
        while stack:
            name = stack.pop()
            if name not in needed:
                needed.add(name)
                node = self.nodes[name]
                stack.extend(node.inputs + ((node.like,) if node.like else ()))
        self.nodes = {name: node for name, node in self.nodes.items() if name in needed}

    def channels(self, name: str) -> int:
        return self.nodes[name].channels

    def conv(self, name: str, x: str, filters: int, *, kernel: int, group: str, path: str,
             stride: int = 1, dilation: int = 1, padding: str = "same", activation: str = "linear",
             use_bias: bool = True, transpose: bool = False) -> str:
        cin = self.channels(x)
        params = kernel**self.ndim * cin * filters + (filters if use_bias else 0)
        return self.add(name, "conv_transpose" if transpose else "conv", (x,), filters, group=group,
                        path=path, params=params, filters=filters, kernel=kernel, stride=stride,
                        dilation=dilation, padding=padding, activation=activation, use_bias=use_bias)

    def norm(self, name: str, x: str, kind: str, groups: int, *, group: str, path: str) -> str:
        c = self.channels(x)
        if kind == "group" and c % groups:
            raise PlanError(f"group norm needs a channel count divisible by the groups; "
                            f"{name} has {c} channels", path=path + ".groups", value=groups)
        # batch norm keeps a moving mean and variance beside gamma and beta.
        params = 4 * c if kind == "batch" else 2 * c
        return self.add(name, "norm", (x,), c, group=group, path=path, params=params, norm=kind, groups=groups)

    def activation(self, name: str, x: str, fn: str, *, group: str, path: str) -> str:
        return self.add(name, "activation", (x,), self.channels(x), group=group, path=path, activation=fn)


def level_filters(spec: ArchSpec) -> list[int]:
    """Filters of encoder levels 1..depth and the bottleneck (depth + 1 entries)."""
    enc = spec.encoder
    n = enc.depth + 1
    if isinstance(enc.filters, list):
        if len(enc.filters) != n:
            raise PlanError(f"has {len(enc.filters)} entries; encoder.depth={enc.depth} needs {n} "
                            f"(levels 1..{enc.depth} and the bottleneck)", path="encoder.filters", value=enc.filters)
        filters = list(enc.filters)
    else:
        filters = [max(1, round(enc.filters * enc.multiplier**i)) for i in range(n)]
    if enc.max_filters is not None:
        filters = [min(f, enc.max_filters) for f in filters]
    return filters


def per_level(value: Any, count: int, path: str, depth: int) -> list[Any]:
    """Broadcast a scalar to ``count`` levels, or check a list has ``count`` entries."""
    if not isinstance(value, list):
        return [value] * count
    if len(value) != count:
        raise PlanError(f"has {len(value)} entries; encoder.depth={depth} needs {count}", path=path, value=value)
    return list(value)


def build_graph(spec: ArchSpec) -> Graph:
    """Lay out every layer of ``spec`` in build order (encoder, bottleneck, decoder, heads)."""
    g = Graph(spec.ndim)
    depth = spec.encoder.depth
    filters = level_filters(spec)
    x = g.add("input", "input", (), spec.input.shape[-1], group="input", path="input")
    skips: dict[int, str] = {}
    for level in range(1, depth + 1):
        x = plan_block(g, spec, x, f"enc{level}", level, filters[level - 1], decoder=False)
        skips[level] = x
        x = plan_downsample(g, spec, x, level)
    x = plan_block(g, spec, x, "bottleneck", depth + 1, filters[depth], decoder=False)
    features = {depth + 1: x}
    with_skip = skip_levels(spec)
    aligns = per_level(spec.decoder.align, depth, "decoder.align", depth)
    for level in range(depth, 0, -1):
        up = plan_upsample(g, spec, x, level, filters[level - 1])
        merged = up
        if level in with_skip:
            merged = plan_merge(g, spec, up, skips[level], level, aligns[level - 1])
        x = plan_block(g, spec, merged, f"dec{level}", level, filters[level - 1], decoder=True)
        features[level] = x
    g.outputs = plan_heads(g, spec, features)
    g.prune()
    return g


def skip_levels(spec: ArchSpec) -> set[int]:
    skips, depth = spec.decoder.skips, spec.encoder.depth
    if skips == "all":
        return set(range(1, depth + 1))
    if skips == "none":
        return set()
    for i, level in enumerate(skips):
        if level > depth:
            raise PlanError(f"no encoder level {level}; with encoder.depth={depth} skips come from levels 1..{depth}",
                            path=f"decoder.skips[{i}]", value=level)
    return set(skips)


def plan_block(g: Graph, spec: ArchSpec, x: str, prefix: str, level: int, filters: int, *, decoder: bool) -> str:
    """``convs`` convs (each with optional norm and activation), a shortcut if residual, dropout."""
    block = (spec.decoder.block if decoder else None) or spec.encoder.block
    path = "decoder.block" if decoder and spec.decoder.block else "encoder.block"
    kernel = per_level(block.kernel_size, spec.encoder.depth + 1, path + ".kernel_size", spec.encoder.depth)[level - 1]
    padding = block.padding or spec.padding
    residual = isinstance(block, ResidualBlock)
    with_norm = block.norm != "none"
    use_bias = not with_norm if block.bias is None else block.bias
    inner = max(1, round(filters * block.inner_ratio))
    block_in = x
    for i in range(1, block.convs + 1):
        last = i == block.convs
        # A residual block activates after the addition, not after its last conv.
        act = "linear" if residual and last else block.activation
        x = g.conv(f"{prefix}_conv{i}", x, filters if last else inner, kernel=kernel, dilation=block.dilation,
                   padding=padding, activation="linear" if with_norm else act, use_bias=use_bias,
                   group=prefix, path=path)
        if with_norm:
            x = g.norm(f"{prefix}_norm{i}", x, block.norm, block.groups, group=prefix, path=path)
            if act != "linear":
                x = g.activation(f"{prefix}_act{i}", x, act, group=prefix, path=path)
    if residual:
        shortcut = block_in
        if g.channels(shortcut) != filters:
            shortcut = g.conv(f"{prefix}_proj", shortcut, filters, kernel=1, use_bias=use_bias,
                              group=prefix, path=path)
            if with_norm:
                shortcut = g.norm(f"{prefix}_proj_norm", shortcut, block.norm, block.groups, group=prefix, path=path)
        if padding == "valid" and (kernel - 1) * block.dilation > 0:
            shortcut = g.add(f"{prefix}_shortcut_crop", "crop", (shortcut,), filters, like=x, group=prefix, path=path)
        x = g.add(f"{prefix}_residual", "add", (x, shortcut), filters, group=prefix, path=path)
        if block.activation != "linear":
            x = g.activation(f"{prefix}_act", x, block.activation, group=prefix, path=path)
    if block.dropout > 0:
        x = g.add(f"{prefix}_drop", "dropout", (x,), filters, group=prefix, path=path, rate=block.dropout)
    return x


def plan_downsample(g: Graph, spec: ArchSpec, x: str, level: int) -> str:
    down = spec.encoder.downsample
    group, path = f"enc{level}", "encoder.downsample"
    if isinstance(down, (MaxPool, AvgPool)):
        kind = "maxpool" if isinstance(down, MaxPool) else "avgpool"
        return g.add(f"enc{level}_pool", kind, (x,), g.channels(x), group=group, path=path, factor=down.factor)
    assert isinstance(down, StridedConv)
    return g.conv(f"enc{level}_down", x, g.channels(x), kernel=down.kernel_size or down.factor, stride=down.factor,
                  padding="same", activation=down.activation, group=group, path=path)


def plan_upsample(g: Graph, spec: ArchSpec, x: str, level: int, filters: int) -> str:
    up = spec.decoder.upsample
    group, path = f"dec{level}", "decoder.upsample"
    if up.keep_channels:
        filters = g.channels(x)
    if isinstance(up, TransposeUp):
        return g.conv(f"dec{level}_up", x, filters, kernel=up.kernel_size or up.factor, stride=up.factor,
                      activation=up.activation, use_bias=up.bias, transpose=True, group=group, path=path)
    assert isinstance(up, ResizeUp)
    if up.interpolation == "bilinear" and spec.ndim != 2:
        raise PlanError(f"bilinear up-sampling works on 2D inputs only (Keras UpSampling{spec.ndim}D has no "
                        f"interpolation); use nearest", path="decoder.upsample.interpolation", value="bilinear")
    x = g.add(f"dec{level}_up", "upsample", (x,), g.channels(x), group=group, path=path,
              factor=up.factor, interpolation=up.interpolation)
    return g.conv(f"dec{level}_upconv", x, filters, kernel=up.kernel_size, activation=up.activation,
                  group=group, path=path)


def plan_merge(g: Graph, spec: ArchSpec, up: str, skip: str, level: int, align: str) -> str:
    """Align the skip with the up-sampled feature, then merge them."""
    p, path = f"dec{level}", "decoder"
    if align == "crop":
        skip = g.add(f"{p}_crop", "crop", (skip,), g.channels(skip), like=up, group=p, path=path + ".align")
    elif align == "pad":
        up = g.add(f"{p}_pad", "pad", (up,), g.channels(up), like=skip, group=p, path=path + ".align")
    elif align == "resize":
        if spec.ndim != 2:
            raise PlanError(f"resize alignment works on 2D inputs only (Keras has no {spec.ndim}D Resizing layer); "
                            f"use crop or pad", path="decoder.align", value="resize")
        skip = g.add(f"{p}_resize", "resize", (skip,), g.channels(skip), like=up, group=p, path=path + ".align")
    merge = spec.decoder.merge
    mpath = path + ".merge"
    if isinstance(merge, AddMerge):
        if g.channels(skip) != g.channels(up):
            skip = g.conv(f"{p}_skip_proj", skip, g.channels(up), kernel=1, group=p, path=mpath)
        return g.add(f"{p}_add", "add", (up, skip), g.channels(up), group=p, path=mpath)
    if isinstance(merge, AttentionMerge):
        skip = plan_attention_gate(g, up, skip, p, merge.inter_filters or max(1, g.channels(skip) // 2), mpath)
    return g.add(f"{p}_concat", "concat", (up, skip), g.channels(up) + g.channels(skip), group=p, path=mpath)


def plan_attention_gate(g: Graph, gate: str, skip: str, p: str, inter: int, path: str) -> str:
    """Additive attention gate (Oktay et al. 2018): skip * sigmoid(psi(relu(Wx skip + Wg gate)))."""
    theta = g.conv(f"{p}_attn_x", skip, inter, kernel=1, use_bias=False, group=p, path=path)
    phi = g.conv(f"{p}_attn_g", gate, inter, kernel=1, group=p, path=path)
    s = g.add(f"{p}_attn_add", "add", (theta, phi), inter, group=p, path=path)
    s = g.activation(f"{p}_attn_relu", s, "relu", group=p, path=path)
    psi = g.conv(f"{p}_attn_psi", s, 1, kernel=1, activation="sigmoid", group=p, path=path)
    return g.add(f"{p}_attn_gate", "multiply", (skip, psi), g.channels(skip), group=p, path=path)


def plan_heads(g: Graph, spec: ArchSpec, features: dict[int, str]) -> dict[str, str]:
    """One conv per head (and per deep-supervision level); returns output name -> layer name."""
    depth = spec.encoder.depth
    outputs: dict[str, str] = {}
    for i, head in enumerate(spec.heads):
        path = f"heads[{i}]"
        extra = [(f"{head.name}_dec{lv}", lv, f"{path}.deep_supervision[{j}]")
                 for j, lv in enumerate(head.deep_supervision)]
        for name, level, where in [(head.name, head.level, path + ".level"), *extra]:
            if name in outputs:
                raise PlanError("two outputs share this name", path=path + ".name", value=name)
            if head.activation == "softmax" and head.filters == 1:
                raise PlanError("a softmax over 1 channel always outputs 1; use sigmoid for one class, "
                                "or filters >= 2", path=path + ".activation", value="softmax")
            if level not in features:
                raise PlanError(f"no decoder level {level}; with encoder.depth={depth} heads read levels "
                                f"1..{depth + 1} ({depth + 1} = bottleneck)", path=where, value=level)
            if name in g.nodes:
                raise PlanError(f"output {name} would share its name with the layer {name} ({g.nodes[name].path}); "
                                f"an output's layer is named after it, so pick a name no layer has",
                                path=path + ".name", value=head.name)
            outputs[name] = g.conv(name, features[level], head.filters, kernel=head.kernel_size,
                                   padding=spec.padding, activation=head.activation, group="head", path=path)
    return outputs


def down_factor(spec: ArchSpec) -> int:
    """Product of all down-sampling factors: legal sizes repeat with this period."""
    return prod([spec.encoder.downsample.factor] * spec.encoder.depth)
