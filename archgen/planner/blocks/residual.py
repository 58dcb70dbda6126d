"""The residual block: the plain block's convs, then a shortcut added to them (He et al. 2016).

The shortcut projects where the channels change or the block strides: a conv (1x1, or the
block's kernel where it strides, ``shortcut_kernel_size``) or, for ``shortcut: resnet_d``, an
average pool then a 1x1 conv (He et al. 2019); with valid padding it is centre-cropped to the
convs' output; ``shortcut: repeat`` repeats the input's channels instead (V-Net). The activation
follows the addition, or precedes it (``add_at: after_activation``), or both (``between_activations``).

With ``order: pre_activation`` (He et al. 2016b) the block is norm, activation, conv, ..., norm,
activation, conv, then the addition, nothing after; an identity shortcut reads the block's input, a
projecting one its pre-activated input (the first norm and activation, shared by both paths, as
image-classifiers' ResNets and the paper's code have it). A stage of such blocks may end in one
more norm and activation (``stage_output: activated``, ``plan_stage_output``).
"""

from __future__ import annotations

from dataclasses import replace

from archgen.errors import PlanError
from archgen.planner.axes import compact, fusable
from archgen.planner.blocks.conv import ConvShape, conv_shapes, norm_act, plan_convs, plan_gate, plan_tail
from archgen.planner.blocks.site import BlockSite

BLOCK_TYPE = "residual"


def plan(g, site: BlockSite, block, x: str) -> str:
    """The block's layers from ``x``; returns the name of its output."""
    return plan_residual(g, site, block, x)


def plan_residual(g, site: BlockSite, block, x: str, shapes: list[ConvShape] | None = None) -> str:
    """A residual block whose convs are ``shapes`` (default: the plain block's); the bottleneck
    block gives its own."""
    block_in = x
    check_shortcut_from(site, block, shapes)
    if block.order == "pre_activation":
        pre = x if site.activated else norm_act(g, site, block, x, 1, block.activation)
        x = plan_gate(g, site, block, plan_convs(g, site, block, pre, residual=True, shapes=shapes,
                                                 preactivated=True))
        shortcut = plan_shortcut(g, site, block, block_in, x, projected_from=pre)
        x = g.add(f"{site.prefix}_residual", "add", (x, shortcut), site.filters, group=site.group, path=site.path)
        return plan_tail(g, site, block, x)
    if block.shortcut_from == "first_conv":  # the first conv outside the residual path, its output the shortcut
        shapes = shapes or conv_shapes(site, block)
        x = block_in = plan_convs(g, replace(site, plain_last=False), block, x, residual=False, shapes=shapes[:1])
        shapes = shapes[1:]
        x = plan_gate(g, site, block, plan_convs(g, site, block, x, residual=True, shapes=shapes, first_index=2))
    else:
        x = plan_gate(g, site, block, plan_convs(g, site, block, x, residual=True, shapes=shapes))
    if block.shortcut_from == "upsampled":
        block_in = site.upsampled
    # After the first conv the shortcut has the convs' size already: it strides no more.
    at = replace(site, stride=(1,) * len(site.stride)) if block.shortcut_from == "first_conv" else site
    shortcut = plan_shortcut(g, at, block, block_in, x)
    x = g.add(f"{site.prefix}_residual", "add", (x, shortcut), site.filters, group=site.group, path=site.path)
    if block.activation != "linear" and block.add_at != "after_activation" and not site.plain_last:
        slope = None if fusable(block.activation, block.negative_slope) else block.negative_slope
        x = g.activation(f"{site.prefix}_act", x, block.activation, group=site.group, path=site.path,
                         negative_slope=slope)
    return plan_tail(g, site, block, x)


