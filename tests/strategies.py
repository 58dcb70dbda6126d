"""Hypothesis strategies: random valid archgen configs across every option."""

from __future__ import annotations

from hypothesis import strategies as st

ACTIVATIONS = ["relu", "elu", "gelu", "silu", "tanh", "leaky_relu", "linear", "sigmoid", "prelu", "prelu_channel"]


@st.composite
def block_dicts(draw, depth: int, ndim: int, decoder: bool = False):
    block = {
        "type": draw(st.sampled_from(["conv", "residual", "recurrent_residual", "convnext", "rsu"])),
        "convs": draw(st.integers(1, 2)),
        "kernel_size": draw(st.one_of(st.integers(1, 3), st.lists(st.integers(1, 3), min_size=depth + 1,
                                                                   max_size=depth + 1))),
        "dilation": draw(st.sampled_from([1, 1, 2])),
        "activation": draw(st.sampled_from(ACTIVATIONS)),
        "norm": draw(st.sampled_from(["none", "batch", "group", "layer", "instance"])),
        "norm_affine": draw(st.booleans()),
        "norm_epsilon": draw(st.sampled_from([None, 1e-5])),
        "groups": 2,
        "dropout": draw(st.sampled_from([0.0, 0.0, 0.25])),
        "inner_ratio": draw(st.sampled_from([1.0, 0.5])),
    }
    if block["type"] == "recurrent_residual":
        block["recurrences"] = draw(st.integers(1, 2))
        block["inner_ratio"] = 1.0  # every conv of the block is added to its input
    if block["type"] == "convnext":  # a depthwise conv, the norm, two 1x1 convs: no inner ratio, no order
        del block["inner_ratio"], block["convs"]
        block["expansion"] = draw(st.one_of(st.integers(1, 3), st.lists(st.integers(1, 3), min_size=depth + 1,
                                                                         max_size=depth + 1)))
        block["residual"] = draw(st.booleans())
        block["global_resp_norm"] = draw(st.booleans())
    if block["type"] == "rsu":  # a small U-Net inside: one pooling, or none and dilated convs
        del block["convs"]
        heights = st.sampled_from([1, "dilated"])
        block["height"] = draw(st.one_of(heights, st.lists(heights, min_size=depth + 1, max_size=depth + 1)))
        block["interpolation"] = draw(st.sampled_from(["nearest", "linear"] + (["bilinear"] if ndim == 2 else [])))
        if draw(st.booleans()):
            block["dilations"] = draw(st.sampled_from([[1, 2], [1, 2, 3]]))
        if draw(st.booleans()):
            block["mid_filters"] = draw(st.sampled_from([2, 3]))
    if draw(st.booleans()):
        block["se"] = {"ratio": draw(st.sampled_from([1, 2, 3])), "activation": draw(st.sampled_from(ACTIVATIONS))}
    if block["type"] == "residual" and draw(st.booleans()):  # repeat: V-Net's input repeated to the filters
        block["shortcut"] = draw(st.sampled_from(["plain", "resnet_d", "repeat"]))
    if block["type"] == "residual" and draw(st.booleans()):  # MONAI's ResidualUnit and its neighbours, V-Net's
        block["shortcut_kernel_size"] = draw(st.sampled_from([1, 3, "block"]))
        block["shortcut_norm"] = draw(st.booleans())
        block["add_at"] = draw(st.sampled_from(["before_activation", "after_activation", "between_activations"]))
    if block["type"] != "convnext" and draw(st.booleans()):
        block["order"] = draw(st.sampled_from(["norm_act", "act_norm"] if block["type"] in ("recurrent_residual", "rsu")
                                              else ["norm_act", "act_norm", "pre_activation"]))
    if block["type"] == "residual" and block.get("order") != "pre_activation" and draw(st.integers(0, 3)) == 0:
        # what the shortcut carries (V-Net): the first conv's output needs a conv after it
        sources = (["first_conv"] if block["convs"] == 2 else []) + (["upsampled"] if decoder else [])
        block["shortcut_from"] = draw(st.sampled_from(["input", *sources]))
    if block["activation"] == "leaky_relu" and draw(st.booleans()):
        block["negative_slope"] = draw(st.sampled_from([0.01, 0.1]))
    if draw(st.booleans()):
        block["bias"] = draw(st.booleans())
    if draw(st.booleans()):
        block["padding"] = draw(st.sampled_from(["valid", "same"]))
    return block


