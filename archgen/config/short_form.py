"""Rules of the short form that every resolver applies (``resolve`` for a U-Net's own encoder,
``resolve_backbone`` for a keras.applications one): a value per level or per axis, the encoder's
filters per level, ``decoder.stages`` as given, and the block the stages leave at its defaults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archgen.errors import PlanError
from archgen.config.model import ArchSpec, DecoderStage

BLOCK_SHORT = ("convs", "kernel_size")  # keys of a block that the stages replace


def per_level(value: Any, count: int, path: str, depth: int) -> list[Any]:
    """Broadcast a scalar to ``count`` levels, or check a list has ``count`` entries."""
    if not isinstance(value, list):
        return [value] * count
    if len(value) != count:
        raise PlanError(f"has {len(value)} entries; encoder.depth={depth} needs {count}", path=path, value=value)
    return list(value)


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


def per_axis(value: int | list[int], ndim: int, path: str) -> list[int]:
    """One value per spatial axis: a scalar is broadcast, a list must have ``ndim`` entries."""
    if isinstance(value, int):
        return [value] * ndim
    if len(value) != ndim:
        raise PlanError(f"has {len(value)} entries; the input has {ndim} spatial "
                        f"ax{'is' if ndim == 1 else 'es'}, so give {ndim} (or one number for all)",
                        path=path, value=value)
    return list(value)


def set_explicitly(model, keys) -> list[str]:
    return [k for k in keys if k in model.model_fields_set]


def value_at(model, dotted: str) -> Any:
    for part in dotted.split("."):
        model = getattr(model, part)
    return model


def block_style(block):
    """The block with the short-form keys the stages replace back at their defaults."""
    return block.model_copy(update={"convs": 2, "kernel_size": 3})


def explicit_decoder_stages(dec, ndim: int, depth: int, needs: str) -> list[DecoderStage]:
    """``decoder.stages`` as given, refused beside the short-form keys they replace or when their
    number is not ``depth`` (``needs`` says why), with per-axis kernels and ``up_filters`` filled in."""
    clash = [f"block.{k}" for k in set_explicitly(dec.block, BLOCK_SHORT)] if dec.block else []
    if "keep_channels" in dec.upsample.model_fields_set:
        clash.append("upsample.keep_channels")
    if clash:
        raise PlanError(f"decoder.stages gives these per stage; remove decoder.{clash[0]} (or decoder.stages)",
                        path=f"decoder.{clash[0]}", value=value_at(dec, clash[0]))
    if len(dec.stages) != depth:
        raise PlanError(f"has {len(dec.stages)} entries; {needs}", path="decoder.stages",
                        value=f"{len(dec.stages)} stages")
    return [s.model_copy(update={
        "kernel_size": per_axis(s.kernel_size, ndim, f"decoder.stages[{i}].kernel_size"),
        "up_filters": s.up_filters or s.filters}) for i, s in enumerate(dec.stages)]


def decoder_on_fixed_levels(spec: ArchSpec, filters: list[int], block, block_path: str, apart: str, needs: str,
                            skip_levels: list[int], no_skip: Callable[[int], str]):
    """The spelled-out decoder of an encoder whose levels are given, not planned (a backbone's taps,
    a transformer's levels): one stage per level below the bottleneck, level 1 first, up-sampling
    by 2 (``apart`` says why a factor may not be set); without ``decoder.stages`` each takes its
    level's ``filters`` and ``block``'s convs and kernel; ``skips: all`` is ``skip_levels``, and a
    level outside them is refused with ``no_skip(level)``; one alignment per level."""
    dec, ndim, depth = spec.decoder, spec.ndim, len(filters)
    up = dec.upsample
    if "factor" in up.model_fields_set and up.factor != 2:
        raise PlanError(f"{apart}, so the decoder up-samples by 2; remove decoder.upsample.factor",
                        path="decoder.upsample.factor", value=up.factor)
    if dec.stages is not None:
        stages = explicit_decoder_stages(dec, ndim, depth, needs)
    else:
        kernels = per_level(block.kernel_size, depth + 1, block_path + ".kernel_size", depth)
        stages = [DecoderStage(filters=f, convs=block.convs, blocks=1, kernel_size=[kernels[i]] * ndim, up_filters=f)
                  for i, f in enumerate(filters)]
    skips = dec.skips
    if skips == "all":
        skips = list(skip_levels)
    elif skips == "none":
        skips = []
    else:
        for i, level in enumerate(skips):
            if level not in skip_levels:
                raise PlanError(no_skip(level), path=f"decoder.skips[{i}]", value=level)
        skips = sorted(set(skips))
    align = per_level(dec.align, depth, "decoder.align", depth)
    update = {"factor": 2, **({"keep_channels": False} if "keep_channels" in up.model_fields else {})}
    return dec.model_copy(update={"skips": skips, "align": list(align), "upsample": up.model_copy(update=update),
                                  "block": block_style(block), "stages": stages})


def stem_levels(spec: ArchSpec) -> int:
    """Levels a stem makes of its own: 2 where it strides (level 1 the input, level 2 the stem's
    output, the first stage level 3), else none (its convs belong to level 1)."""
    stem = spec.encoder.stem if spec.encoder.type == "unet" else None
    if stem is None:
        return 0
    return 2 if any(s > 1 for s in ([stem.stride] if isinstance(stem.stride, int) else stem.stride)) else 0
