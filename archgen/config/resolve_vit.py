"""The canonical form of a config whose encoder is a transformer on the input (``type: vit`` or
``swin``).

The encoder is given as it is built (its levels' filters and the transformer's taps; a Swin
transformer's stages), so only the decoder is spelled out: one stage per level below the bottleneck, level 1 first, up-sampling by 2;
without ``decoder.stages`` each takes the encoder level's filters and the block's convs and kernel;
the skips as every level; one alignment per level.
"""

from __future__ import annotations

from archgen.errors import PlanError
from archgen.config.model import ArchSpec
from archgen.config.short_form import decoder_on_fixed_levels


def check_vit_encoder(spec: ArchSpec) -> None:
    """Patches of 2 ** levels, and one ascending tap per level but level 1."""
    enc = spec.encoder
    depth = len(enc.filters)
    if enc.patch_size != 2 ** depth:
        raise PlanError(f"each of the {depth} levels below the bottleneck is a factor 2 finer than the next, so the "
                        f"patches are {2 ** depth} on a side; give patch_size {2 ** depth}, or "
                        f"{enc.patch_size.bit_length() - 1} entries in encoder.filters if it is a power of 2",
                        path="encoder.patch_size", value=enc.patch_size)
    if len(enc.taps) != depth - 1:
        raise PlanError(f"has {len(enc.taps)} entries; levels 2..{depth} need one transformer layer each "
                        f"({depth - 1})", path="encoder.taps", value=enc.taps)
    for i, tap in enumerate(enc.taps):
        if tap > enc.layers:
            raise PlanError(f"the transformer has {enc.layers} layers", path=f"encoder.taps[{i}]", value=tap)
        if i and tap <= enc.taps[i - 1]:
            raise PlanError("taps feed levels 2, 3, ... from ever deeper layers: give them ascending",
                            path=f"encoder.taps[{i}]", value=tap)
    if enc.embed_dim % enc.heads:
        raise PlanError(f"each head has embed_dim // heads channels, and {enc.heads} heads do not divide "
                        f"embed_dim={enc.embed_dim}", path="encoder.heads", value=enc.heads)
    _check_decoder(spec)


def transformer_level_channels(spec: ArchSpec) -> list[int]:
    """Channels of the encoder's levels below the bottleneck, level 1 first."""
    enc = spec.encoder
    if enc.type == "vit":
        return list(enc.filters)
    return [enc.embed_dim] + [enc.embed_dim * 2 ** i for i in range(len(enc.depths))]


def check_swin_encoder(spec: ArchSpec) -> None:
    enc = spec.encoder
    stages = len(enc.depths)
    if len(enc.heads) != stages:
        raise PlanError(f"has {len(enc.heads)} entries; one per stage of depths ({stages})", path="encoder.heads",
                        value=enc.heads)
    for i, heads in enumerate(enc.heads):
        channels = enc.embed_dim * 2 ** i
        if channels % heads:
            raise PlanError(f"stage {i + 1} has {channels} channels, which {heads} heads do not divide",
                            path=f"encoder.heads[{i}]", value=heads)
    for i, level in enumerate(enc.blocks_at):
        if not 2 <= level <= stages + 2:
            raise PlanError(f"levels 2..{stages + 2} come from the transformer (level 1 always has the block)",
                            path=f"encoder.blocks_at[{i}]", value=level)
    _check_decoder(spec)


def _check_decoder(spec: ArchSpec) -> None:
    if spec.decoder.type != "unet":
        raise PlanError(f"a transformer encoder feeds decoder.type unet only: {spec.decoder.type} re-reads the "
                        f"encoder's stages and down-sampling, which it does not have", path="decoder.type",
                        value=spec.decoder.type)
    if spec.decoder.merge_at != "after_upsample":
        raise PlanError("the bottleneck is half the size of the level above it, so it cannot join that level before "
                        "up-sampling; use merge_at: after_upsample", path="decoder.merge_at",
                        value=spec.decoder.merge_at)


def spell_out_vit(spec: ArchSpec) -> ArchSpec:
    """The canonical form of a ``vit`` or ``swin`` encoder's config."""
    if spec.encoder.type == "vit":
        check_vit_encoder(spec)
    else:
        check_swin_encoder(spec)
    enc, dec = spec.encoder, spec.decoder
    filters = transformer_level_channels(spec)
    depth = len(filters)
    decoder = decoder_on_fixed_levels(
        spec, filters, dec.block or enc.block, "decoder.block" if dec.block else "encoder.block",
        "a vit encoder's levels are a factor 2 apart",
        f"the encoder has {depth} levels below the bottleneck (encoder.filters, or a swin encoder's stages + 1), so "
        f"the decoder needs {depth} stages, level 1 first", list(range(1, depth + 1)),
        lambda level: f"no encoder level {level}; with {depth} levels below the bottleneck skips come from levels "
                      f"1..{depth}")
    return spec.model_copy(update={"decoder": decoder})