@st.composite
def transformer_dicts(draw) -> dict:
    """A small transformer bottleneck: patches of 1 or 2, a few heads, every option."""
    heads = draw(st.integers(1, 2))
    return {"patch_size": draw(st.sampled_from([1, 1, 2])), "embed_dim": draw(st.sampled_from([4, 6])),
            "layers": draw(st.integers(1, 2)), "heads": heads, "key_dim": draw(st.sampled_from([None, 3])),
            "mlp_dim": draw(st.sampled_from([4, 8])), "mlp_activation": draw(st.sampled_from(ACTIVATIONS)),
            "activate_mlp_output": draw(st.booleans()), "project_in": draw(st.booleans()),
            "final_norm": draw(st.booleans()), "out_bias": draw(st.booleans())}


@st.composite
def explicit_stages(draw, config: dict, ndim: int) -> dict:
    """The same kind of network given stage by stage: per-stage filters, convs, blocks, and kernel
    sizes and strides per axis (anisotropic)."""
    depth = config["encoder"]["depth"]
    per_axis = lambda values: st.one_of(st.sampled_from(values), st.lists(st.sampled_from(values), min_size=ndim,
                                                                            max_size=ndim))
    merge_first = depth > 0 and draw(st.booleans())
    down = "stride" if merge_first else config["encoder"]["downsample"]["type"]  # a bottleneck of stride 1
    stages = []
    for i in range(depth + 1):
        stride = 1 if i == 0 else draw(per_axis([2, 3] if down != "stride" else [1, 2, 3]))
        if i > 0 and down != "stride" and isinstance(stride, list) and draw(st.booleans()):
            stride[0] = 1  # down-sample some axes only
        stages.append({"filters": draw(st.sampled_from([2, 3, 4])), "convs": draw(st.integers(1, 2)),
                       "blocks": draw(st.integers(1, 2)), "kernel_size": draw(per_axis([1, 2, 3])),
                       "stride": stride})
        if config["encoder"]["block"]["type"] == "residual" and draw(st.integers(0, 3)) == 0:
            # V-Net's: its input transition adds before its one activation, every other level between two
            stages[-1]["add_at"] = draw(st.sampled_from(["before_activation", "after_activation",
                                                         "between_activations"]))
    if merge_first:  # MONAI's UNet: the first stage strides, the bottleneck keeps the size
        stages[0]["stride"] = draw(per_axis([1, 2]))
        if draw(st.integers(0, 4)):
            stages[-1]["stride"] = 1
    encoder = {k: v for k, v in config["encoder"].items() if k in ("block", "downsample", "stem", "transformer")}
    encoder["block"] = {k: v for k, v in encoder["block"].items() if k not in ("convs", "kernel_size")}
    encoder["downsample"] = {k: v for k, v in encoder["downsample"].items() if k != "factor"}
    if down != encoder["downsample"]["type"]:
        encoder["downsample"] = {"type": down}
    encoder["stages"] = stages
    decoder = {k: v for k, v in config["decoder"].items() if k != "block"}
    decoder["upsample"] = {k: v for k, v in decoder["upsample"].items() if k not in ("factor", "keep_channels")}
    if decoder["upsample"].get("type") == "transpose":
        decoder["upsample"].pop("kernel_size", None)
    decoder["stages"] = [{"filters": draw(st.sampled_from([2, 3])), "convs": draw(st.integers(0, 2)),
                          "kernel_size": draw(per_axis([1, 3])),
                          "up_filters": draw(st.sampled_from([None, 2, 5]))} for _ in range(depth)]
    if merge_first:
        decoder["merge_at"] = "before_upsample"
    heads = [dict(head) for head in config["heads"]]
    for head in heads:  # a head without a conv passes its level's channels on: give it their number
        level = head["level"]
        if head.get("conv") is False and not head.get("deep_supervision"):
            if level == depth + 1:
                head["filters"] = stages[-1]["filters"]
            elif decoder["stages"][level - 1]["convs"] or merge_first:
                stage = decoder["stages"][level - 1]
                head["filters"] = stage["filters"] if stage["convs"] else stage["up_filters"] or stage["filters"]
    return {**config, "encoder": encoder, "decoder": decoder, "heads": heads}


