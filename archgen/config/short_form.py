"""Rules of the short form that every resolver applies (``resolve`` for a U-Net's own encoder,
``resolve_backbone`` for a keras.applications one): a value per level or per axis, the encoder's
filters per level, ``decoder.stages`` as given, and the block the stages leave at its defaults."""

from __future__ import annotations

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


def stem_levels(spec: ArchSpec) -> int:
    """Levels a stem makes of its own: 2 where it strides (level 1 the input, level 2 the stem's
    output, the first stage level 3), else none (its convs belong to level 1)."""
    stem = spec.encoder.stem if spec.encoder.type == "unet" else None
    if stem is None:
        return 0
    return 2 if any(s > 1 for s in ([stem.stride] if isinstance(stem.stride, int) else stem.stride)) else 0
