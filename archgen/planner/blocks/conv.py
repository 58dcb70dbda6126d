"""The plain block: ``convs`` convs, each with its norm and activation (U-Net's double conv), then
squeeze-and-excitation and dropout where the config asks. The residual block reuses its convs."""

from __future__ import annotations

from archgen.errors import PlanError
from archgen.planner.axes import fusable
from archgen.planner.blocks.se import plan_se
from archgen.planner.blocks.site import BlockSite

BLOCK_TYPE = "conv"


def plan(g, site: BlockSite, block, x: str) -> str:
    """The block's layers from ``x``; returns the name of its output."""
    x = plan_convs(g, site, block, x, residual=False)
    return plan_tail(g, site, block, plan_gate(g, site, block, x))
    return plan_tail(g, site, block, plan_gate(g, site, block, x))


ConvShape = tuple[int, tuple[int, ...], tuple[int, ...]]  # one conv's filters, kernel and stride


def conv_shapes(site: BlockSite, block) -> list[ConvShape]:
    """Each conv of a plain or residual block: the stage's kernel, the first conv strides, every
    conv but the last has ``inner_ratio`` x the filters."""
    inner = max(1, round(site.filters * block.inner_ratio))
    ones = (1,) * len(site.kernel)
    return [(site.filters if i == site.convs else inner, site.kernel, site.stride if i == 1 else ones)
            for i in range(1, site.convs + 1)]


def norm_act(g, site: BlockSite, block, x: str, i: int | str, act: str, *, conv_acts: bool = False) -> str:
    """The norm and activation that go with conv ``i`` (``{prefix}_norm{i}``, ``{prefix}_act{i}``),
    in the block's order; none of the activation where the conv applies it itself (``conv_acts``)."""
    slope = block.negative_slope
    act_first = block.order == "act_norm"
    own_layer = act != "linear" and not conv_acts
    if own_layer and act_first:
        x = g.activation(f"{site.prefix}_act{i}", x, act, group=site.group, path=site.path, negative_slope=slope)
    if block.norm != "none":
        x = g.norm(f"{site.prefix}_norm{i}", x, block.norm, block.groups, group=site.group, path=site.path,
                   epsilon=block.norm_epsilon, affine=block.norm_affine)
    if own_layer and not act_first:
        x = g.activation(f"{site.prefix}_act{i}", x, act, group=site.group, path=site.path, negative_slope=slope)
    return x


def plan_convs(g, site: BlockSite, block, x: str, *, residual: bool, shapes: list[ConvShape] | None = None,
               preactivated: bool = False, first_index: int = 1) -> str:
    """The block's convs from ``x``, shaped by ``shapes`` (default ``conv_shapes``). A residual
    block's last conv is left without its activation (it follows the addition) unless the block adds
    after activating. With ``order: pre_activation`` each conv's norm and activation come before it
    and none after; ``preactivated``: the first conv's are already applied to ``x``; the convs are
    numbered from ``first_index``."""
    shapes = shapes or conv_shapes(site, block)
    with_norm = block.norm != "none"
    use_bias = not with_norm if block.bias is None else block.bias
    slope = block.negative_slope
    strided = next((i for i, (_, _, stride) in enumerate(shapes, 1) if any(s > 1 for s in stride)), None)
    if block.dilation > 1 and strided is not None:
        raise PlanError(f"{site.prefix}_conv{strided} strides (encoder.downsample.type=stride) and Keras cannot "
                        f"dilate a strided conv; use dilation 1 or another down-sampling", path=site.path + ".dilation",
                        value=block.dilation)
    pre = block.order == "pre_activation"
    act_first = block.order == "act_norm"
    # The conv applies the activation itself where nothing comes between them.
    conv_acts = not pre and fusable(block.activation, slope) and (not with_norm or act_first)
    add_after_act = residual and block.add_at in ("after_activation", "between_activations")

    for i, (filters, kernel, stride) in enumerate(shapes, first_index):
        last = i == first_index + len(shapes) - 1
        plain = site.plain_last and last
        if pre:  # norm and activation, then the conv: nothing after the last one
            if not (i == first_index and preactivated):
                x = norm_act(g, site, block, x, i, block.activation)
            x = g.conv(f"{site.prefix}_conv{i}", x, filters, kernel=kernel, dilation=block.dilation, stride=stride,
                       padding=site.padding, use_bias=use_bias, group=site.group, path=site.path)
            continue
        # A residual block activates after the addition, not after its last conv (unless it adds after).
        act = "linear" if (residual and last and not add_after_act) or plain else block.activation
        x = g.conv(f"{site.prefix}_conv{i}", x, filters, kernel=kernel, dilation=block.dilation, stride=stride,
                   padding=site.padding, activation=act if conv_acts else "linear", use_bias=use_bias,
                   group=site.group, path=site.path)
        if not plain:
            x = norm_act(g, site, block, x, i, act, conv_acts=conv_acts)
    return x


def plan_gate(g, site: BlockSite, block, x: str) -> str:
    """Squeeze-and-excitation after the convs, where the config asks for it."""
    return x if block.se is None else plan_se(g, x, site.prefix, block.se, group=site.group, path=site.path)


def plan_tail(g, site: BlockSite, block, x: str) -> str:
    """Dropout at the block's end (none after a plain last conv)."""
    if block.dropout > 0 and not site.plain_last:
        x = g.add(f"{site.prefix}_drop", "dropout", (x,), site.filters, group=site.group, path=site.path,
                  rate=block.dropout)
    return x
