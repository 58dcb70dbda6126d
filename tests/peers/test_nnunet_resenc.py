"""nnU-Net's ResidualEncoderUNet (ResEnc M, dynamic_network_architectures) against
conf/peers/nnunet_resenc_m_*.yaml: stem, BasicBlockD residual blocks with ResNet-D shortcuts, plain decoder."""

from __future__ import annotations

import pytest

from tests.peers.common import (compare_outputs, copy_weights, keras_counts, nnunet_decoder_pairs, plan_of, randomize,
                                 torch_counts)

torch = pytest.importorskip("torch")
pytest.importorskip("dynamic_network_architectures")
from dynamic_network_architectures.architectures.unet import ResidualEncoderUNet  # noqa: E402

FEATURES = [32, 64, 128, 256, 320, 320]
BLOCKS = [1, 3, 4, 6, 6, 6]


def resenc_m(ndim: int):
    """nnUNetPlannerResEncM's network, 3 classes, deep supervision."""
    conv = {2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[ndim]
    norm = {2: torch.nn.InstanceNorm2d, 3: torch.nn.InstanceNorm3d}[ndim]
    return ResidualEncoderUNet(
        input_channels=1, n_stages=6, features_per_stage=FEATURES, conv_op=conv, kernel_sizes=3,
        strides=[1, 2, 2, 2, 2, 2], n_blocks_per_stage=BLOCKS, num_classes=3,
        n_conv_per_stage_decoder=[1, 1, 1, 1, 1], conv_bias=True, norm_op=norm,
        norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=torch.nn.LeakyReLU,
        nonlin_kwargs={"negative_slope": 0.01, "inplace": True}, deep_supervision=True).eval()


def pairs(net, n_stages: int = 6):
    """archgen's layer for each nnU-Net module."""
    stem = net.encoder.stem.convs[0]
    out = [("stem_conv1", stem.conv), ("stem_norm1", stem.norm)]
    for s, stage in enumerate(net.encoder.stages):
        level = "bottleneck" if s == n_stages - 1 else f"enc{s + 1}"
        blocks = list(stage.blocks)
        for b, block in enumerate(blocks):
            prefix = level if len(blocks) == 1 else f"{level}_block{b + 1}"
            out += [(f"{prefix}_conv1", block.conv1.conv), (f"{prefix}_norm1", block.conv1.norm),
                    (f"{prefix}_conv2", block.conv2.conv), (f"{prefix}_norm2", block.conv2.norm)]
            if isinstance(block.skip, torch.nn.Sequential):
                for op in block.skip:
                    if hasattr(op, "conv"):
                        out += [(f"{prefix}_proj", op.conv), (f"{prefix}_proj_norm", op.norm)]
    return out + nnunet_decoder_pairs(net, n_stages)


def output_shapes(net, size):
    with torch.no_grad():
        ys = net(torch.zeros(1, 1, *size))
    return [(*y.shape[2:], y.shape[1]) for y in ys]


def test_nnunet_resenc_m_2d_counts_and_shapes():
    net = resenc_m(2)
    assert torch_counts(net) == (34_532_527, 0)
    assert plan_of("nnunet_resenc_m_2d").total_params == 34_532_527
    for size in ([64, 96], [128, 32]):
        plan = plan_of("nnunet_resenc_m_2d", [*size, 1])
        assert plan.total_params == 34_532_527
        assert list(plan.output_shapes.values()) == output_shapes(net, size)


def test_nnunet_resenc_m_2d_weights_copied_give_the_same_outputs():
    from archgen.emit import emit_model

    net = resenc_m(2)
    randomize(net)
    model = emit_model(plan_of("nnunet_resenc_m_2d", [64, 96, 1]))
    assert keras_counts(model) == torch_counts(net)
    copy_weights(model, pairs(net))
    compare_outputs(model, net, (1, 64, 96), lambda n, x: n(x))


def test_nnunet_resenc_m_3d_plan_count():
    """The plan alone (no PyTorch build): ResEnc M 3D has 102,350,575 trainable parameters."""
    plan = plan_of("nnunet_resenc_m_3d")
    assert plan.total_params == 102_350_575
    assert plan.output_shapes["logits"] == (128, 128, 128, 3)
    assert plan.output_shapes["logits_dec5"] == (8, 8, 8, 3)


@pytest.mark.slow
def test_nnunet_resenc_m_3d_counts_and_shapes():
    net = resenc_m(3)
    trainable, _ = torch_counts(net)
    assert trainable == 102_350_575
    for size in ([64, 64, 64], [32, 64, 96]):
        plan = plan_of("nnunet_resenc_m_3d", [*size, 1])
        assert plan.total_params == trainable
        assert list(plan.output_shapes.values()) == output_shapes(net, size)


@pytest.mark.slow
def test_nnunet_resenc_m_3d_weights_copied_give_the_same_outputs():
    from archgen.emit import emit_model

    net = resenc_m(3)
    randomize(net)
    # 64^3, not smaller: at 32x32x64 the bottleneck's instance norms see 2 voxels each, and float32
    # rounding through its 6 blocks grows past 1e-4 (4e-4 seen); at 64^3 (8 voxels) it stays within.
    model = emit_model(plan_of("nnunet_resenc_m_3d", [64, 64, 64, 1]))
    assert keras_counts(model) == torch_counts(net)
    copy_weights(model, pairs(net))
    compare_outputs(model, net, (1, 64, 64, 64), lambda n, x: n(x))
