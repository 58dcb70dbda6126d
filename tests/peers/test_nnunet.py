"""nnU-Net's PlainConvUNet (dynamic_network_architectures) against conf/peers/nnunet_plain_*.yaml."""

from __future__ import annotations

import pytest

from tests.peers.common import (compare_outputs, copy_weights, keras_counts, nnunet_decoder_pairs, plan_of, randomize,
                                 torch_counts)

torch = pytest.importorskip("torch")
pytest.importorskip("dynamic_network_architectures")
from dynamic_network_architectures.architectures.unet import PlainConvUNet  # noqa: E402


def plain_unet(ndim: int, features: list[int]):
    conv = {2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[ndim]
    norm = {2: torch.nn.InstanceNorm2d, 3: torch.nn.InstanceNorm3d}[ndim]
    return PlainConvUNet(
        input_channels=1, n_stages=6, features_per_stage=features, conv_op=conv, kernel_sizes=3,
        strides=[1, 2, 2, 2, 2, 2], n_conv_per_stage=2, num_classes=3, n_conv_per_stage_decoder=2,
        conv_bias=True, norm_op=norm, norm_op_kwargs={"eps": 1e-5, "affine": True},
        nonlin=torch.nn.LeakyReLU, nonlin_kwargs={"negative_slope": 0.01, "inplace": True},
        deep_supervision=True).eval()


def pairs(net, n_stages: int = 6):
    """archgen's layer for each nnU-Net module."""
    out = []
    for s, stage in enumerate(net.encoder.stages):
        prefix = "bottleneck" if s == n_stages - 1 else f"enc{s + 1}"
        for c, block in enumerate(stage[0].convs):
            out += [(f"{prefix}_conv{c + 1}", block.conv), (f"{prefix}_norm{c + 1}", block.norm)]
    return out + nnunet_decoder_pairs(net, n_stages)


def test_nnunet_plain_2d_counts_and_shapes():
    net = plain_unet(2, [32, 64, 128, 256, 512, 512])
    assert torch_counts(net) == (20_620_079, 0)
    for size in ([256, 256], [64, 96], [512, 224]):
        plan = plan_of("nnunet_plain_2d", [*size, 1])
        assert plan.total_params == 20_620_079
        with torch.no_grad():
            ys = net(torch.zeros(1, 1, *size))
        assert list(plan.output_shapes.values()) == [(*y.shape[2:], y.shape[1]) for y in ys]


def test_nnunet_plain_2d_weights_copied_give_the_same_outputs():
    from archgen.emit import emit_model

    net = plain_unet(2, [32, 64, 128, 256, 512, 512])
    randomize(net)
    model = emit_model(plan_of("nnunet_plain_2d", [64, 96, 1]))
    assert keras_counts(model) == torch_counts(net)
    copy_weights(model, pairs(net))
    compare_outputs(model, net, (1, 64, 96), lambda n, x: n(x))


def test_nnunet_plain_3d_counts_and_shapes():
    net = plain_unet(3, [32, 64, 128, 256, 320, 320])
    trainable, _ = torch_counts(net)
    plan = plan_of("nnunet_plain_3d")
    assert plan.total_params == trainable == 31_196_399
    assert plan.output_shapes["logits"] == (128, 128, 128, 3)
    for size in ([64, 64, 64], [64, 32, 96]):
        plan = plan_of("nnunet_plain_3d", [*size, 1])
        with torch.no_grad():
            ys = net(torch.zeros(1, 1, *size))
        assert list(plan.output_shapes.values()) == [(*y.shape[2:], y.shape[1]) for y in ys]


@pytest.mark.slow
def test_nnunet_plain_3d_weights_copied_give_the_same_outputs():
    from archgen.emit import emit_model

    net = plain_unet(3, [32, 64, 128, 256, 320, 320])
    randomize(net)
    model = emit_model(plan_of("nnunet_plain_3d", [32, 32, 64, 1]))
    assert keras_counts(model) == torch_counts(net)
    copy_weights(model, pairs(net))
    compare_outputs(model, net, (1, 32, 32, 64), lambda n, x: n(x))