@st.composite
def spec_dicts(draw):
    """A config dict with open (null) spatial sizes; the test picks legal sizes from the plan."""
    ndim = draw(st.sampled_from([1, 2, 2, 3]))
    encoder_type = draw(st.sampled_from(["unet"] * 6 + ["vit", "swin"]))
    if encoder_type == "unet":
        depth = draw(st.integers(0, 3 if ndim < 3 else 2))
    else:  # levels below the bottleneck: a vit's filters, a swin's stages + 1
        depth = draw(st.integers(1, 2)) + (encoder_type == "swin")
    factor = draw(st.sampled_from([2, 2, 3])) if encoder_type == "unet" else 2  # a transformer's levels: 2 apart
    down = draw(st.sampled_from(["maxpool", "avgpool", "conv", "stride", "block"]))
    up_type = draw(st.sampled_from(["transpose", "resize", "interpolate"]))
    upsample = {"type": up_type, "factor": factor, "keep_channels": draw(st.booleans()),
                "activation": draw(st.sampled_from(ACTIVATIONS))}
    interpolations = ["nearest", "bilinear", "linear"] if ndim == 2 else ["nearest", "linear"]
    if up_type == "interpolate":  # no learned layer: neither channels nor an activation of its own
        upsample = {"type": up_type, "factor": factor, "interpolation": draw(st.sampled_from(interpolations))}
    elif up_type == "transpose":
        upsample["kernel_size"] = draw(st.sampled_from([factor, factor + 1, "level", [factor + 1] * ndim]))
        upsample["bias"] = draw(st.booleans())
        centered = upsample["kernel_size"] != "level" and draw(st.booleans())
        if centered:  # MONAI's UpSample given a kernel
            upsample["padding"] = "centered"
        elif upsample["kernel_size"] != "level" and draw(st.booleans()):  # PyTorch's padding and output_padding
            upsample["padding"] = draw(st.integers(0, 2))
            below = st.integers(0, min(upsample["padding"], factor - 1))  # below the stride
            upsample["output_padding"] = draw(st.one_of(below, st.lists(below, min_size=max(depth, 1),
                                                                        max_size=max(depth, 1))))  # or per level
        if draw(st.booleans()):
            upsample.update(norm=draw(st.sampled_from(["batch", "instance", "group", "layer"])), groups=2,
                            norm_affine=draw(st.booleans()), norm_epsilon=draw(st.sampled_from([None, 1e-5])))
    else:
        upsample["interpolation"] = draw(st.sampled_from(interpolations))
        upsample["kernel_size"] = draw(st.integers(1, 3))
        upsample["norm"] = draw(st.sampled_from(["none", "batch"]))
        if draw(st.booleans()):  # SegResNet's: the conv, then the resize
            upsample.update(conv_first=True, bias=draw(st.booleans()))
    aligns = ["crop", "pad", "none"] + (["resize"] if ndim == 2 else [])
    align = draw(st.one_of(st.sampled_from(aligns), st.lists(st.sampled_from(aligns), min_size=depth,
                                                               max_size=depth)))
    skips = draw(st.one_of(st.sampled_from(["all", "none"]),
                           st.lists(st.integers(1, max(depth, 1)), max_size=depth, unique=True)))
    if depth == 0 and isinstance(skips, list):
        skips = []
    merge = draw(st.sampled_from([{"type": "concat"}, {"type": "concat", "order": "skip_up"}, {"type": "add"},
                                  {"type": "attention"},
                                  {"type": "attention", "inter_filters": 2},
                                  {"type": "attention", "norm": "batch", "norm_epsilon": 1e-5, "skip_bias": True,
                                   "order": "skip_up"},
                                  {"type": "attention", "norm": "instance"}]))
    heads = []
    for i in range(draw(st.integers(1, 2))):
        head = {"name": f"out{i}", "filters": draw(st.integers(1, 3)),
                "activation": draw(st.sampled_from(["linear", "softmax", "sigmoid"])),
                "level": draw(st.integers(1, depth + 1)),
                "kernel_size": draw(st.sampled_from([1, 1, 3]))}
        if draw(st.integers(0, 4)) == 0:  # the level's features passed on, without a conv
            head["conv"] = False
        if draw(st.integers(0, 3)) == 0:  # the decoder block's norm and activation first (SegResNet)
            head["pre_activation"] = True
        if depth >= 1 and encoder_type == "unet" and draw(st.integers(0, 4)) == 0:  # U-Net 2's fused output: sides concatenated
            head.pop("conv", None), head.pop("pre_activation", None)
            head["fuse"] = {"levels": draw(st.lists(st.integers(head["level"], depth + 1), min_size=1, max_size=3,
                                                    unique=True)),
                            "kernel_size": draw(st.sampled_from([1, 3])), "outputs": draw(st.booleans()),
                            "interpolation": draw(st.sampled_from(interpolations))}
        elif draw(st.integers(0, 4)) == 0:  # V-Net's output transition: a conv, norm and activation first
            head["pre_conv_kernel_size"] = draw(st.sampled_from([1, 3]))
        elif head["level"] < depth and draw(st.booleans()):  # copies on deeper levels, each once
            head["deep_supervision"] = draw(st.lists(st.integers(head["level"] + 1, depth), min_size=1,
                                                     max_size=depth - head["level"], unique=True))
        heads.append(head)
    encoder = {
        "depth": depth,
        "filters": draw(st.one_of(st.sampled_from([2, 4]), st.lists(st.sampled_from([2, 4, 6]),
                                                                     min_size=depth + 1, max_size=depth + 1))),
        "multiplier": draw(st.sampled_from([1.0, 2.0])),
        "block": draw(block_dicts(depth, ndim)),
        "downsample": {"type": down, "factor": factor},
    }
    if down in ("maxpool", "avgpool") and draw(st.booleans()):
        encoder["downsample"]["odd_sizes"] = "floor"
    if down == "conv" and draw(st.booleans()):  # SegResNet's: to the next level's filters, no bias
        encoder["downsample"].update(change_channels=True, bias=draw(st.booleans()))
    if down == "conv" and draw(st.booleans()):  # a kernel per axis, or the level's own (SegResNetDS)
        encoder["downsample"]["kernel_size"] = draw(st.sampled_from(["level", [factor] * ndim, factor + 1]))
    if down == "conv" and draw(st.booleans()):
        encoder["downsample"].update(activation="leaky_relu", negative_slope=0.01)
    if down == "conv" and draw(st.booleans()):  # V-Net's down transition: a norm after the strided conv
        encoder["downsample"].update(norm=draw(st.sampled_from(["batch", "instance", "group", "layer"])), groups=2,
                                     norm_affine=draw(st.booleans()), norm_epsilon=draw(st.sampled_from([None, 1e-5])))
    if draw(st.booleans()):
        encoder["max_filters"] = 8
    if draw(st.booleans()):  # convs before the first stage; empty takes the first stage's filters and kernel
        encoder["stem"] = draw(st.sampled_from([{}, {"filters": 3, "convs": 2, "kernel_size": 1},
                                                {"filters": 2, "kernel_size": [3] * ndim},
                                                {"kernel_size": 1, "conv_only": True}]))
    if draw(st.booleans()):
        encoder["transformer"] = draw(transformer_dicts())
    decoder = {"skips": skips, "align": align, "merge": merge, "upsample": upsample}
    if draw(st.booleans()):
        decoder["last_conv_only"] = draw(st.booleans())
    if draw(st.booleans()):
        decoder["block"] = draw(block_dicts(depth, ndim, decoder=True))
    if decoder.get("block", encoder["block"])["type"] == "convnext" and draw(st.booleans()):
        decoder["upsample"] = {"type": "block", "factor": factor}  # MedNeXt's up block
    config = {
        "name": "prop",
        "input": {"shape": [None] * ndim + [draw(st.integers(1, 3))]},
        "padding": draw(st.sampled_from(["valid", "same"])),
        "encoder": encoder,
        "decoder": decoder,
        "heads": heads,
    }
    if encoder_type != "unet":  # its decoder is a U-Net's, derived from the encoder's levels; its patches
        config["padding"] = "same"  # need sizes a whole number of them, so every conv keeps the size
        for block in (encoder["block"], decoder.get("block") or {}):
            block.pop("padding", None)
        config["encoder"] = enc = draw(transformer_encoders(encoder_type, depth, encoder["block"]))
        levels = enc["filters"] if encoder_type == "vit" else [enc["embed_dim"] * 2 ** max(i - 1, 0)
                                                                 for i in range(depth)]
        for head in heads:  # a head without a conv passes on its level's channels
            if head.get("conv") is False and not head.get("pre_conv_kernel_size"):
                if head["level"] > depth:
                    del head["conv"]
                else:
                    head["filters"] = levels[head["level"] - 1]
        return config
    if draw(st.integers(0, 2)):
        config = draw(topology(config, ndim))
    if draw(st.booleans()):
        config = draw(explicit_stages(config, ndim))
    block = config["decoder"].get("block")
    if block and block.get("shortcut_from") == "upsampled" and (
            config["decoder"].get("type", "unet") != "unet" or config["decoder"].get("merge_at") == "before_upsample"):
        config["decoder"]["block"] = {**block, "shortcut_from": "input"}  # only a U-Net's up-sampling comes first
    return config


