"""Each output's labels and deep-supervision weight, from the plan."""

from __future__ import annotations

import numpy as np
import pytest

from archgen.planner import make_plan
from archgen.config import load_spec
from archgen.train.labels import head_mode, resize_nearest
from archgen.train.outputs import output_targets
from tests.conftest import CONF


def targets(config: str, overrides=(), rule: str = "nnunet"):
    spec = load_spec(CONF / config, list(overrides))
    plan = make_plan(spec)
    return plan, output_targets(plan, {h.name: (h.activation, h.filters) for h in spec.heads}, rule)


def test_nnunet_deep_supervision_weights_and_label_sizes():
    plan, outs = targets("deep_supervision.yaml", ["input.shape=[64,64,1]"])
    assert [o.name for o in outs] == ["logits", "logits_dec2", "logits_dec3"]
    assert [o.weight for o in outs] == pytest.approx([2 / 3, 1 / 3, 0.0])
    labels = np.random.default_rng(0).integers(0, 4, (64, 64))
    for out in outs:
        got = out.labels(labels, 2)
        assert got.shape == plan.output_shapes[out.name][:-1]
        assert set(np.unique(got)) <= set(range(4))
    assert (outs[1].labels(labels, 2) == labels[1::2, 1::2]).all()  # the pixel nearest each block's centre


def test_valid_padding_labels_are_the_centre_the_output_sees():
    plan, outs = targets("unet.yaml", ["encoder.depth=2", "input.shape=[44,44,1]"])
    (out,) = outs
    labels = np.arange(44 * 44).reshape(44, 44)
    from archgen.tiling import crop_to_output

    assert (out.labels(labels, 2) == crop_to_output(labels, plan, channel_axis=False)).all()
    batch = np.stack([labels, labels])
    assert (out.labels(batch, 2, batched=True)[1] == out.labels(labels, 2)).all()


def test_unet_plus_plus_copies_come_after_the_head_the_shallowest_last():
    _, outs = targets("unet_plus_plus.yaml", ["decoder.deep_supervision=true", "padding=same",
                                             "input.shape=[64,64,1]"])
    names = [o.name for o in outs]
    weights = {o.name: o.weight for o in outs}
    assert weights["logits"] > weights["logits_x0_3"] > weights["logits_x0_2"] > weights["logits_x0_1"] == 0
    assert set(names) == {"logits", "logits_x0_1", "logits_x0_2", "logits_x0_3"}


def test_regression_targets_keep_their_channels_and_values():
    plan, _ = targets("regression.yaml")
    spec_heads = {"rainfall": ("linear", 1)}
    (out,) = output_targets(plan, spec_heads, regression=["rainfall"])
    assert out.mode is None
    target = np.random.default_rng(1).normal(size=(40, 40, 1)).astype("float32")
    assert (out.labels(target, 2) == target).all()


def test_head_modes():
    assert head_mode("softmax", 3).classes == 3
    assert head_mode("sigmoid", 1).classes == 2
    assert head_mode("linear", 3).activation == "softmax" and head_mode("linear", 3).from_logits
    assert head_mode("linear", 1).activation == "sigmoid"
    assert head_mode("relu", 1) is None


def test_resize_nearest_never_mixes_classes_3d():
    labels = np.random.default_rng(2).integers(0, 5, (2, 8, 12, 16))
    small = resize_nearest(labels, [2, 4, 4], first_axis=1)
    assert small.shape == (2, 4, 3, 4)
    assert set(np.unique(small)) <= set(np.unique(labels))
    assert small[1, 2, 1, 3] == labels[1, 5, 6, 14]
