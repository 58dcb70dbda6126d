"""keras-unet-collection's r2_unet_2d against conf/peers/kuc_r2_unet_2d.yaml: trainable and
non-trainable counts, output shapes, and outputs with copied weights."""

from __future__ import annotations

import re

import pytest

from tests.peers.common import plan_of
from tests.peers.keras_peers import (
    copy_by_name,
    keras_counts,
    plan_counts,
    randomize,
    same_outputs,
)

kuc = pytest.importorskip("keras_unet_collection.models")

FILTERS = [64, 128, 256, 512]
CONFIG_CALL = {"stack_num_down": 2, "stack_num_up": 1, "recur_num": 2, "activation": "ReLU",
               "output_activation": "Softmax", "batch_norm": True, "pool": "max", "unpool": "nearest"}
# r2_unet_2d's own defaults (batch_norm=False, bilinear up-sampling), as overrides of the config.
DEFAULTS = ["encoder.block.norm=none", "decoder.upsample.norm=none", "decoder.upsample.interpolation=bilinear",
            "decoder.stages.0.convs=2", "decoder.stages.1.convs=2", "decoder.stages.2.convs=2"]


def peer(size: int, **call):
    return kuc.r2_unet_2d((size, size, 3), FILTERS, n_labels=2, **call)


def test_the_config_counts_as_r2_unet_2d():
    plan = plan_of("kuc_r2_unet_2d")
    net = peer(128, **CONFIG_CALL)
    assert plan_counts(plan) == keras_counts(net) == (23_039_362, 15_104)
    assert plan.output_shapes["logits"] == tuple(net.output_shape[1:]) == (128, 128, 2)


def test_r2_unet_2d_defaults_are_a_few_overrides_away():
    from archgen.planner import make_plan
    from archgen.config import load_spec
    from tests.peers.common import PEERS

    plan = make_plan(load_spec(PEERS / "kuc_r2_unet_2d.yaml", DEFAULTS))
    net = peer(128, recur_num=2)  # every other argument at its default
    assert plan_counts(plan) == keras_counts(net) == (25_348_482, 0)  # no batch norm: nothing frozen


def kuc_name(name: str) -> str:
    """archgen's layer -> r2_unet_2d's: enc1..3 / bottleneck are down0..3, dec3..1 are up1..3."""
    if name == "logits":
        return "r2_unet_output"
    level, rest = name.split("_", 1)
    k = {"enc1": "down0", "enc2": "down1", "enc3": "down2", "bottleneck": "down3",
         "dec3": "up1", "dec2": "up2", "dec1": "up3"}[level]
    if rest == "in":
        return f"r2_unet_{k}_conv"
    if rest in ("upconv", "upnorm"):
        return f"r2_unet_{k}_conv_before_concat_0" + ("_bn" if rest == "upnorm" else "")
    unit, kind, j = re.fullmatch(r"unit(\d+)_(conv|norm)(\d+)", rest).groups()
    kind = "conv" if kind == "conv" else "bn"
    return f"r2_unet_{k}_{kind}{int(unit) - 1}" + (f"_{int(j) - 1}" if int(j) else "")


def test_copied_weights_give_the_same_outputs():
    from archgen.emit import emit_model

    net = peer(64, **CONFIG_CALL)
    randomize(net)
    model = emit_model(plan_of("kuc_r2_unet_2d", [64, 64, 3]))
    copy_by_name(model, net, kuc_name)
    same_outputs(model, net, (64, 64, 3))
