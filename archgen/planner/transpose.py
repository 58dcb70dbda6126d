"""The transposed-conv up-sampling of a decoder level: Keras's "same", or PyTorch's explicit padding.

PyTorch's ConvTranspose places input i at output i * stride - padding (Keras's "same" at
i * stride - max(kernel - stride, 0) // 2), so the two differ by a shift wherever
padding != max(kernel - stride, 0) // 2 (MONAI's kernel 3, stride 2, padding 1, output_padding 1
against Keras's 0). A number as ``padding`` is therefore planned as a "valid" transposed conv, whose
full output puts input i at i * stride, then a crop of ``padding`` rows before and
``padding - output_padding`` after (``{name}_crop``), which lands on PyTorch's positions exactly.
A norm and the activation follow (MONAI's up-sampling is conv, norm, activation); ``conv_first``
puts a 1x1 conv before it (MONAI's SegResNet in its deconv mode), ``conv_after`` a conv with the
same norm and activation after it (keras-unet-collection's ``unpool=False``). ``output_padding``
is one number for every level or one per decoder level, each a number or one per axis; as in PyTorch
it stays below the level's stride on every axis (MONAI's UNet gives stride - 1, so 0 at a level that
keeps the size and [1, 0] at one that strides [2, 1]).
"""

from __future__ import annotations

from archgen.errors import PlanError
from archgen.config.model import TransposeUp


def output_padding_at(up: TransposeUp, level: int, levels: int, factor: tuple[int, ...]) -> tuple[int, ...]:
    """The ``output_padding`` of the up-sampling into decoder ``level`` (of ``levels``), one per axis,
    checked."""
    path, given = "decoder.upsample.output_padding", up.output_padding
    if isinstance(given, list) and len(given) != levels:
        raise PlanError(f"gives {len(given)} values for {levels} decoder levels; give one per level (level 1 "
                        "first) or one number for all", path=path, value=given)
    value = given[level - 1] if isinstance(given, list) else given
    where = f"{path}[{level - 1}]" if isinstance(given, list) else path
    shown = value if isinstance(given, list) else given
    ndim = len(factor)
    if isinstance(value, list) and len(value) != ndim:
        raise PlanError(f"has {len(value)} entries; the input has {ndim} spatial ax{'is' if ndim == 1 else 'es'}, "
                        f"so give {ndim} (or one number for all)", path=where, value=shown)
    per_axis = tuple(value) if isinstance(value, list) else (value,) * ndim
    if up.padding in ("same", "centered") and any(per_axis):
        raise PlanError(f"applies with a number as decoder.upsample.padding (PyTorch's), not with {up.padding}; "
                        "remove it or give the padding", path=where, value=shown)
    if isinstance(up.padding, int) and max(per_axis) > up.padding:
        raise PlanError(f"output_padding above the padding ({up.padding}) would add rows that only the bias "
                        f"reaches; use at most {up.padding}", path=where, value=shown)
    if any(p >= f for p, f in zip(per_axis, factor)):
        stride = factor[0] if len(set(factor)) == 1 else list(factor)
        most = [f - 1 for f in factor]
        most = most[0] if len(set(most)) == 1 else most
        raise PlanError(f"the up-sampling into level {level} has stride {stride}, and output_padding must be "
                        f"below the stride on each axis (as in PyTorch); give one value per decoder level, level 1 "
                        f"first, with at most {most} at level {level}", path=where, value=shown)
    return per_axis


def plan_transpose_up(g, up: TransposeUp, x: str, group: str, filters: int, factor: tuple[int, ...],
                      kernel: tuple[int, ...], plain: bool = False, level: int = 1, levels: int = 1) -> str:
    """``{group}_up`` (and ``_crop``, ``_norm``, ``_act``) into decoder ``level`` of ``levels``;
    ``plain``: no norm, no activation."""
    path, name = "decoder.upsample", f"{group}_up"
    explicit = up.padding != "same"
    output_padding = output_padding_at(up, level, levels, factor)
    if up.padding == "centered":  # MONAI's UpSample given a kernel: the output is factor x the input
        if any(s - 1 - (k - 1) % 2 > (k - 1) // 2 for k, s in zip(kernel, factor)):
            raise PlanError(f"centered padding of kernel {list(kernel)} at stride {list(factor)} (the up-sampling into "
                            f"level {level}) needs PyTorch's output_padding stride - 1 - (kernel - 1) % 2 above its "
                            f"padding (kernel - 1) // 2: rows only the bias reaches; give a kernel of at least "
                            f"2 x stride - 2 on each axis", path=path + ".kernel_size", value=up.kernel_size)
        padding = tuple((k - 1) // 2 for k in kernel)
        output_padding = tuple(s - 1 - (k - 1) % 2 for k, s in zip(kernel, factor))
    else:
        padding = (up.padding,) * len(kernel)
    act = "linear" if plain else up.activation
    norm = "none" if plain else up.norm
    alone = norm == "none" and not explicit  # nothing between the conv and its activation
    if up.conv_first:
        x = g.conv(f"{group}_upconv", x, filters, kernel=1, use_bias=False, group=group, path=path + ".conv_first")
    slope = up.negative_slope
    x = g.conv(name, x, filters, kernel=kernel, stride=factor, padding="valid" if explicit else "same",
               activation=act if alone else "linear", use_bias=up.bias, transpose=True, group=group, path=path,
               negative_slope=slope)
    if explicit:
        amounts = tuple((p, p - o) for p, o in zip(padding, output_padding))
        x = g.add(f"{name}_crop", "crop", (x,), filters, group=group, path=path + ".padding", amounts=amounts)
    if norm != "none":
        x = g.norm(f"{name}_norm", x, norm, up.groups, group=group, path=path, epsilon=up.norm_epsilon,
                   affine=up.norm_affine)
    if act != "linear" and not alone:
        x = g.activation(f"{name}_act", x, act, group=group, path=path, negative_slope=slope)
    if up.conv_after is not None:
        if plain:
            raise PlanError("the up-sampling into level 1 is its last layer, and a conv after it would follow the "
                            "plain transposed conv; give level 1 convs, or remove conv_after",
                            path="decoder.upsample.conv_after", value=up.conv_after)
        x = g.conv(f"{group}_postconv", x, filters, kernel=up.conv_after, use_bias=norm == "none",
                   activation=act if norm == "none" else "linear", group=group, path=path + ".conv_after",
                   negative_slope=slope)
        if norm != "none":
            x = g.norm(f"{group}_postnorm", x, norm, up.groups, group=group, path=path, epsilon=up.norm_epsilon,
                       affine=up.norm_affine)
            if act != "linear":
                x = g.activation(f"{group}_postact", x, act, group=group, path=path, negative_slope=slope)
    return x