def check_shortcut_from(site: BlockSite, block, shapes: list[ConvShape] | None) -> None:
    """A ``shortcut_from`` the block at ``site`` can take, else a ``PlanError`` that says why."""
    source, path = block.shortcut_from, site.path + ".shortcut_from"
    if source == "input":
        return
    if block.order == "pre_activation":
        raise PlanError("a pre-activation block adds its shortcut to its input; use shortcut_from input, or "
                        "order norm_act", path=path, value=source)
    if source == "first_conv" and len(shapes or conv_shapes(site, block)) < 2:
        raise PlanError(f"{site.prefix} has one conv, and with shortcut_from first_conv the convs after the first "
                        f"make the residual path; give it 2 or more", path=path, value=source)
    if source == "upsampled" and site.upsampled is None:
        where = "a later block of the stage" if not site.first else site.prefix
        raise PlanError(f"{where} has no up-sampled feature to read: only the first block of a decoder stage that "
                        f"up-samples, then joins its skip (decoder.type unet, merge_at after_upsample) has one",
                        path=path, value=source)


def plan_stage_output(g, prefix: str, block, x: str, *, path: str) -> str:
    """A pre-activation stage's output normalised and activated (``{prefix}_out_norm``,
    ``{prefix}_out_act``): what it hands on with ``stage_output: activated``."""
    site = BlockSite(f"{prefix}_out", g.channels(x), 0, (), (), prefix, path, "same")
    return norm_act(g, site, block, x, "", block.activation)


def plan_shortcut(g, site: BlockSite, block, shortcut: str, out: str, projected_from: str | None = None) -> str:
    """The block's input brought to the channels and size of its convs' output ``out``; a projection
    reads ``projected_from`` where given (a pre-activation block's normalised input)."""
    forced = getattr(block, "project", "when_needed") == "first_block" and site.first
    project = g.channels(shortcut) != site.filters or site.strides or forced
    if project and projected_from is not None:
        shortcut = projected_from
    with_norm = block.norm != "none"
    use_bias = not with_norm if block.bias is None else block.bias
    prefix, group, path = site.prefix, site.group, site.path

    def norm(x: str, where: str) -> str:
        if not (with_norm and block.shortcut_norm):
            return x
        return g.norm(f"{prefix}_proj_norm", x, block.norm, block.groups, group=group, path=where,
                      epsilon=block.norm_epsilon, affine=block.norm_affine)

    if block.shortcut == "resnet_d":
        if site.strides:
            shortcut = g.add(f"{prefix}_shortcut_pool", "avgpool", (shortcut,), g.channels(shortcut), group=group,
                             path=path + ".shortcut", factor=compact(site.stride))
        if g.channels(shortcut) != site.filters or forced:
            shortcut = g.conv(f"{prefix}_proj", shortcut, site.filters, kernel=1, use_bias=False, group=group,
                              path=path + ".shortcut")
            shortcut = norm(shortcut, path)
    elif block.shortcut == "repeat":
        if project:
            shortcut = plan_repeat(g, site, shortcut)
    elif project:
        size = block.shortcut_kernel_size
        # 1x1 where only the channels change; where the block strides, the kernel the block asks for
        kernel = (site.kernel if size == "block" else size) if site.strides else 1
        shortcut = g.conv(f"{prefix}_proj", shortcut, site.filters, kernel=kernel, stride=site.stride,
                          use_bias=use_bias, group=group, path=path)
        shortcut = norm(shortcut, path)
    if site.padding == "valid" and any((k - 1) * block.dilation > 0 for k in site.kernel):
        shortcut = g.add(f"{prefix}_shortcut_crop", "crop", (shortcut,), site.filters, like=out, group=group,
                         path=path)
    return shortcut


def plan_repeat(g, site: BlockSite, x: str) -> str:
    """``x``'s channels repeated up to the block's filters (``{prefix}_shortcut_repeat``): PyTorch's
    ``x.repeat`` along the channels, the whole input again and again, as one concatenation."""
    channels, path = g.channels(x), site.path + ".shortcut"
    if site.strides:
        raise PlanError(f"{site.prefix} strides, and a repeated input keeps its size; use shortcut plain or "
                        f"resnet_d, or down-sample before the block", path=path, value="repeat")
    if site.filters % channels:
        raise PlanError(f"{site.prefix} makes {site.filters} channels from {channels}, which do not divide them, so "
                        f"its input cannot be repeated up to them; use shortcut plain or resnet_d", path=path,
                        value="repeat")
    return g.add(f"{site.prefix}_shortcut_repeat", "concat", (x,) * (site.filters // channels), site.filters,
                 group=site.group, path=path)