@st.composite
def transformer_encoders(draw, kind: str, depth: int, block: dict) -> dict:
    """A tiny transformer on the input with ``depth`` levels below the bottleneck: a vit (UNETR) with
    patches of 2 ** depth, or a swin (SwinUNETR) of depth - 1 stages; a few channels and heads, and
    windows of 1 to 3 (shifted where a level is larger, padded where they do not tile it)."""
    common = {"mlp_activation": draw(st.sampled_from(ACTIVATIONS)), "qkv_bias": draw(st.booleans()),
              "norm_epsilon": draw(st.sampled_from([None, 1e-5])), "block": block}
    if kind == "vit":
        heads = draw(st.integers(1, 2))
        layers = draw(st.integers(depth, depth + 1))
        return {"type": "vit", "patch_size": 2 ** depth, "filters": draw(st.lists(st.sampled_from([2, 3, 4]),
                                                                                   min_size=depth, max_size=depth)),
                "taps": sorted(draw(st.lists(st.integers(1, layers), min_size=depth - 1, max_size=depth - 1,
                                             unique=True))),
                "embed_dim": heads * draw(st.sampled_from([2, 3])), "layers": layers, "heads": heads,
                "mlp_dim": draw(st.sampled_from([2, 4])), "final_norm": draw(st.booleans()),
                "up_bias": draw(st.booleans()), **common}
    stages = depth - 1
    embed_dim = draw(st.sampled_from([2, 3, 4]))
    heads = [draw(st.sampled_from([h for h in (1, 2, 3) if embed_dim * 2 ** i % h == 0])) for i in range(stages)]
    return {"type": "swin", "embed_dim": embed_dim, "depths": draw(st.lists(st.integers(1, 2), min_size=stages,
                                                                          max_size=stages)),
            "heads": heads, "window_size": draw(st.integers(1, 3)), "mlp_ratio": draw(st.sampled_from([1.0, 1.5, 2.0])),
            "normalize": draw(st.booleans()), "stage_blocks": draw(st.booleans()),  # SwinUNETR v2's
            "blocks_at": draw(st.lists(st.integers(2, stages + 2), max_size=stages + 1, unique=True)), **common}


