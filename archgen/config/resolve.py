"""The short form -> the canonical form: encoder and decoder as explicit stages.

A config may give the encoder by global knobs (``depth``, ``filters``, ``multiplier``,
``max_filters``, the block's ``convs`` and ``kernel_size``, the down-sampling's ``factor``) or stage
by stage (``encoder.stages``, ``decoder.stages``), as nnU-Net's plans do. ``resolve`` turns either
into one canonical ``ArchSpec``: every stage spelled out with its filters, convs, blocks, kernel
size and stride per spatial axis, the decoder's stages (level 1 first) with their up-sampling
channels, one alignment per level and the skip levels as a list. The planner reads only this form.

``resolved_yaml`` prints it as a config that builds the same model.
"""

from __future__ import annotations

from typing import Any

from archgen.errors import PlanError
from archgen.config.model import ArchSpec, DecoderStage, EncoderStage
from archgen.config.short_form import (BLOCK_SHORT, block_style, explicit_decoder_stages, level_filters, per_axis,
                                     per_level, set_explicitly, stem_levels, value_at)

# Keys of the encoder's short form that encoder.stages replace (a block's: short_form.BLOCK_SHORT).
_ENCODER_SHORT = ("filters", "multiplier", "max_filters")


def resolve(spec: ArchSpec) -> ArchSpec:
    """The canonical form of ``spec``: the config that ``resolved_yaml`` prints, validated.

    Only the keys of the canonical form are set in it, so resolving it again gives it back.

    >>> from archgen.config import load_spec
    >>> [s.stride for s in resolve(load_spec("conf/unet.yaml")).encoder.stages]
    [[1, 1], [2, 2], [2, 2], [2, 2], [2, 2]]
    """
    return ArchSpec.model_validate(resolved_data(spec))


def stage_count(resolved: ArchSpec) -> int:
    """Down-sampling steps of a resolved spec (its ``encoder.depth`` key is not part of the form)."""
    if resolved.encoder.type in ("backbone", "vit", "swin"):
        return len(resolved.decoder.stages)
    return len(resolved.encoder.stages) - 1 + stem_levels(resolved)


def _spell_out(spec: ArchSpec) -> ArchSpec:
    if spec.encoder.type == "backbone":
        from archgen.config.resolve_backbone import spell_out_backbone  # loaded for a backbone only

        return spell_out_backbone(spec)
    if spec.encoder.type in ("vit", "swin"):
        from archgen.config.resolve_vit import spell_out_vit  # loaded for a transformer encoder only

        return spell_out_vit(spec)
    ndim = spec.ndim
    enc, dec = spec.encoder, spec.decoder
    offset = stem_levels(spec)
    enc_stages = _encoder_stages(spec, ndim, offset)
    depth = len(enc_stages) - 1 + offset
    if offset and dec.type != "unet":
        raise PlanError(f"decoder.type {dec.type} re-reads every encoder stage's own down-sampling, and a stem that "
                        f"strides makes levels without one; use decoder.type unet, or a stem of stride 1",
                        path="encoder.stem.stride", value=enc.stem.stride)
    dec_block = dec.block or enc.block
    dec_stages = _decoder_stages(spec, enc_stages, ndim, offset)
    skips = _skips(spec, depth)
    align = per_level(dec.align, depth, "decoder.align", depth)
    for path, block in (("encoder.block", enc.block), ("decoder.block", dec.block)):
        for key in ("expansion", "height", "mid_filters"):  # a convnext block's, an rsu block's: one per level
            if isinstance(getattr(block, key, None), list):
                per_level(getattr(block, key), depth + 1, f"{path}.{key}", depth)
    topology = {}
    if dec.type == "unet3+":
        from archgen.config.resolve_unet3p import unet3p_defaults  # loaded for unet3+ only

        topology, dec_stages = unet3p_defaults(spec, enc_stages, dec_stages, skips)
    down = enc.downsample.model_copy(update={"factor": 2}) if "factor" in enc.downsample.model_fields_set \
        else enc.downsample
    up = topology.get("upsample", dec.upsample)
    up = up.model_copy(update={"factor": 2, **({"keep_channels": False} if "keep_channels" in up.model_fields else {})})
    stem = None
    if enc.stem is not None:
        kernel = enc.stem.kernel_size if enc.stem.kernel_size is not None else enc_stages[0].kernel_size
        stem = enc.stem.model_copy(update={
            "filters": enc.stem.filters or enc_stages[0].filters,
            "kernel_size": per_axis(kernel, ndim, "encoder.stem.kernel_size"),
            "stride": per_axis(enc.stem.stride, ndim, "encoder.stem.stride")})
    encoder = enc.model_copy(update={
        "stem": stem, "depth": depth, "filters": [s.filters for s in enc_stages], "multiplier": 2.0, "max_filters": None,
        "block": block_style(enc.block), "downsample": down, "stages": enc_stages})
    decoder = dec.model_copy(update={
        "skips": skips, "align": list(align), "upsample": up, "block": block_style(dec_block), "stages": dec_stages,
        **topology})
    return spec.model_copy(update={"encoder": encoder, "decoder": decoder})


