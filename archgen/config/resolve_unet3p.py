"""The canonical form of a unet3+ decoder: what ``resolve`` spells out for its full-scale skips."""

from __future__ import annotations

from archgen.errors import PlanError
from archgen.config.model import ArchSpec, BlockUp, ResizeUp, TransposeUp


def unet3p_input_count(level: int, depth: int, skips: list[int]) -> int:
    """Inputs of unet3+ decoder ``level``: the skip levels at its scale or finer, and every deeper level
    with the bottleneck."""
    return sum(1 for s in skips if s <= level) + depth + 1 - level


def unet3p_defaults(spec: ArchSpec, enc_stages, dec_stages, skips: list[int]):
    """What the canonical form of a unet3+ spec spells out: ``cat_channels``, a resize up-sampling
    (bilinear in 2D, nearest otherwise, as the paper resizes) unless one is given (a transposed conv
    takes none of the keys that place a single one), and in the short form each stage's filters as
    ``cat_channels`` x its inputs (the paper's 5 x 64 = 320)."""
    dec = spec.decoder
    depth = len(enc_stages) - 1
    cat = dec.cat_channels or enc_stages[0].filters
    if isinstance(cat, list) and len(cat) != depth:
        raise PlanError(f"has {len(cat)} entries; the decoder has {depth} levels: give one per level (level 1 "
                        f"first) or one number for all", path="decoder.cat_channels", value=cat)
    if "upsample" not in dec.model_fields_set:
        up = ResizeUp(interpolation="bilinear" if spec.ndim == 2 else "nearest")
    else:
        up = dec.upsample
    if isinstance(up, BlockUp):
        raise PlanError("decoder.type=unet3+ up-samples deeper levels by several factors at once; a block up-sampling "
                        "enters one level from the next: use resize, interpolate or transpose",
                        path="decoder.upsample.type", value="block")
    if isinstance(up, TransposeUp):  # keras-unet-collection's unpool=False: one transposed conv per scale
        for key, plain in (("padding", "same"), ("conv_first", False), ("conv_after", None)):
            if getattr(up, key) != plain:
                raise PlanError(f"unet3+ up-samples each deeper level by one transposed conv of stride the scale "
                                f"between them; {key} does not apply: leave it out",
                                path=f"decoder.upsample.{key}", value=getattr(up, key))
    if dec.stages is None:
        dec_stages = [s.model_copy(update={"filters": cat_at(cat, level) * unet3p_input_count(level, depth, skips),
                                           "up_filters": cat_at(cat, level) * unet3p_input_count(level, depth, skips)})
                      for level, s in enumerate(dec_stages, start=1)]
    return {"cat_channels": cat, "upsample": up}, dec_stages


def cat_at(cat: int | list[int], level: int) -> int:
    """``decoder.cat_channels`` at decoder ``level`` (1-based)."""
    return cat[level - 1] if isinstance(cat, list) else cat
