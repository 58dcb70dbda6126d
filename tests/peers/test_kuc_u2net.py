"""keras-unet-collection's u2net_2d (U^2-Net) against conf/peers/kuc_u2net_2d.yaml: trainable counts,
output shapes at three sizes, and outputs with copied weights (the fused output, and with deep
supervision every side output)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.peers.common import PEERS, plan_of
from tests.peers.keras_peers import copy_by_name, keras_counts, plan_counts, randomize, same_outputs

kuc = pytest.importorskip("keras_unet_collection.models")

FILTERS = [64, 128, 256, 512]
PARAMS = 48_897_382  # kuc's count_params() at these arguments, every other one at its default


def peer(shape: tuple[int, int], **call):
    return kuc.u2net_2d((*shape, 3), n_labels=2, filter_num_down=FILTERS, **call)


def plan_at(shape: tuple[int, int], overrides: tuple[str, ...] = ()):
    from archgen.config import load_spec
    from archgen.planner import make_plan

    return make_plan(load_spec(PEERS / "kuc_u2net_2d.yaml", [f"input.shape=[{shape[0]},{shape[1]},3]", *overrides]))


def test_the_config_counts_as_u2net_2d():
    plan = plan_of("kuc_u2net_2d")
    net = peer((128, 128))
    assert plan_counts(plan) == keras_counts(net) == (PARAMS, 0)  # no batch norm: nothing frozen
    assert plan.output_shapes["logits"] == tuple(net.output_shape[1:]) == (128, 128, 2)


@pytest.mark.parametrize("shape", [(64, 64), (96, 160)])
def test_output_shapes_at_other_sizes(shape):
    plan = plan_at(shape)
    net = peer(shape)
    assert plan_counts(plan) == keras_counts(net)
    assert plan.output_shapes["logits"] == tuple(net.output_shape[1:]) == (*shape, 2)


def test_a_size_32_does_not_divide_is_refused():
    from archgen.errors import PlanError

    with pytest.raises(PlanError, match="32k"):  # enc1's block pools 5 times inside, the network 5 times
        plan_at((80, 80))


# Blocks by archgen level: keras-unet-collection's name, and the poolings inside (None: RSU-4F).
LEVELS = {"enc1": ("u2net_in", 5), "enc2": ("u2net_down_0", 4), "enc3": ("u2net_down_1", 3),
          "enc4": ("u2net_down_2", 2), "enc5": ("u2net_down_4f_0", None), "bottleneck": ("u2net_down_4f_1", None),
          "dec5": ("u2net_up_4f_0", None), "dec4": ("u2net_up_0", 2), "dec3": ("u2net_up_1", 3),
          "dec2": ("u2net_up_2", 4), "dec1": ("u2net_up_3", 5)}
DILATED = 4  # RSU-4F's dilations 1, 2, 4, 8


def kuc_name(name: str) -> str:
    """archgen's layer -> u2net_2d's: RSU's in / down_i / up_0 (bottom) / up_i / out convs, RSU4F's
    in / down_i (the last its bottom) / up_i / out; the heads' sup0, output_conv_i and output_final."""
    if name == "logits":
        return "u2net_output_final"
    if name == "logits_dec1":
        return "u2net_output_sup0"
    if m := re.fullmatch(r"logits_dec(\d+)_conv", name):
        return f"u2net_output_conv_{int(m.group(1)) - 1}"
    if name.endswith("_norm"):  # CONV_stack's batch norm, after its conv
        return kuc_name(name[:-len("_norm")] + "_conv") + "_bn"
    level, rest = re.fullmatch(r"(enc\d|dec\d|bottleneck)_(.+)_conv", name).groups()
    block, height = LEVELS[level]
    if rest == "in":
        return f"{block}_in_0"
    where, inner = re.fullmatch(r"rsu_(enc|dec|bottleneck)(\d*)", rest).groups()
    inner = int(inner) if inner else None
    if where == "enc":
        return f"{block}_down_{inner - 1}_0"
    if where == "bottleneck":
        return f"{block}_up_0_0" if height else f"{block}_down_{DILATED - 1}_0"
    if inner == 1:
        return f"{block}_out_0"
    return f"{block}_up_{height + 2 - inner}_0" if height else f"{block}_up_{DILATED - 1 - inner}_0"


def test_every_weighted_layer_has_a_peer():
    """The name map is a bijection between the two models' layers with weights."""
    from archgen.emit import emit_model

    model = emit_model(plan_at((64, 64)))
    net = peer((64, 64))
    ours = [layer.name for layer in model.layers if layer.weights]
    theirs = {layer.name for layer in net.layers if layer.weights}
    assert sorted(map(kuc_name, ours)) == sorted(theirs)
    assert len(ours) == len(theirs) == 119  # 2h + 4 convs per RSU of h poolings, 8 per RSU-4F, 7 in the head


def test_copied_weights_give_the_same_outputs():
    from archgen.emit import emit_model

    net = peer((64, 64))
    randomize(net)
    model = emit_model(plan_at((64, 64)))
    copy_by_name(model, net, kuc_name)
    same_outputs(model, net, (64, 64, 3))


def test_deep_supervision_gives_every_side_and_the_fused_output():
    from archgen.emit import emit_model

    net = peer((64, 96), deep_supervision=True)
    plan = plan_at((64, 96), ("heads.0.fuse.outputs=true",))
    assert list(plan.output_shapes) == [f"logits_dec{level}" for level in range(1, 7)] + ["logits"]
    assert plan_counts(plan) == keras_counts(net)
    randomize(net, seed=3)
    model = emit_model(plan)
    copy_by_name(model, net, kuc_name)
    x = np.random.default_rng(2).normal(size=(2, 64, 96, 3)).astype("float32")
    ys, ys_peer = model(x, training=False), net(x, training=False)
    ys = [ys[name] for name in plan.output_shapes] if isinstance(ys, dict) else list(ys)
    assert len(ys) == len(ys_peer) == 7
    for y, y_peer in zip(ys, ys_peer):
        assert y.shape == y_peer.shape == (2, 64, 96, 2)
        np.testing.assert_allclose(np.asarray(y), np.asarray(y_peer), atol=1e-4, rtol=0)


# u2net_2d's other arguments, as overrides of the config.
BATCH_NORM = ("encoder.block.norm=batch",)
NEAREST = ("encoder.block.interpolation=nearest", "decoder.upsample.interpolation=nearest",
           "heads.0.fuse.interpolation=nearest")


def test_batch_norm_and_nearest_up_sampling_are_overrides_away():
    net = peer((64, 64), batch_norm=True, unpool="nearest")
    plan = plan_at((64, 64), BATCH_NORM + NEAREST)
    # Each block conv's C biases give way to a batch norm of 4C (2C trained): 15,104 channels in all.
    assert plan_counts(plan) == keras_counts(net) == (PARAMS + 15_104, 2 * 15_104)


@pytest.mark.slow
def test_copied_weights_give_the_same_outputs_with_batch_norm_and_nearest():
    from archgen.emit import emit_model

    net = peer((64, 64), batch_norm=True, unpool="nearest")
    randomize(net, seed=5)
    model = emit_model(plan_at((64, 64), BATCH_NORM + NEAREST))
    copy_by_name(model, net, kuc_name)
    same_outputs(model, net, (64, 64, 3))
