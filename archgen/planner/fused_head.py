"""A head's fused output (U-Net 2, Qin et al. 2020; keras-unet-collection's ``u2net_2d``).

Layers of a head ``logits`` with ``fuse: {levels: [1, 2, 3]}`` reading level 1::

    logits_dec1                  side conv on decoder level 1, with the head's activation
    logits_dec2_conv             side conv on level 2
    logits_dec2_up               up-sampled to level 1 (by the strides between them)
    logits_dec2                  the head's activation
    logits_dec3_conv, _up, ...   the same from level 3
    logits_crop_dec1 ...         with valid padding: each side cropped to the smallest of them
    logits_concat                the sides, in the order of ``fuse.levels``
    logits                       the head's conv (its ``kernel_size``) and activation: the output

A side's layer is named after it; with ``fuse.outputs`` the sides are outputs of their own.
"""

from __future__ import annotations

from math import prod

from archgen.errors import PlanError
from archgen.planner.axes import compact
from archgen.config.model import ArchSpec, HeadSpec


def level_strides(r: ArchSpec) -> list[tuple[int, ...]]:
    """Strides into each level of a resolved unet encoder, level 1 first (a stem that strides makes
    levels 1 and 2 of its own, as ``layout`` lays them out)."""
    ones = (1,) * r.ndim
    strides = [tuple(stage.stride) for stage in r.encoder.stages]
    stem = r.encoder.stem
    if stem is not None and any(s > 1 for s in stem.stride):
        pool = stem.pool.factor if stem.pool is not None else 1
        strides = [ones, tuple(stem.stride), tuple(s * pool for s in strides[0]), *strides[1:]]
    return strides


def plan_fused_head(g, r: ArchSpec, i: int, features: dict[int, str], taken: dict[str, str]) -> dict[str, str]:
    """Head ``i``'s sides and fused output; returns output name -> layer (the sides first where they
    are outputs). ``taken``: the outputs planned before it."""
    head: HeadSpec = r.heads[i]
    fuse, path = head.fuse, f"heads[{i}]"
    refused = [("conv", not head.conv, "a fused head's conv reads the sides' concatenation; set conv: true"),
               ("deep_supervision", bool(head.deep_supervision),
                "a fused head's sides are its deep supervision; set fuse.outputs: true instead"),
               ("pre_activation", head.pre_activation, "a fused head's conv reads the sides, not a level's features")]
    for key, bad, why in refused:
        if bad:
            raise PlanError(why, path=f"{path}.{key}", value=getattr(head, key))
    if r.encoder.type != "unet":
        raise PlanError("a fused head needs the strides between levels of an encoder built from blocks; use "
                        "encoder.type unet", path=f"{path}.fuse", value=fuse.model_dump())
    if fuse.interpolation == "bilinear" and r.ndim != 2:
        raise PlanError(f"bilinear up-sampling works on 2D inputs only (Keras UpSampling{r.ndim}D has no "
                        f"interpolation); use linear or nearest", path=f"{path}.fuse.interpolation", value="bilinear")
    depth = max(features) - 1
    strides = level_strides(r)
    sides: list[tuple[str, str]] = []
    outputs: dict[str, str] = {}
    for j, level in enumerate(fuse.levels):
        where = f"{path}.fuse.levels[{j}]"
        if level not in features:
            raise PlanError(f"no decoder level {level}; with encoder.depth={depth} sides read levels "
                            f"1..{depth + 1} ({depth + 1} = bottleneck)", path=where, value=level)
        if level < head.level:
            raise PlanError(f"the sides are up-sampled to the head's level {head.level}; a side is at that level "
                            f"or deeper", path=where, value=level)
        name = f"{head.name}_dec{level}"
        for layer in (name, f"{name}_conv", f"{name}_up", f"{head.name}_crop_dec{level}"):
            if layer in g.nodes or layer in taken or layer in outputs:
                raise PlanError(f"the fused head names a layer {layer}, which another layer or output already has "
                                f"(a level given twice, or another head's); rename the head or drop the level",
                                path=where, value=level)
        scale = tuple(prod(strides[m][axis] for m in range(head.level, level)) for axis in range(r.ndim))
        if all(s == 1 for s in scale):
            side = g.conv(name, features[level], head.filters, kernel=fuse.kernel_size, padding=r.padding,
                          activation=head.activation, group="head", path=f"{path}.fuse")
        else:  # conv at the level's scale, up-sampled, then the activation
            linear = head.activation == "linear"
            x = g.conv(f"{name}_conv", features[level], head.filters, kernel=fuse.kernel_size, padding=r.padding,
                       group="head", path=f"{path}.fuse")
            x = g.add(name if linear else f"{name}_up", "upsample", (x,), head.filters, group="head",
                      path=f"{path}.fuse", factor=compact(scale), interpolation=fuse.interpolation)
            side = x if linear else g.activation(name, x, head.activation, group="head", path=f"{path}.fuse")
        sides.append((f"dec{level}", side))
        if fuse.outputs:
            outputs[name] = side
    if f"{head.name}_concat" in g.nodes:
        raise PlanError(f"the fused head names its concatenation {head.name}_concat, which another layer already has; "
                        f"rename the head", path=f"{path}.name", value=head.name)
    layers = [layer for _, layer in sides]
    paddings = {r.padding, r.encoder.block.padding, r.decoder.block.padding if r.decoder.block else None}
    if "valid" in paddings and len(sides) > 1:
        layers = [g.add(f"{head.name}_crop_{label}", "crop", (layer,), head.filters, group="head",
                        path=f"{path}.fuse", smallest_of=tuple(layers)) for label, layer in sides]
    x = g.add(f"{head.name}_concat", "concat", tuple(layers), head.filters * len(layers), group="head",
              path=f"{path}.fuse")
    outputs[head.name] = g.conv(head.name, x, head.filters, kernel=head.kernel_size, padding=r.padding,
                                activation=head.activation, group="head", path=path)
    return outputs
