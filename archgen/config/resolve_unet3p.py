"""The canonical form of a unet3+ decoder: what ``resolve`` spells out for its full-scale skips."""

from __future__ import annotations

from archgen.errors import PlanError
from archgen.config.model import ArchSpec, ResizeUp, TransposeUp


def unet3p_input_count(level: int, depth: int, skips: list[int]) -> int:
    """Inputs of unet3+ decoder ``level``: the skip levels at its scale or finer, and every deeper level
    with the bottleneck."""
    return sum(1 for s in skips if s <= level) + depth + 1 - level


def unet3p_defaults(spec: ArchSpec, enc_stages, dec_stages, skips: list[int]):
    """What the canonical form of a unet3+ spec spells out: ``cat_channels``, a resize up-sampling
    (bilinear in 2D, nearest otherwise, as the paper resizes) unless one is given, and in the short
    form each stage's filters as ``cat_channels`` x its inputs (the paper's 5 x 64 = 320)."""
    dec = spec.decoder
    cat = dec.cat_channels or enc_stages[0].filters
    if "upsample" not in dec.model_fields_set:
        up = ResizeUp(interpolation="bilinear" if spec.ndim == 2 else "nearest")
    elif isinstance(dec.upsample, TransposeUp):
        raise PlanError("decoder.type=unet3+ resizes deeper levels up by several factors at once and gives each "
                        "a conv of its own; use type resize", path="decoder.upsample.type", value="transpose")
    else:
        up = dec.upsample
    if dec.stages is None:
        depth = len(enc_stages) - 1
        dec_stages = [s.model_copy(update={"filters": cat * unet3p_input_count(level, depth, skips),
                                           "up_filters": cat * unet3p_input_count(level, depth, skips)})
                      for level, s in enumerate(dec_stages, start=1)]
    return {"cat_channels": cat, "upsample": up}, dec_stages
