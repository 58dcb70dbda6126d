"""Options a config sets that change nothing in the network it describes.

A key that does nothing is usually a mistake (``groups: 8`` without ``norm: group``). It is not
an error, since a file may be shared between variants, but every command says so on stderr.
Only keys the config sets itself are reported, never defaults.
"""

from __future__ import annotations

from typing import Any, Iterator

from archgen.config.model import ArchSpec
from archgen.config.short_form import stem_levels


def unused_options(spec: ArchSpec) -> list[tuple[str, Any, str]]:
    """``(dotted path, value, why)`` for every key set in ``spec`` that has no effect."""
    found = []
    blocks = [("encoder.block", spec.encoder.block)] if spec.encoder.type == "unet" else []
    if spec.decoder.block is not None:
        blocks.append(("decoder.block", spec.decoder.block))
    for path, block in blocks:
        found += list(_block(path, block))
    found += list(_norm_options("decoder.upsample", spec.decoder.upsample))
    found += list(_norm_options("decoder.merge", spec.decoder.merge))
    for i, head in enumerate(spec.heads):
        if not head.conv and "kernel_size" in head.model_fields_set:
            found.append((f"heads[{i}].kernel_size", head.kernel_size, "the head has no conv (conv is false)"))
    if spec.decoder.skips == "none":
        for key in ("align", "merge"):
            if key in spec.decoder.model_fields_set:
                found.append((f"decoder.{key}", _shown(getattr(spec.decoder, key)),
                              "decoder.skips is none: there is no skip to align or merge"))
    if spec.decoder.upsample.type == "interpolate":
        for i, stage in enumerate(spec.decoder.stages or []):
            if "up_filters" in stage.model_fields_set and stage.up_filters is not None:
                found.append((f"decoder.stages[{i}].up_filters", stage.up_filters,
                              "decoder.upsample is interpolate: it has no learned layer, the channels stay"))
    if spec.decoder.cat_channels is not None and spec.decoder.type != "unet3+":
        found.append(("decoder.cat_channels", spec.decoder.cat_channels,
                      f"cat_channels applies to decoder.type unet3+ only (type is {spec.decoder.type})"))
    if spec.decoder.type == "unet3+" and spec.decoder.upsample.type == "resize":
        up = spec.decoder.upsample
        for key in ("kernel_size", "activation", "norm"):  # unet3+ gives each input a conv of its own
            if key in up.model_fields_set:
                found.append((f"decoder.upsample.{key}", getattr(up, key),
                              "decoder.type unet3+ resizes only; each input's conv is the decoder block's"))
    if spec.encoder.type == "unet" and spec.encoder.stages is not None:
        for key in ("depth",):
            levels = len(spec.encoder.stages) - 1 + stem_levels(spec)
            if key in spec.encoder.model_fields_set and spec.encoder.depth != levels:
                found.append((f"encoder.{key}", spec.encoder.depth, "encoder.stages sets the depth"))
    return found


def _block(path: str, block: Any) -> Iterator[tuple[str, Any, str]]:
    given = block.model_fields_set
    if "convs" in given and block.type == "convnext":
        yield f"{path}.convs", block.convs, "a convnext block's convs are fixed: a depthwise conv and two 1x1 convs"
    if "convs" in given and block.type == "rsu":
        yield f"{path}.convs", block.convs, "an rsu block's convs follow from its height"
    if "dilations" in given and block.type == "rsu" and "dilated" not in _listed(block.height):
        yield f"{path}.dilations", block.dilations, "no level's height is dilated"
    if "groups" in given and block.norm != "group":
        yield f"{path}.groups", block.groups, f"groups apply to norm: group only (norm is {block.norm})"
    for key in ("norm_epsilon", "norm_affine"):
        if key in given and block.norm == "none":
            yield f"{path}.{key}", getattr(block, key), "there is no norm (norm is none)"
    if "inner_ratio" in given and block.convs == 1 and block.inner_ratio != 1.0:
        yield f"{path}.inner_ratio", block.inner_ratio, "a block of one conv has no inner conv"
    if "order" in given and block.norm == "none":
        yield f"{path}.order", block.order, "there is no norm to order the activation against (norm is none)"
    if "shortcut_kernel_size" in given and getattr(block, "shortcut", None) == "resnet_d":
        yield f"{path}.shortcut_kernel_size", block.shortcut_kernel_size, "a resnet_d shortcut pools, then a 1x1 conv"
    if "shortcut_norm" in given and block.norm == "none":
        yield f"{path}.shortcut_norm", block.shortcut_norm, "there is no norm (norm is none)"


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _norm_options(path: str, part: Any) -> Iterator[tuple[str, Any, str]]:
    """The norm keys of an up-sampling or a merge that has no norm of that kind."""
    given, norm = part.model_fields_set, getattr(part, "norm", None)
    if norm is None:
        return
    for key in ("norm_epsilon", "norm_affine"):
        if key in given and norm == "none":
            yield f"{path}.{key}", getattr(part, key), "there is no norm (norm is none)"
    if "groups" in given and norm != "group":
        yield f"{path}.groups", part.groups, f"groups apply to norm: group only (norm is {norm})"


def _shown(value: Any) -> Any:
    return value.model_dump() if hasattr(value, "model_dump") else value
