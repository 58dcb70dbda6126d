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


def plan_convs(g, site: BlockSite, block, x: str, *, residual: bool) -> str:
    """The block's convs from ``x``. A residual block's last conv is left without its activation
    (it follows the addition) unless the block adds after activating."""
    with_norm = block.norm != "none"
    use_bias = not with_norm if block.bias is None else block.bias
    inner = max(1, round(site.filters * block.inner_ratio))
    slope = block.negative_slope
    if block.dilation > 1 and site.strides:
        raise PlanError(f"{site.prefix}_conv1 strides (encoder.downsample.type=stride) and Keras cannot dilate a "
                        f"strided conv; use dilation 1 or another down-sampling", path=site.path + ".dilation",
                        value=block.dilation)
    act_first = block.order == "act_norm"
    # The conv applies the activation itself where nothing comes between them.
    conv_acts = fusable(block.activation, slope) and (not with_norm or act_first)
    add_after_act = residual and block.add_at == "after_activation"

    def norm_act(x: str, i: int | str, act: str) -> str:
        own_layer = act != "linear" and not conv_acts
        if own_layer and act_first:
            x = g.activation(f"{site.prefix}_act{i}", x, act, group=site.group, path=site.path, negative_slope=slope)
        if with_norm:
            x = g.norm(f"{site.prefix}_norm{i}", x, block.norm, block.groups, group=site.group, path=site.path,
                       epsilon=block.norm_epsilon, affine=block.norm_affine)
        if own_layer and not act_first:
            x = g.activation(f"{site.prefix}_act{i}", x, act, group=site.group, path=site.path, negative_slope=slope)
        return x

    for i in range(1, site.convs + 1):
        last = i == site.convs
        plain = site.plain_last and last
        # A residual block activates after the addition, not after its last conv (unless it adds after).
        act = "linear" if (residual and last and not add_after_act) or plain else block.activation
        x = g.conv(f"{site.prefix}_conv{i}", x, site.filters if last else inner, kernel=site.kernel,
                   dilation=block.dilation, stride=site.stride if i == 1 else 1, padding=site.padding,
                   activation=act if conv_acts else "linear", use_bias=use_bias, group=site.group, path=site.path)
        if not plain:
            x = norm_act(x, i, act)
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
