"""Hypothesis strategies: random valid archgen configs across every option."""

from __future__ import annotations

from hypothesis import strategies as st

ACTIVATIONS = ["relu", "elu", "gelu", "silu", "tanh", "leaky_relu", "linear", "sigmoid"]


@st.composite
def block_dicts(draw, depth: int, ndim: int):
    block = {
        "type": draw(st.sampled_from(["conv", "residual"])),
        "convs": draw(st.integers(1, 2)),
        "kernel_size": draw(st.one_of(st.integers(1, 3), st.lists(st.integers(1, 3), min_size=depth + 1,
                                                                   max_size=depth + 1))),
        "dilation": draw(st.sampled_from([1, 1, 2])),
        "activation": draw(st.sampled_from(ACTIVATIONS)),
        "norm": draw(st.sampled_from(["none", "batch", "group", "layer"])),
        "groups": 2,
        "dropout": draw(st.sampled_from([0.0, 0.0, 0.25])),
        "inner_ratio": draw(st.sampled_from([1.0, 0.5])),
    }
    if draw(st.booleans()):
        block["bias"] = draw(st.booleans())
    if draw(st.booleans()):
        block["padding"] = draw(st.sampled_from(["valid", "same"]))
    return block


@st.composite
def spec_dicts(draw):
    """A config dict with open (null) spatial sizes; the test picks legal sizes from the plan."""
    ndim = draw(st.sampled_from([1, 2, 2, 3]))
    depth = draw(st.integers(0, 3 if ndim < 3 else 2))
    factor = draw(st.sampled_from([2, 2, 3]))
    down = draw(st.sampled_from(["maxpool", "avgpool", "conv"]))
    up_type = draw(st.sampled_from(["transpose", "resize"]))
    upsample = {"type": up_type, "factor": factor, "keep_channels": draw(st.booleans()),
                "activation": draw(st.sampled_from(ACTIVATIONS))}
    if up_type == "transpose":
        upsample["kernel_size"] = draw(st.sampled_from([factor, factor + 1]))
        upsample["bias"] = draw(st.booleans())
    else:
        upsample["interpolation"] = draw(st.sampled_from(["nearest", "bilinear"] if ndim == 2 else ["nearest"]))
        upsample["kernel_size"] = draw(st.integers(1, 3))
    aligns = ["crop", "pad", "none"] + (["resize"] if ndim == 2 else [])
    align = draw(st.one_of(st.sampled_from(aligns), st.lists(st.sampled_from(aligns), min_size=depth,
                                                               max_size=depth)))
    skips = draw(st.one_of(st.sampled_from(["all", "none"]),
                           st.lists(st.integers(1, max(depth, 1)), max_size=depth, unique=True)))
    if depth == 0 and isinstance(skips, list):
        skips = []
    merge = draw(st.sampled_from([{"type": "concat"}, {"type": "add"}, {"type": "attention"},
                                  {"type": "attention", "inter_filters": 2}]))
    heads = []
    for i in range(draw(st.integers(1, 2))):
        head = {"name": f"out{i}", "filters": draw(st.integers(1, 3)),
                "activation": draw(st.sampled_from(["linear", "softmax", "sigmoid"])),
                "level": draw(st.integers(1, depth + 1)),
                "kernel_size": draw(st.sampled_from([1, 1, 3]))}
        if depth >= 2 and draw(st.booleans()):
            head["deep_supervision"] = draw(st.lists(st.integers(2, depth), min_size=1, max_size=depth - 1,
                                                     unique=True))
        heads.append(head)
    encoder = {
        "depth": depth,
        "filters": draw(st.one_of(st.sampled_from([2, 4]), st.lists(st.sampled_from([2, 4, 6]),
                                                                     min_size=depth + 1, max_size=depth + 1))),
        "multiplier": draw(st.sampled_from([1.0, 2.0])),
        "block": draw(block_dicts(depth, ndim)),
        "downsample": {"type": down, "factor": factor},
    }
    if draw(st.booleans()):
        encoder["max_filters"] = 8
    decoder = {"skips": skips, "align": align, "merge": merge, "upsample": upsample}
    if draw(st.booleans()):
        decoder["block"] = draw(block_dicts(depth, ndim))
    return {
        "name": "prop",
        "input": {"shape": [None] * ndim + [draw(st.integers(1, 3))]},
        "padding": draw(st.sampled_from(["valid", "same"])),
        "encoder": encoder,
        "decoder": decoder,
        "heads": heads,
    }