def _encoder_stages(spec: ArchSpec, ndim: int, offset: int) -> list[EncoderStage]:
    """The encoder's stages, level 1 first (``offset``: levels a striding stem makes before them)."""
    stem = spec.encoder.stem
    if stem is not None and stem.pool is not None and not offset:
        raise PlanError("the stem's pool leads into the first stage from the stem's own level, which only a stem "
                        "that strides has; give encoder.stem a stride above 1, or remove the pool",
                        path="encoder.stem.pool", value=stem.pool.model_dump())
    stages = _given_encoder_stages(spec, ndim, offset)
    if offset:
        pool = stem.pool.factor if stem.pool is not None else 1
        if pool == 1 and all(s == 1 for s in stages[0].stride):
            path = "encoder.stages[0].stride" if spec.encoder.stages is not None else "encoder.stem.pool"
            raise PlanError("a stem that strides is a level of its own, so the first stage must be smaller than the "
                            "stem's output: give the stem a pool, or the first stage a stride above 1",
                            path=path, value=stages[0].stride if spec.encoder.stages is not None else None)
    return stages


def _given_encoder_stages(spec: ArchSpec, ndim: int, offset: int) -> list[EncoderStage]:
    enc = spec.encoder
    down = enc.downsample
    if enc.stages is not None:
        clash = set_explicitly(enc, _ENCODER_SHORT) + [f"block.{k}" for k in set_explicitly(enc.block, BLOCK_SHORT)]
        if "depth" in enc.model_fields_set and enc.depth != len(enc.stages) - 1 + offset:
            clash.insert(0, "depth")
        if "factor" in down.model_fields_set:
            clash.append("downsample.factor")
        if clash:
            raise PlanError(f"encoder.stages gives these per stage; remove encoder.{clash[0]} (or encoder.stages)",
                            path=f"encoder.{clash[0]}", value=value_at(enc, clash[0]))
        stages = []
        for i, stage in enumerate(enc.stages):
            path = f"encoder.stages[{i}]"
            stride = per_axis(stage.stride, ndim, path + ".stride")
            if i == 0 and not offset and any(s != 1 for s in stride) and down.type != "stride":
                raise PlanError(f"the first stage reads the input; only encoder.downsample.type=stride "
                                f"(its first conv strides) can down-sample there, not {down.type}; use 1",
                                path=path + ".stride", value=stage.stride)
            if i > 0 and all(s == 1 for s in stride) and down.type != "stride":
                raise PlanError(f"a {down.type} down-sampling needs a stride above 1 on some axis; "
                                f"with 1 on every axis use encoder.downsample.type=stride",
                                path=path + ".stride", value=stage.stride)
            stages.append(stage.model_copy(update={
                "kernel_size": per_axis(stage.kernel_size, ndim, path + ".kernel_size"), "stride": stride}))
        return stages
    filters = level_filters(spec)
    kernels = per_level(enc.block.kernel_size, enc.depth + 1, "encoder.block.kernel_size", enc.depth)
    return [EncoderStage(filters=f, convs=enc.block.convs, blocks=1, kernel_size=[k] * ndim,
                         stride=[1 if i == 0 else down.factor] * ndim)
            for i, (f, k) in enumerate(zip(filters, kernels))]


