"""The canonical form of a config whose encoder is a keras.applications backbone.

The encoder is the backbone's table row, so only the decoder is spelled out: one stage per
stride-2 step of the backbone (5 for a stride-32 backbone), level 1 (full resolution) first; the
skips as the levels that get a tap; one alignment per level. Without ``decoder.stages`` the decoder
is segmentation_models' Unet decoder: 16 filters at level 1, doubling to 256 at level 5.
"""

from __future__ import annotations

from archgen.backbones import BACKBONES
from archgen.errors import PlanError
from archgen.config.model import ArchSpec, ConvBlock, DecoderStage
from archgen.config.short_form import block_style, explicit_decoder_stages, per_axis, per_level

DEFAULT_LEVEL1_FILTERS = 16  # segmentation_models' decoder_filters=(256, 128, 64, 32, 16)


def spell_out_backbone(spec: ArchSpec) -> ArchSpec:
    backbone = BACKBONES[spec.encoder.name]
    depth, ndim, dec = backbone.depth, spec.ndim, spec.decoder
    tap_levels = [t.stride.bit_length() for t in backbone.taps][:-1]  # the last tap is the bottleneck
    up = dec.upsample
    if "factor" in up.model_fields_set and up.factor != 2:
        raise PlanError("a backbone's taps are a stride of 2 apart, so the decoder up-samples by 2; remove "
                        "decoder.upsample.factor", path="decoder.upsample.factor", value=up.factor)
    block = dec.block or ConvBlock()
    strides = ", ".join(str(2 ** (level - 1)) for level in range(1, depth + 1))
    if dec.stages is not None:
        stages = explicit_decoder_stages(dec, ndim, depth, f"{spec.encoder.name} has a total stride of "
                                         f"{backbone.divisor}, so the decoder needs {depth} stages, level 1 first "
                                         f"(strides {strides})")
    else:
        path = "decoder.block" if dec.block else "decoder"
        kernels = per_level(block.kernel_size, depth + 1, path + ".kernel_size", depth)
        stages = []
        for level in range(1, depth + 1):
            filters = DEFAULT_LEVEL1_FILTERS * 2 ** (level - 1)
            stages.append(DecoderStage(filters=filters, convs=block.convs, blocks=1,
                                       kernel_size=[kernels[level - 1]] * ndim, up_filters=filters))
    skips = dec.skips
    if skips == "all":
        skips = tap_levels
    elif skips == "none":
        skips = []
    else:
        for i, level in enumerate(skips):
            if level not in tap_levels:
                where = f"stride {2 ** (level - 1)}" if level <= depth else f"level {level}"
                raise PlanError(f"{spec.encoder.name} has no tap at {where}; levels with a tap: "
                                f"{', '.join(map(str, tap_levels))} (level L is stride 2^(L-1))",
                                path=f"decoder.skips[{i}]", value=level)
        skips = sorted(set(skips))
    align = per_level(dec.align, depth, "decoder.align", depth)
    update = {"factor": 2, **({"keep_channels": False} if "keep_channels" in up.model_fields else {})}
    decoder = dec.model_copy(update={"skips": skips, "align": list(align), "upsample": up.model_copy(update=update),
                                     "block": block_style(block), "stages": stages})
    encoder = spec.encoder
    if encoder.center is not None:
        center = encoder.center.model_copy(update={"kernel_size": per_axis(encoder.center.kernel_size, ndim,
                                                                            "encoder.center.kernel_size")})
        encoder = encoder.model_copy(update={"center": center})
    return spec.model_copy(update={"encoder": encoder, "decoder": decoder})
