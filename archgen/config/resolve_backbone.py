"""The canonical form of a config whose encoder is a keras.applications backbone.

The encoder is the backbone's table row, so only the decoder is spelled out: one stage per
stride-2 step of the backbone (5 for a stride-32 backbone), level 1 (full resolution) first; the
skips as the levels that get a tap; one alignment per level. Without ``decoder.stages`` the decoder
is segmentation_models' Unet decoder: 16 filters at level 1, doubling to 256 at level 5.
"""

from __future__ import annotations

from archgen.backbones import BACKBONES
from archgen.config.model import ArchSpec, ConvBlock
from archgen.config.short_form import decoder_on_fixed_levels, per_axis

DEFAULT_LEVEL1_FILTERS = 16  # segmentation_models' decoder_filters=(256, 128, 64, 32, 16)


def spell_out_backbone(spec: ArchSpec) -> ArchSpec:
    backbone = BACKBONES[spec.encoder.name]
    depth, ndim, dec = backbone.depth, spec.ndim, spec.decoder
    tap_levels = [t.stride.bit_length() for t in backbone.taps][:-1]  # the last tap is the bottleneck
    strides = ", ".join(str(2 ** (level - 1)) for level in range(1, depth + 1))

    def no_skip(level: int) -> str:
        where = f"stride {2 ** (level - 1)}" if level <= depth else f"level {level}"
        return (f"{spec.encoder.name} has no tap at {where}; levels with a tap: {', '.join(map(str, tap_levels))} "
                f"(level L is stride 2^(L-1))")

    decoder = decoder_on_fixed_levels(
        spec, [DEFAULT_LEVEL1_FILTERS * 2 ** (level - 1) for level in range(1, depth + 1)], dec.block or ConvBlock(),
        "decoder.block" if dec.block else "decoder", "a backbone's taps are a stride of 2 apart",
        f"{spec.encoder.name} has a total stride of {backbone.divisor}, so the decoder needs {depth} stages, level 1 "
        f"first (strides {strides})", tap_levels, no_skip)
    encoder = spec.encoder
    if encoder.center is not None:
        center = encoder.center.model_copy(update={"kernel_size": per_axis(encoder.center.kernel_size, ndim,
                                                                            "encoder.center.kernel_size")})
        encoder = encoder.model_copy(update={"center": center})
    return spec.model_copy(update={"encoder": encoder, "decoder": decoder})