def _decoder_stages(spec: ArchSpec, enc_stages: list[EncoderStage], ndim: int, offset: int) -> list[DecoderStage]:
    dec = spec.decoder
    depth = len(enc_stages) - 1 + offset
    up = dec.upsample
    if "factor" in up.model_fields_set and spec.encoder.stages is not None:
        raise PlanError("the decoder up-samples by the strides of encoder.stages; remove decoder.upsample.factor",
                        path="decoder.upsample.factor", value=up.factor)
    if (spec.encoder.stages is None and "factor" in up.model_fields_set  # unset, it follows the encoder's
            and up.factor != spec.encoder.downsample.factor and depth > 0):
        raise PlanError(f"the decoder up-samples by the factor the encoder down-sampled with, "
                        f"encoder.downsample.factor={spec.encoder.downsample.factor}; remove decoder.upsample.factor "
                        f"or make them equal", path="decoder.upsample.factor", value=up.factor)
    if dec.stages is not None:
        levels = f"{depth + 1} levels (the input, the stem, {len(enc_stages)} stages)" if offset else \
            f"{depth + 1} stages"
        return explicit_decoder_stages(dec, ndim, depth, f"the encoder has {levels}, so the decoder "
                                                         f"needs {depth}, level 1 first (nnU-Net's "
                                                         f"n_conv_per_stage_decoder lists the deepest first)")
    block = dec.block or spec.encoder.block
    path = "decoder.block" if dec.block else "encoder.block"
    kernels = per_level(block.kernel_size, depth + 1, path + ".kernel_size", depth)
    filters = [s.filters for s in enc_stages]
    if offset:  # level 1 is the input, level 2 the stem's output
        filters = [spec.input.shape[-1], spec.encoder.stem.filters or enc_stages[0].filters, *filters]
    stages: list[DecoderStage] = []
    below = filters[depth]  # channels that reach the deepest decoder level
    for level in range(depth, 0, -1):
        f = filters[level - 1]
        stages.insert(0, DecoderStage(filters=f, convs=block.convs, blocks=1, kernel_size=[kernels[level - 1]] * ndim,
                                      up_filters=below if getattr(up, "keep_channels", False) else f))
        below = f
    return stages


def _skips(spec: ArchSpec, depth: int) -> list[int]:
    skips = spec.decoder.skips
    if skips == "all":
        return list(range(1, depth + 1))
    if skips == "none":
        return []
    for i, level in enumerate(skips):
        if level > depth:
            raise PlanError(f"no encoder level {level}; with encoder.depth={depth} skips come from levels 1..{depth}",
                            path=f"decoder.skips[{i}]", value=level)
    return sorted(set(skips))


def resolved_data(spec: ArchSpec) -> dict[str, Any]:
    """The canonical form as plain data: only the keys that the stages do not replace."""
    data = _spell_out(spec).model_dump(mode="json")
    for section in ("data", "augment", "train"):  # training sections a config leaves out stay out
        if data.get(section) is None:
            data.pop(section, None)
    enc, dec = data["encoder"], data["decoder"]
    dec["upsample"].pop("factor")
    dec["upsample"].pop("keep_channels", None)
    for key in BLOCK_SHORT:
        dec["block"].pop(key)
    if enc["type"] == "unet":
        enc.pop("type")  # the default kind: the canonical form of a U-Net reads as before the key existed
        for key in ("depth", *_ENCODER_SHORT):
            enc.pop(key)
        enc["downsample"].pop("factor")
        for key in BLOCK_SHORT:
            enc["block"].pop(key)
        # Field order of a config: the stages last in each part, where a reader expects the table.
        enc["stages"] = enc.pop("stages")
    dec["stages"] = dec.pop("stages")
    return _without_unused(data)


def _without_unused(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` less the keys that would do nothing in it, so that the printed form reads back
    without a warning (a block's ``groups`` where its norm is batch, and the like)."""
    import re

    from archgen.config.load import validate
    from archgen.config.unused import unused_options

    for path, _, _ in unused_options(validate(data)):
        *parents, last = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]
        node = data
        for part in parents:
            node = node[part]
        node.pop(last, None)
    return data


def resolved_yaml(spec: ArchSpec) -> str:
    """The canonical form as a YAML config that builds the same model (``summary --resolved``)."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _list(dumper, value):
        flow = all(not isinstance(v, (dict, list)) for v in value)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)

    _Dumper.add_representer(list, _list)
    header = "# yaml-language-server: $schema=../schema/archgen.schema.json\n"
    name = spec.name if spec.name.isprintable() else repr(spec.name)  # a comment stays one line
    header += f"# {name}: the canonical form, every stage spelled out\n"
    return header + yaml.dump(resolved_data(spec), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                              width=100)
