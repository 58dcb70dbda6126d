"""Spec -> graph of ``Node``: topology, names, channels and parameter counts.

Spatial sizes are not known here; ``shapes.py`` solves them for a given input size.
Layer names say where a layer is: ``enc2_conv1``, ``enc2_pool``, ``bottleneck_conv2``,
``dec2_up``, ``dec2_crop``, ``dec2_concat``, ``dec2_conv1``. A head's layer is named after its output
(``logits``, ``logits_dec2``): Keras names a model's outputs after their layers, so ``compile`` and
``fit`` take dicts keyed by head name.
"""

from __future__ import annotations

from math import lcm, prod
from typing import Any

from archgen.errors import PlanError
from archgen.kinds import attrs_of
from archgen.planner.blocks import BlockSite, plan_block_at, plan_up_block_at
from archgen.planner.blocks.residual import plan_stage_output
from archgen.planner.blocks.rsu import inner_factor
from archgen.planner.fused_head import level_strides, plan_fused_head
from archgen.planner.axes import LEARNED_SLOPES, Axes, axes_of, compact, fusable, on_axis  # noqa: F401  (re-exported)
from archgen.planner.ir import Node
from archgen.planner.transpose import plan_transpose_up
from archgen.config.short_form import per_axis
from archgen.config.model import (
    AddMerge,
    ArchSpec,
    AttentionMerge,
    AvgPool,
    BlockDown,
    BlockUp,
    ConvBlock,
    ConvNeXtBlock,
    InterpolateUp,
    MaxPool,
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
        self.bottleneck_in = ""  # the layer whose size is k, the size entering the bottleneck

    def add(self, name: str, kind: str, inputs: tuple[str, ...], channels: int, *, group: str,
            path: str, params: int = 0, like: str | None = None, **attrs: Any) -> str:
        assert name not in self.nodes, name
        self.nodes[name] = Node(name, kind, inputs, channels, params, group, path, attrs_of(kind, attrs), like)
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

    def conv(self, name: str, x: str, filters: int, *, kernel: Axes, group: str, path: str,
             stride: Axes = 1, dilation: int = 1, padding: str = "same", activation: str = "linear",
             use_bias: bool = True, transpose: bool = False, depthwise: bool = False,
             negative_slope: float | None = None) -> str:
        """A conv (or transposed conv). A strided "same" conv pads as PyTorch does, (k - 1) // 2 on
        both sides, where Keras's "same" would pad less before than after: an explicit ``{name}_pad``
        then precedes a valid conv. ``depthwise``: one filter per channel (``filters`` must be the
        input's channels)."""
        kernel, stride = axes_of(kernel, self.ndim), axes_of(stride, self.ndim)
        extra = {}
        if not transpose and padding == "same" and any(s > 1 for s in stride):
            reach = [(k - 1) * dilation + 1 for k in kernel]
            keras_before = [max(r - s, 0) // 2 for r, s in zip(reach, stride)]
            torch = [((r - 1) // 2, (r - 1) // 2) if s > 1 else ((r - 1) // 2, r - 1 - (r - 1) // 2)
                     for r, s in zip(reach, stride)]
            if [b for b, _ in torch] != keras_before:
                x = self.add(f"{name}_pad", "pad", (x,), self.channels(x), group=group, path=path,
                             amounts=tuple(torch), stride=compact(stride))
                padding = "valid"
                extra = {"floor": True}  # as PyTorch's conv: a remainder is dropped
        cin = self.channels(x)
        assert not depthwise or filters == cin, (name, filters, cin)
        params = prod(kernel) * (1 if depthwise else cin) * filters + (filters if use_bias else 0)
        learned = not fusable(activation, negative_slope)  # a layer of its own (a weight, a slope), after the conv
        kind = ("depthwise_" if depthwise else "") + ("conv_transpose" if transpose else "conv")
        out = self.add(name, kind, (x,), filters, group=group,
                       path=path, params=params, filters=filters, kernel=compact(kernel), stride=compact(stride),
                       dilation=dilation, padding=padding, activation="linear" if learned else activation,
                       use_bias=use_bias, **extra)
        if not learned:
            return out
        return self.activation(f"{name}_act", out, activation, group=group, path=path, negative_slope=negative_slope)

    def norm(self, name: str, x: str, kind: str, groups: int, *, group: str, path: str,
             epsilon: float | None = None, affine: bool = True) -> str:
        c = self.channels(x)
        if kind == "group" and c % groups:
            raise PlanError(f"group norm needs a channel count divisible by the groups; "
                            f"{name} has {c} channels", path=path + ".groups", value=groups)
        # batch norm keeps a moving mean and variance beside gamma and beta.
        params = (2 * c if affine else 0) + (2 * c if kind == "batch" else 0)
        return self.add(name, "norm", (x,), c, group=group, path=path, params=params, norm=kind, groups=groups,
                        epsilon=epsilon, affine=affine)

    def activation(self, name: str, x: str, fn: str, *, group: str, path: str,
                   negative_slope: float | None = None) -> str:
        attrs = {"negative_slope": negative_slope} if fn == "leaky_relu" and negative_slope is not None else {}
        return self.add(name, "activation", (x,), self.channels(x), group=group, path=path,
                        params=LEARNED_SLOPES.get(fn, lambda c: 0)(self.channels(x)), activation=fn, **attrs)


def plan_decoder(g: Graph, r: ArchSpec, x: str, skips: dict[int, str], strides: list[tuple[int, ...]]) -> dict[int, str]:
    """The U-Net decoder from the bottleneck's output ``x``, deepest level first: up-sample by the
    stride into the level below (``strides[level]``), join the level's skip, the stage's block.
    With ``merge_at: before_upsample`` (MONAI's UNet) each level joins first, then up-samples by
    the stride into the skip's own stage. Returns the features per level (``depth + 1``: ``x``)."""
    depth = len(strides) - 1
    dstages = r.decoder.stages
    features = {depth + 1: x}
    with_skip = set(r.decoder.skips)
    merge_first = r.decoder.merge_at == "before_upsample"
    if merge_first and depth > 0 and any(s != 1 for s in strides[depth]):
        raise PlanError("with decoder.merge_at: before_upsample the deepest level joins the bottleneck's output with "
                        "the skip of the stage above it before up-sampling, so the bottleneck must keep the size: "
                        "use stride 1 (encoder.stages, with the down-sampling moved into the first stage by "
                        "encoder.downsample.type: stride)", path=f"encoder.stages[{depth}].stride",
                        value=strides[depth])
    for level in range(depth, 0, -1):
        dstage = dstages[level - 1]
        plain = r.decoder.last_conv_only and level == 1  # the level's last conv makes the output
        if merge_first:  # join, then up-sample by the stride into the skip's own stage
            if level in with_skip:
                x = plan_merge(g, r, x, skips[level], level, r.decoder.align[level - 1])
            x = plan_upsample(g, r, x, level, dstage.up_filters, strides[level - 1],
                              plain=plain and dstage.convs == 0)
        else:
            x = upsampled = plan_upsample(g, r, x, level, dstage.up_filters, strides[level])
            if level in with_skip:
                x = plan_merge(g, r, x, skips[level], level, r.decoder.align[level - 1])
        if dstage.convs > 0:
            x = plan_stage(g, r, x, f"dec{level}", dstage.filters, dstage.convs, dstage.blocks,
                           tuple(dstage.kernel_size), (1,) * r.ndim, decoder=True,
                           path=f"decoder.stages[{level - 1}]", plain_last=plain,
                           upsampled=None if merge_first else upsampled)
        elif plain and not merge_first:
            other = "" if r.encoder.type == "backbone" else " (or join before up-sampling: merge_at: before_upsample)"
            raise PlanError("level 1 has no convs, so its last layer is the up-sampling or the merge: there is no "
                            f"conv to leave plain; give decoder.stages[0] convs{other}", path="decoder.last_conv_only",
                            value=True)
        features[level] = x
    return features


def plan_input_norm(g: Graph, r: ArchSpec, x: str) -> str:
    """The stem's batch norm of the input (``stem_input_norm``, level 1), where it has one."""
    stem = r.encoder.stem
    if stem is None or stem.input_norm is None:
        return x
    norm, c = stem.input_norm, g.channels(x)
    # A learned scale and shift per channel where asked, and always the moving mean and variance.
    params = c * (int(norm.scale) + int(norm.center)) + 2 * c
    return g.add("stem_input_norm", "norm", (x,), c, group="enc1", path="encoder.stem.input_norm", params=params,
                 norm="batch", groups=1, epsilon=norm.epsilon, affine=norm.scale or norm.center, scale=norm.scale,
                 center=norm.center)


def stem_strides(r: ArchSpec) -> bool:
    """Whether the stem down-samples, and so makes levels 1 (the input) and 2 (its output) of its own."""
    return r.encoder.stem is not None and any(s > 1 for s in r.encoder.stem.stride)


def plan_stem(g: Graph, r: ArchSpec, x: str) -> str:
    """The encoder's stem: ``stem_conv1``... with the encoder block's norm and activation (norm then
    activation after each conv, also where the block pre-activates), never residual; the first conv
    strides by the stem's stride. Its layers belong to level 1, or to level 2 where it strides."""
    stem, block = r.encoder.stem, r.encoder.block
    kept = set(ConvBlock.model_fields) & set(type(block).model_fields) - {"type", "se"}
    if block.type in ("bottleneck", "rsu"):  # their inner convs' channels (and an rsu's dilation) are their own
        kept -= {"inner_ratio", "dilation"} if block.type == "rsu" else {"inner_ratio"}
    plain = ConvBlock.model_validate(block.model_dump(include=kept))
    if plain.order == "pre_activation":
        plain = plain.model_copy(update={"order": "norm_act"})
    if stem.conv_only:  # the convs alone; a bias unless the block says none
        plain = ConvBlock.model_validate({**plain.model_dump(include={"dilation", "padding"}),
                                          "bias": plain.bias is not False, "activation": "linear"})
    group = "enc2" if stem_strides(r) else "enc1"
    return plan_block(g, r, x, "stem", stem.filters, stem.convs, tuple(stem.kernel_size), tuple(stem.stride),
                      decoder=False, group=group, stage_path="encoder.stem", block=plain)


def plan_stem_pool(g: Graph, r: ArchSpec, x: str) -> str:
    """The stem's max pooling into the first stage, where it has one: the down-sampling after level
    2 (``enc2_pool``, after an ``enc2_pool_pad`` of (kernel - 1) // 2 zeros on both sides)."""
    pool = r.encoder.stem.pool
    if pool is None:
        return x
    c, edge, path = g.channels(x), (pool.kernel_size - 1) // 2, "encoder.stem.pool"
    if edge:
        x = g.add("enc2_pool_pad", "pad", (x,), c, group="enc2", path=path, amounts=((edge, edge),) * r.ndim,
                  stride=pool.factor)
    # As PyTorch's and Keras's pooling: a remainder is dropped.
    return g.add("enc2_pool", "maxpool", (x,), c, group="enc2", path=path, factor=pool.factor,
                 window=pool.kernel_size, floor=True)


def hands_on_activated(block) -> bool:
    """Whether a stage of ``block`` ends in its norm and activation (``stage_output: activated``)."""
    return getattr(block, "stage_output", "sum") == "activated"


def plan_stage(g: Graph, r: ArchSpec, x: str, prefix: str, filters: int, convs: int, blocks: int,
               kernel: tuple[int, ...], stride: tuple[int, ...], *, decoder: bool, path: str,
               plain_last: bool = False, activated: bool = False, block=None, upsampled: str | None = None) -> str:
    """``blocks`` blocks in a row; the first conv of the first block strides by ``stride``.

    One block keeps the short names (``enc2_conv1``); several are named ``enc2_block1_conv1``.
    ``activated``: ``x`` is the output of a stage that ends in its norm and activation
    (``stage_output: activated``), which the first block then does not apply again; such a stage
    ends so itself (``enc2_out_norm``, ``enc2_out_act``).
    """
    block = block or (r.decoder.block if decoder else r.encoder.block)
    block_path = "decoder.block" if decoder else "encoder.block"
    if hands_on_activated(block) and block.order != "pre_activation":
        raise PlanError(f"a stage hands on its output normalised and activated only where its blocks pre-activate "
                        f"(order: pre_activation), not with order: {block.order}; remove stage_output or set "
                        f"{block_path}.order: pre_activation", path=block_path + ".stage_output", value="activated")
    for b in range(1, blocks + 1):
        name = prefix if blocks == 1 else f"{prefix}_block{b}"
        x = plan_block(g, r, x, name, filters, convs, kernel, stride if b == 1 else (1,) * r.ndim,
                       decoder=decoder, group=prefix, stage_path=path, plain_last=plain_last and b == blocks,
                       first=b == 1, activated=activated and b == 1, block=block,
                       upsampled=upsampled if b == 1 else None)
    if hands_on_activated(block):
        x = plan_stage_output(g, prefix, block, x, path=block_path)
    return x


def plan_block(g: Graph, r: ArchSpec, x: str, prefix: str, filters: int, convs: int, kernel: tuple[int, ...],
               stride: tuple[int, ...], *, decoder: bool, group: str, stage_path: str, block=None,
               plain_last: bool = False, first: bool = True, activated: bool = False,
               upsampled: str | None = None) -> str:
    """One block of the encoder's or the decoder's kind (or ``block``) at ``prefix``, planned by its
    type's module in ``archgen.planner.blocks``.

    ``plain_last``: the last conv without norm or activation, and nothing after the addition;
    ``first``: the first block of its stage; ``activated``: see ``plan_stage``."""
    if block is None:
        block = r.decoder.block if decoder else r.encoder.block
    site = BlockSite(prefix, filters, convs, tuple(kernel), tuple(stride), group,
                     "decoder.block" if decoder else "encoder.block", block.padding or r.padding, plain_last,
                     first, activated, upsampled)
    return plan_block_at(g, site, block, x)


def plan_downsample(g: Graph, r: ArchSpec, x: str, level: int, factor: tuple[int, ...]) -> str:
    """The down-sampling after encoder level ``level`` (``enc{level}_pool`` or ``enc{level}_down``)."""
    down = r.encoder.downsample
    group, path = f"enc{level}", "encoder.downsample"
    if isinstance(down, (MaxPool, AvgPool)):
        kind = "maxpool" if isinstance(down, MaxPool) else "avgpool"
        extra = {"floor": True} if down.odd_sizes == "floor" else {}
        return g.add(f"enc{level}_pool", kind, (x,), g.channels(x), group=group, path=path, factor=compact(factor),
                     **extra)
    first = 2 if stem_strides(r) else 0  # levels before encoder.stages[0]: the stem's own
    into = r.encoder.stages[level - first]  # the stage it down-samples into
    if isinstance(down, BlockDown):  # the encoder's block, strided, to the next level's filters
        leaves = r.encoder.stages[level - first - 1] if level > first else r.encoder.stem
        return plan_block(g, r, x, f"enc{level}_down", into.filters, leaves.convs, tuple(leaves.kernel_size),
                          factor, decoder=False, group=group, stage_path=path,
                          block=with_grn(r.encoder.block, down.global_resp_norm, path))
    assert isinstance(down, StridedConv)
    leaves = r.encoder.stages[level - first - 1] if level > first else r.encoder.stem
    kernel = sampling_kernel(down.kernel_size, factor, leaves.kernel_size, path + ".kernel_size")
    filters = into.filters if down.change_channels else g.channels(x)
    return plan_strided_conv(g, down, x, f"enc{level}_down", filters, kernel, factor, "same", group)


def plan_strided_conv(g: Graph, spec: StridedConv | TransposeUp, x: str, name: str, filters: int,
                      kernel: tuple[int, ...], stride: tuple[int, ...], padding: str, group: str) -> str:
    """``name``: ``spec``'s strided conv (transposed for an up-sampling), then its norm (``{name}_norm``)
    and activation (``{name}_act``)."""
    up = isinstance(spec, TransposeUp)
    path = "decoder.upsample" if up else "encoder.downsample"
    alone = spec.norm == "none"  # nothing between the conv and its activation
    x = g.conv(name, x, filters, kernel=kernel, stride=stride, padding=padding,
               activation=spec.activation if alone else "linear", use_bias=spec.bias, group=group, path=path,
               negative_slope=spec.negative_slope, transpose=up)
    if alone:
        return x
    x = g.norm(f"{name}_norm", x, spec.norm, spec.groups, group=group, path=path, epsilon=spec.norm_epsilon,
               affine=spec.norm_affine)
    if spec.activation != "linear":
        x = g.activation(f"{name}_act", x, spec.activation, group=group, path=path,
                         negative_slope=spec.negative_slope)
    return x


def with_grn(block, global_resp_norm: bool | None, path: str):
    """``block`` as a down or up block with its own ``global_resp_norm`` (null: the block's)."""
    if global_resp_norm is None:
        return block
    if not isinstance(block, ConvNeXtBlock):
        raise PlanError(f"only a convnext block has a global response normalisation; this {path.split('.')[0]}'s "
                        f"block is {block.type}", path=path + ".global_resp_norm", value=global_resp_norm)
    return block.model_copy(update={"global_resp_norm": global_resp_norm})


def sampling_kernel(given, factor: tuple[int, ...], level_kernel, path: str) -> tuple[int, ...]:
    """A strided or transposed conv's kernel per axis: ``given``, or the factor (null), or the level's
    own kernel (``level``)."""
    if given is None:
        return tuple(factor)
    if given == "level":
        return axes_of(level_kernel, len(factor))
    return tuple(per_axis(given, len(factor), path))


def plan_upsample(g: Graph, r: ArchSpec, x: str, level: int, filters: int, factor: tuple[int, ...],
                  prefix: str | None = None, plain: bool = False) -> str:
    """The up-sampling into decoder ``level`` (``dec{level}_up``; ``{prefix}_up`` for a nested node).
    ``plain``: the up-sampling is the decoder's last conv and gets no norm or activation."""
    up = r.decoder.upsample
    group, path = prefix or f"dec{level}", "decoder.upsample"
    if isinstance(up, TransposeUp):
        kernel = sampling_kernel(up.kernel_size, factor, r.decoder.stages[level - 1].kernel_size, path + ".kernel_size")
        return plan_transpose_up(g, up, x, group, filters, factor, kernel, plain, level, len(r.decoder.stages))
    if isinstance(up, BlockUp):  # the decoder's block, up-sampling, with the level's kernel
        if plain:
            raise PlanError("the up-sampling into level 1 is its last layer, and a block up-sampling ends in an "
                            "addition: there is no conv to leave plain; give level 1 convs",
                            path="decoder.last_conv_only", value=True)
        stage = r.decoder.stages[level - 1]
        site = BlockSite(f"{group}_up", filters, stage.convs, tuple(stage.kernel_size), tuple(factor), group,
                         "decoder.block", "same")
        return plan_up_block_at(g, site, with_grn(r.decoder.block, up.global_resp_norm, path), x)
    if isinstance(up, InterpolateUp):  # no learned layer: the channels stay
        if plain:
            raise PlanError("the up-sampling into level 1 is its last layer, and interpolate has no conv to leave "
                            "plain; give level 1 convs, or use merge_at: after_upsample",
                            path="decoder.last_conv_only", value=True)
        if up.interpolation == "bilinear" and r.ndim != 2:
            raise PlanError(f"bilinear up-sampling works on 2D inputs only (Keras UpSampling{r.ndim}D has no "
                            f"interpolation); use nearest or linear", path="decoder.upsample.interpolation",
                            value="bilinear")
        return g.add(f"{group}_up", "upsample", (x,), g.channels(x), group=group, path=path,
                     factor=compact(factor), interpolation=up.interpolation)
    assert isinstance(up, ResizeUp)
    if up.interpolation == "bilinear" and r.ndim != 2:
        raise PlanError(f"bilinear up-sampling works on 2D inputs only (Keras UpSampling{r.ndim}D has no "
                        f"interpolation); use nearest or linear", path="decoder.upsample.interpolation",
                        value="bilinear")

    def resize(x: str) -> str:
        return g.add(f"{group}_up", "upsample", (x,), g.channels(x), group=group, path=path,
                     factor=compact(factor), interpolation=up.interpolation)

    def conv(x: str) -> str:
        if up.norm != "none" and not plain:
            return plan_normed_upconv(g, r, x, group, filters)
        return g.conv(f"{group}_upconv", x, filters, kernel=up.kernel_size, use_bias=up.bias,
                      activation="linear" if plain else up.activation, group=group, path=path,
                      negative_slope=up.negative_slope)

    return resize(conv(x)) if up.conv_first else conv(resize(x))


def plan_normed_upconv(g: Graph, r: ArchSpec, x: str, group: str, filters: int) -> str:
    """The conv after a resize, with ``upsample.norm``: conv without bias, the norm, the
    up-sampling's activation."""
    up = r.decoder.upsample
    path = "decoder.upsample"
    x = g.conv(f"{group}_upconv", x, filters, kernel=up.kernel_size, use_bias=False, group=group, path=path)
    x = g.norm(f"{group}_upnorm", x, up.norm, up.groups, group=group, path=path, epsilon=up.norm_epsilon,
               affine=up.norm_affine)
    if up.activation == "linear":
        return x
    return g.activation(f"{group}_upact", x, up.activation, group=group, path=path, negative_slope=up.negative_slope)


def plan_merge(g: Graph, r: ArchSpec, up: str, skip: str, level: int, align: str) -> str:
    """Align the skip with the up-sampled feature, then merge them."""
    p, path = f"dec{level}", "decoder"
    if align == "crop":
        skip = g.add(f"{p}_crop", "crop", (skip,), g.channels(skip), like=up, group=p, path=path + ".align")
    elif align == "pad":
        up = g.add(f"{p}_pad", "pad", (up,), g.channels(up), like=skip, group=p, path=path + ".align")
    elif align == "resize":
        if r.ndim != 2:
            raise PlanError(f"resize alignment works on 2D inputs only (Keras has no {r.ndim}D Resizing layer); "
                            f"use crop or pad", path="decoder.align", value="resize")
        skip = g.add(f"{p}_resize", "resize", (skip,), g.channels(skip), like=up, group=p, path=path + ".align")
    merge = r.decoder.merge
    mpath = path + ".merge"
    if isinstance(merge, AddMerge):
        if g.channels(skip) != g.channels(up):
            skip = g.conv(f"{p}_skip_proj", skip, g.channels(up), kernel=1, group=p, path=mpath)
        return g.add(f"{p}_add", "add", (up, skip), g.channels(up), group=p, path=mpath)
    if isinstance(merge, AttentionMerge):
        skip = plan_attention_gate(g, up, skip, p, merge.inter_filters or max(1, g.channels(skip) // 2), mpath,
                                   merge)
    pair = (skip, up) if getattr(merge, "order", "up_skip") == "skip_up" else (up, skip)
    return g.add(f"{p}_concat", "concat", pair, g.channels(up) + g.channels(skip), group=p, path=mpath)


def plan_attention_gate(g: Graph, gate: str, skip: str, p: str, inter: int, path: str,
                        merge: AttentionMerge | None = None) -> str:
    """Additive attention gate (Oktay et al. 2018): skip * sigmoid(psi(relu(Wx skip + Wg gate))); with
    ``merge.norm`` each of the three convs is normalised (MONAI's AttentionBlock); ``merge.combine``
    and ``merge.activation`` replace the addition and the relu."""
    merge = merge or AttentionMerge()
    norm = merge.norm

    def conv(name: str, x: str, filters: int, **kw) -> str:
        x = g.conv(name, x, filters, kernel=1, group=p, path=path, **kw)
        return x if norm == "none" else g.norm(f"{name}_norm", x, norm, 1, group=p, path=path + ".norm",
                                               epsilon=merge.norm_epsilon)

    theta = conv(f"{p}_attn_x", skip, inter, use_bias=merge.skip_bias)
    phi = conv(f"{p}_attn_g", gate, inter)
    s = g.add(f"{p}_attn_{merge.combine}", merge.combine, (theta, phi), inter, group=p, path=path)
    if merge.activation != "linear":
        s = g.activation(f"{p}_attn_{merge.activation}", s, merge.activation, group=p, path=path)
    if norm == "none":
        psi = g.conv(f"{p}_attn_psi", s, 1, kernel=1, activation="sigmoid", group=p, path=path)
    else:
        psi = g.activation(f"{p}_attn_sigmoid", conv(f"{p}_attn_psi", s, 1), "sigmoid", group=p, path=path)
    return g.add(f"{p}_attn_gate", "multiply", (skip, psi), g.channels(skip), group=p, path=path)


def plan_heads(g: Graph, spec: ArchSpec, features: dict[int, str]) -> dict[str, str]:
    """One conv per head (and per deep-supervision level); returns output name -> layer name."""
    depth = max(features) - 1
    outputs: dict[str, str] = {}
    for i, head in enumerate(spec.heads):
        path = f"heads[{i}]"
        extra = [(f"{head.name}_dec{lv}", lv, f"{path}.deep_supervision[{j}]")
                 for j, lv in enumerate(head.deep_supervision)]
        for name, level, where in [(head.name, head.level, path + ".level"), *extra]:
            if name in outputs:
                raise PlanError("two outputs share this name", path=path + ".name", value=name)
            if head.activation in LEARNED_SLOPES:
                raise PlanError(f"a head's layer is named after its output and must make it itself; "
                                f"{head.activation} needs a layer of its own, so use linear (or another activation)",
                                path=path + ".activation", value=head.activation)
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
            if head.fuse is not None:  # side outputs on several levels, concatenated, then the head's conv
                outputs.update(plan_fused_head(g, spec, i, features, outputs))
                break
            x = plan_head_preactivation(g, spec, i, name, features[level])
            x = plan_head_pre_conv(g, spec, i, name, x)
            if not head.conv:  # the level's features passed on, through a layer named after the output
                channels = g.channels(x)
                if head.filters != channels and head.deep_supervision:
                    each = {lv: g.channels(features[lv]) for _, lv, _ in [(None, head.level, None), *extra]
                            if lv in features}
                    raise PlanError(f"with conv: false each output passes its level's features on, and the head's "
                                    f"levels have {', '.join(f'{c} (level {lv})' for lv, c in each.items())} channels; "
                                    f"filters must equal all of them: let the head conv (conv: true), or give "
                                    f"deep_supervision levels of {head.filters} channels", path=path + ".filters",
                                    value=head.filters)
                if head.filters != channels:
                    raise PlanError(f"with conv: false the head passes on decoder level {level}'s features, which "
                                    f"have {channels} channels; set filters: {channels} (or let the head conv)",
                                    path=path + ".filters", value=head.filters)
                outputs[name] = g.activation(name, x, head.activation, group="head", path=path)
                continue
            outputs[name] = g.conv(name, x, head.filters, kernel=head.kernel_size,
                                   padding=spec.padding, activation=head.activation, group="head", path=path)
    return outputs


def plan_head_preactivation(g: Graph, r: ArchSpec, i: int, name: str, x: str) -> str:
    """Head ``i``'s ``pre_activation`` before its output ``name``: the decoder block's norm and
    activation (``{name}_norm``, ``{name}_act``), where it asks for them."""
    head, block, path = r.heads[i], r.decoder.block, f"heads[{i}].pre_activation"
    if not head.pre_activation:
        return x
    for taken in (f"{name}_norm", f"{name}_act"):
        if taken in g.nodes:
            raise PlanError(f"the head's norm and activation are named {name}_norm and {name}_act, and a layer "
                            f"{taken} exists already ({g.nodes[taken].path}); rename the head",
                            path=f"heads[{i}].name", value=head.name)
    if block.norm != "none":
        x = g.norm(f"{name}_norm", x, block.norm, block.groups, group="head", path=path,
                   epsilon=block.norm_epsilon, affine=block.norm_affine)
    if block.activation != "linear":
        x = g.activation(f"{name}_act", x, block.activation, group="head", path=path,
                         negative_slope=block.negative_slope)
    return x


def plan_head_pre_conv(g: Graph, r: ArchSpec, i: int, name: str, x: str) -> str:
    """Head ``i``'s ``pre_conv_kernel_size``: a conv to its filters, the decoder block's norm and
    activation (``{name}_pre_conv``, ``_pre_norm``, ``_pre_act``), where it asks for one."""
    head, block, path = r.heads[i], r.decoder.block, f"heads[{i}].pre_conv_kernel_size"
    if head.pre_conv_kernel_size is None:
        return x
    for taken in (f"{name}_pre_conv", f"{name}_pre_norm", f"{name}_pre_act"):
        if taken in g.nodes:
            raise PlanError(f"the head's conv before its own is named {name}_pre_conv (and _pre_norm, _pre_act), and "
                            f"a layer {taken} exists already ({g.nodes[taken].path}); rename the head",
                            path=f"heads[{i}].name", value=head.name)
    with_norm = block.norm != "none"
    use_bias = head.pre_conv_bias if head.pre_conv_bias is not None else (
        not with_norm if block.bias is None else block.bias)
    x = g.conv(f"{name}_pre_conv", x, head.filters, kernel=head.pre_conv_kernel_size, padding=r.padding,
               use_bias=use_bias, group="head", path=path)
    if with_norm:
        x = g.norm(f"{name}_pre_norm", x, block.norm, block.groups, group="head", path=path,
                   epsilon=block.norm_epsilon, affine=block.norm_affine)
    if block.activation != "linear":
        x = g.activation(f"{name}_pre_act", x, block.activation, group="head", path=path,
                         negative_slope=block.negative_slope)
    return x


def down_factors(resolved: ArchSpec) -> list[int]:
    """Per spatial axis, the product of the down-sampling factors that must divide a size exactly:
    legal sizes repeat with this period (or every size is legal, where pooling floors odd sizes and
    the decoder pads its up-sampled features back: the size solver finds that out)."""
    if resolved.encoder.type == "backbone":
        from archgen.backbones import BACKBONES

        return [BACKBONES[resolved.encoder.name].divisor] * resolved.ndim
    if resolved.encoder.type == "vit":  # the patches tile the input
        return [resolved.encoder.patch_size] * resolved.ndim
    if resolved.encoder.type == "swin":  # patches of 2, then a factor 2 per stage
        return [2 ** (len(resolved.encoder.depths) + 1)] * resolved.ndim
    # A transformer's patches tile the bottleneck: its size is a multiple of the patch size too.
    patch = resolved.encoder.transformer.patch_size if resolved.encoder.transformer is not None else 1
    stem = resolved.encoder.stem
    pool = stem.pool.factor if stem is not None and stem.pool is not None else 1
    periods = [prod(stage.stride[axis] for stage in resolved.encoder.stages) * patch * pool *
               (stem.stride[axis] if stem is not None else 1) for axis in range(resolved.ndim)]
    # An rsu block pools inside: a size at its level must also tile its own poolings.
    strides, blocks = level_strides(resolved), (resolved.encoder.block, resolved.decoder.block)
    for level in range(1, len(strides) + 1):
        inner = max(inner_factor(block, level, len(strides)) for block in blocks if block is not None)
        if inner > 1:
            periods = [lcm(period, inner * prod(s[axis] for s in strides[:level]))
                       for axis, period in enumerate(periods)]
    return periods
