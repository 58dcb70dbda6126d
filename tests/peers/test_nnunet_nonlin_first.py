"""nnU-Net's ``nonlin_first`` (conv, activation, norm) as a block's ``order: act_norm``: PlainConvUNet
built with it against conf/peers/nnunet_plain_2d.yaml with that order, narrowed to keep it quick."""

from __future__ import annotations

import pytest
import yaml

from archgen.planner import make_plan
from archgen.config import validate
from tests.peers.common import PEERS, compare_outputs, copy_weights, keras_counts, randomize, torch_counts
from tests.peers.test_nnunet import pairs

torch = pytest.importorskip("torch")
pytest.importorskip("dynamic_network_architectures")
from dynamic_network_architectures.architectures.unet import PlainConvUNet  # noqa: E402

FEATURES = [8, 16, 32, 64, 128, 128]


def narrow_plain_unet(nonlin_first: bool):
    return PlainConvUNet(
        input_channels=1, n_stages=6, features_per_stage=FEATURES, conv_op=torch.nn.Conv2d, kernel_sizes=3,
        strides=[1, 2, 2, 2, 2, 2], n_conv_per_stage=2, num_classes=3, n_conv_per_stage_decoder=2,
        conv_bias=True, norm_op=torch.nn.InstanceNorm2d, norm_op_kwargs={"eps": 1e-5, "affine": True},
        nonlin=torch.nn.LeakyReLU, nonlin_kwargs={"negative_slope": 0.01}, deep_supervision=True,
        nonlin_first=nonlin_first).eval()


def narrow_plan(order: str, size: list[int]):
    data = yaml.safe_load((PEERS / "nnunet_plain_2d.yaml").read_text())
    data["input"]["shape"] = [*size, 1]
    data["encoder"]["block"]["order"] = order
    for stage, filters in zip(data["encoder"]["stages"], FEATURES):
        stage["filters"] = filters
    for stage, filters in zip(data["decoder"]["stages"], FEATURES):
        stage["filters"] = filters
    return make_plan(validate(data))


def test_nonlin_first_counts_shapes_and_copied_weights():
    from archgen.emit import emit_model

    net = narrow_plain_unet(nonlin_first=True)
    randomize(net)
    plan = narrow_plan("act_norm", [64, 96])
    assert plan.total_params == torch_counts(net)[0]
    names = [layer.name for layer in plan.layers]
    assert names.index("enc1_act1") < names.index("enc1_norm1")  # the activation, then the norm
    model = emit_model(plan)
    assert keras_counts(model) == torch_counts(net)
    copy_weights(model, pairs(net))
    compare_outputs(model, net, (1, 64, 96), lambda n, x: n(x))


def test_the_order_matters():
    """The same weights in the default order (norm, then activation) give other outputs."""
    from archgen.emit import emit_model

    net = narrow_plain_unet(nonlin_first=True)
    randomize(net)
    model = emit_model(narrow_plan("norm_act", [64, 96]))
    copy_weights(model, pairs(net))
    with pytest.raises(AssertionError):
        compare_outputs(model, net, (1, 64, 96), lambda n, x: n(x))
