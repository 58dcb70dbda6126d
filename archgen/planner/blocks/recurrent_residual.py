"""R2U-Net's recurrent residual block (Alom et al. 2018), as keras-unet-collection's RR_CONV builds it.

Layers of a block named ``enc2`` with ``convs: 2, recurrences: 2``::

    enc2_in                        1x1 conv to the level's filters (strides where the stage does)
    enc2_unit1_conv0 / _norm0 / _act0     r0 = conv(x), x = enc2_in
    enc2_unit1_add1, enc2_unit1_conv1 ... r1 = conv(x + r0)
    enc2_unit1_add2, enc2_unit1_conv2 ... r2 = conv(x + r1); x = r2 for the next unit
    enc2_unit2_...
    enc2_residual                  enc2_in + the last unit's output

Each conv is a layer of its own (the "recurrent" convs of a unit do not share weights, as in
keras-unet-collection). With valid padding the unit's input and the shortcut are centre-cropped to
the conv's output before each addition (``_crop{j}``, ``enc2_shortcut_crop``).
"""

from __future__ import annotations

from archgen.errors import PlanError
from archgen.planner.axes import fusable
from archgen.planner.blocks.se import plan_se
from archgen.planner.blocks.site import BlockSite
from archgen.config.model import RecurrentResidualBlock

BLOCK_TYPE = "recurrent_residual"


def plan(g, site: BlockSite, block: RecurrentResidualBlock, x: str) -> str:
    """The block's layers from ``x``; returns the name of its output (after its dropout, if any)."""
    if site.plain_last:
        raise PlanError("a recurrent residual block ends in an addition, so it has no last conv to leave "
                        "plain; use a conv or residual decoder block, or remove last_conv_only",
                        path="decoder.last_conv_only", value=True)
    if block.order == "pre_activation":
        raise PlanError("a recurrent unit adds each conv's output to its input and convolves again, so it has "
                        "no place for a norm before each conv; use norm_act or act_norm",
                        path=site.path + ".order", value=block.order)
    return plan_recurrent_block(g, site.padding, x, site.prefix, site.filters, site.convs, site.kernel, site.stride,
                                block=block, group=site.group, path=site.path,
                                fused=fusable(block.activation, block.negative_slope))


def plan_recurrent_block(g, padding: str, x: str, prefix: str, filters: int, units: int, kernel: tuple[int, ...],
                         stride: tuple[int, ...], *, block: RecurrentResidualBlock, group: str, path: str,
                         fused: bool) -> str:
    """The block's layers from ``x``; returns the name of its output (after its dropout, if any)."""
    with_norm = block.norm != "none"
    use_bias = not with_norm if block.bias is None else block.bias
    if block.inner_ratio != 1.0:
        raise PlanError("a recurrent residual block adds every conv's output to its input, so every conv has "
                        "the level's filters; remove inner_ratio", path=path + ".inner_ratio", value=block.inner_ratio)
    valid = padding == "valid" and any((k - 1) * block.dilation > 0 for k in kernel)

    act, act_first = block.activation, block.order == "act_norm"
    conv_acts = fused and (not with_norm or act_first)  # the conv applies the activation itself
    own_act = act != "linear" and not conv_acts

    def conv_norm_act(name: str, x: str, j: int) -> str:
        x = g.conv(f"{name}_conv{j}", x, filters, kernel=kernel, dilation=block.dilation, padding=padding,
                   activation=act if conv_acts else "linear", use_bias=use_bias, group=group, path=path)
        if own_act and act_first:
            x = g.activation(f"{name}_act{j}", x, act, group=group, path=path, negative_slope=block.negative_slope)
        if with_norm:
            x = g.norm(f"{name}_norm{j}", x, block.norm, block.groups, group=group, path=path,
                       epsilon=block.norm_epsilon, affine=block.norm_affine)
        if own_act and not act_first:
            x = g.activation(f"{name}_act{j}", x, act, group=group, path=path, negative_slope=block.negative_slope)
        return x

    # No norm follows the 1x1 conv, so its bias is not redundant: it always has one (as RR_CONV's).
    shortcut = g.conv(f"{prefix}_in", x, filters, kernel=1, stride=stride, group=group, path=path)
    main = shortcut
    for u in range(1, units + 1):
        name = f"{prefix}_unit{u}"
        out = conv_norm_act(name, main, 0)
        for j in range(1, block.recurrences + 1):
            held = g.add(f"{name}_crop{j}", "crop", (main,), filters, like=out, group=group, path=path) \
                if valid else main
            out = conv_norm_act(name, g.add(f"{name}_add{j}", "add", (out, held), filters, group=group, path=path), j)
        main = out
    if block.se is not None:
        main = plan_se(g, main, prefix, block.se, group=group, path=path)
    if valid:
        shortcut = g.add(f"{prefix}_shortcut_crop", "crop", (shortcut,), filters, like=main, group=group, path=path)
    x = g.add(f"{prefix}_residual", "add", (main, shortcut), filters, group=group, path=path)
    if block.dropout > 0:
        x = g.add(f"{prefix}_drop", "dropout", (x,), filters, group=group, path=path, rate=block.dropout)
    return x