@st.composite
def topology(draw, config: dict, ndim: int) -> dict:
    """The same encoder with a UNet++ or UNet 3+ decoder: concatenation, crop (or no) alignment,
    nested or full-scale skips, deep supervision, and for UNet 3+ resizing and cat_channels."""
    kind = draw(st.sampled_from(["unet++", "unet3+"]))
    depth = config["encoder"]["depth"]
    decoder = {**config["decoder"], "type": kind, "merge": {"type": "concat", "order": draw(st.sampled_from(
        ["up_skip", "skip_up"]))}, "align": draw(st.sampled_from(["crop", "crop", "none"]))}
    for key in ("last_conv_only", "merge_at"):  # plain U-Net options the topologies refuse
        decoder.pop(key, None)
    if "stages" in decoder:
        decoder["stages"] = [{**stage, "convs": max(1, stage.get("convs", 1))} for stage in decoder["stages"]]
    up = dict(decoder["upsample"])
    if kind == "unet++":
        decoder["skips"] = "all"
        if up["type"] == "resize" and draw(st.booleans()):
            up.update(norm=draw(st.sampled_from(["batch", "instance", "group"])), groups=1)
    elif draw(st.integers(0, 3)) == 0:  # keras-unet-collection's unpool=False: a transposed conv per scale
        up = {"type": "transpose", "factor": up["factor"], "kernel_size": draw(st.sampled_from([None, 3])),
              "norm": draw(st.sampled_from(["none", "batch"])), "activation": draw(st.sampled_from(["relu", "linear"]))}
    else:
        up = {"type": "resize", "factor": up["factor"],
              "interpolation": draw(st.sampled_from(["nearest", "bilinear", "linear"] if ndim == 2
                                                    else ["nearest", "linear"]))}
    if kind == "unet3+":
        decoder["skips"] = draw(st.one_of(st.just("all"), st.lists(st.integers(1, max(depth, 1)), max_size=depth,
                                                                    unique=True)))
        if depth == 0:
            decoder["skips"] = "all"
        if draw(st.booleans()):
            decoder["cat_channels"] = draw(st.one_of(st.sampled_from([2, 3]), st.lists(
                st.integers(2, 3), min_size=max(depth, 1), max_size=max(depth, 1))))
        if draw(st.booleans()):  # keras-unet-collection's: batch norm on the fusion convs whatever the block's
            decoder["fusion_norm"] = draw(st.sampled_from(["none", "batch", "layer"]))
    decoder["upsample"] = up
    heads = config["heads"]
    if depth >= 1 and draw(st.booleans()):
        decoder["deep_supervision"] = True
        heads = [{**{k: v for k, v in heads[0].items() if k not in ("deep_supervision", "fuse")}, "level": 1},
                 *heads[1:]]
        heads = [{k: v for k, v in h.items() if k != "deep_supervision"} for h in heads]
    return {**config, "decoder": decoder, "heads": heads}
