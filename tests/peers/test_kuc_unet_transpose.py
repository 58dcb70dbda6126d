"""keras-unet-collection's unet_2d with ``unpool=False``: each decoder level up-samples by a 3x3
transposed conv (with a bias, even under batch norm), its norm and activation, then a 3x3 conv with
the same norm and activation before the concatenation (``decoder.upsample.conv_after``)."""

from __future__ import annotations

import pytest

from archgen.config import validate
from archgen.planner import make_plan
from tests.peers.keras_peers import copy_by_name, keras_counts, plan_counts, randomize, same_outputs

kuc = pytest.importorskip("keras_unet_collection.models")

FILTERS = [32, 64, 128]


def peer(size: list[int], batch_norm: bool):
    return kuc.unet_2d((*size, 3), FILTERS, n_labels=2, stack_num_down=2, stack_num_up=2, activation="ReLU",
                       output_activation="Softmax", batch_norm=batch_norm, pool=True, unpool=False, name="unet")


def config(size: list[int], batch_norm: bool) -> dict:
    norm = "batch" if batch_norm else "none"
    return {
        "name": "kuc_unet_transpose", "input": {"shape": [*size, 3]}, "padding": "same",
        "encoder": {"block": {"type": "conv", "norm": norm, "activation": "relu"},
                    "stages": [{"filters": f, "convs": 2, "stride": 1 if i == 0 else 2} for i, f in enumerate(FILTERS)]},
        "decoder": {"align": "none", "merge": {"type": "concat", "order": "up_skip"},
                    "block": {"type": "conv", "norm": norm, "activation": "relu"},
                    "upsample": {"type": "transpose", "kernel_size": 3, "bias": True, "norm": norm,
                                 "activation": "relu", "conv_after": 3},
                    "stages": [{"filters": f, "convs": 2} for f in FILTERS[:-1]]},
        "heads": [{"name": "logits", "filters": 2, "activation": "softmax"}],
    }


def kuc_name(name: str) -> str:
    """archgen's layer -> unet_2d's: enc1, enc2 / bottleneck are down0, down1 / down2; dec2, dec1 are up0, up1."""
    if name == "logits":
        return "unet_output"
    level, rest = name.split("_", 1)
    if level in ("enc1", "enc2", "bottleneck"):
        where = "unet_down0" if level == "enc1" else "unet_down1" if level == "enc2" else "unet_down2"
        if level != "enc1":
            where += "_conv"
        kind, j = ("conv", rest[4:]) if rest.startswith("conv") else ("bn", rest[4:])
        return f"{where}_{int(j) - 1}" + ("_bn" if kind == "bn" else "")
    up = {"dec2": "unet_up0", "dec1": "unet_up1"}[level]
    named = {"up": f"{up}_decode_trans_conv", "up_norm": f"{up}_decode_bn",
             "postconv": f"{up}_conv_before_concat_0", "postnorm": f"{up}_conv_before_concat_0_bn"}
    if rest in named:
        return named[rest]
    return f"{up}_conv_after_concat_{int(rest[-1]) - 1}" + ("_bn" if rest.startswith("norm") else "")


@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("size", [[64, 64], [32, 48]])
def test_counts_and_shapes(size, batch_norm):
    net, plan = peer(size, batch_norm), make_plan(validate(config(size, batch_norm)))
    assert plan_counts(plan) == keras_counts(net)
    assert plan.output_shapes["logits"] == tuple(net.output_shape[1:]) == (*size, 2)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_copied_weights_give_the_same_outputs(batch_norm):
    from archgen.emit import emit_model

    net = peer([32, 48], batch_norm)
    randomize(net)
    model = emit_model(make_plan(validate(config([32, 48], batch_norm))))
    copy_by_name(model, net, kuc_name)
    same_outputs(model, net, (32, 48, 3))


def test_a_conv_after_the_plain_last_up_sampling_is_refused():
    from archgen.config import load_spec
    from archgen.errors import PlanError
    from tests.peers.common import PEERS

    with pytest.raises(PlanError) as info:  # MONAI's UNet: its last transposed conv is the network's output
        make_plan(load_spec(PEERS / "monai_unet_2d.yaml", ["decoder.upsample.conv_after=3", "decoder.stages.0.convs=0"]))
    assert info.value.path == "decoder.upsample.conv_after" and "last layer" in info.value.render()
