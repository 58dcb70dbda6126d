"""MONAI's DynUNet against conf/peers/monai_dynunet_*.yaml: counts, shapes, copied weights."""

from __future__ import annotations

import pytest

from tests.peers.common import compare_outputs, copy_weights, keras_counts, plan_of, randomize, torch_counts

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
from monai.networks.nets import DynUNet  # noqa: E402


def dynunet_2d():
    return DynUNet(spatial_dims=2, in_channels=1, out_channels=2, kernel_size=[3, 3, 3, 3], strides=[1, 2, 2, 2],
                   upsample_kernel_size=[2, 2, 2]).eval()


def dynunet_2d_deep_supervision():
    return DynUNet(spatial_dims=2, in_channels=1, out_channels=2, kernel_size=[3] * 5, strides=[1, 2, 2, 2, 2],
                   upsample_kernel_size=[2] * 4, deep_supervision=True, deep_supr_num=2).eval()


def dynunet_3d_anisotropic():
    return DynUNet(spatial_dims=3, in_channels=1, out_channels=3, kernel_size=[3, (1, 3, 3), 3, 3],
                   strides=[1, (1, 2, 2), 2, 2], upsample_kernel_size=[(1, 2, 2), 2, 2]).eval()


def block_pairs(prefix, block):
    return [(f"{prefix}_conv1", block.conv1.conv), (f"{prefix}_norm1", block.norm1),
            (f"{prefix}_conv2", block.conv2.conv), (f"{prefix}_norm2", block.norm2)]


def pairs(net):
    depth = len(net.strides) - 1
    out = block_pairs("enc1", net.input_block)
    for i, block in enumerate(net.downsamples):
        out += block_pairs(f"enc{i + 2}", block)
    out += block_pairs("bottleneck", net.bottleneck)
    for j, up in enumerate(net.upsamples):
        level = depth - j
        out += [(f"dec{level}_up", up.transp_conv.conv), *block_pairs(f"dec{level}", up.conv_block)]
    out.append(("logits", net.output_block.conv.conv))
    if net.deep_supervision:
        out += [(f"logits_dec{i + 2}", head.conv.conv) for i, head in enumerate(net.deep_supervision_heads)]
    return out


def shapes_of(net, size):
    with torch.no_grad():
        y = net(torch.zeros(1, 1, *size))
    return (*y.shape[2:], y.shape[1])


@pytest.mark.parametrize("size", [[128, 128], [64, 96], [8, 40]])
def test_dynunet_2d_counts_and_shapes(size):
    net = dynunet_2d()
    plan = plan_of("monai_dynunet_2d", [*size, 1])
    assert plan.total_params == torch_counts(net)[0] == 1_926_242
    assert plan.output_shapes["logits"] == shapes_of(net, size)


def test_dynunet_2d_weights_copied_give_the_same_outputs():
    from archgen.emit import emit_model

    net = dynunet_2d()
    randomize(net)
    model = emit_model(plan_of("monai_dynunet_2d", [64, 96, 1]))
    assert keras_counts(model) == torch_counts(net)
    copy_weights(model, pairs(net))
    compare_outputs(model, net, (1, 64, 96), lambda n, x: [n(x)])


def test_dynunet_2d_deep_supervision_counts_shapes_and_weights():
    from archgen.emit import emit_model

    net = dynunet_2d_deep_supervision()
    randomize(net)
    plan = plan_of("monai_dynunet_2d_deep_supervision", [64, 96, 1])
    assert plan.total_params == torch_counts(net)[0] == 7_762_406
    model = emit_model(plan)
    copy_weights(model, pairs(net))

    def outputs(n, x):  # the heads before DynUNet interpolates and stacks them
        n.train()
        for m in n.modules():  # instance norm has no running statistics: train mode changes nothing else
            m.training = m is n
        main = n(x)[:, 0]
        n.eval()
        return [main, *n.heads]

    compare_outputs(model, net, (1, 64, 96), outputs)


@pytest.mark.parametrize("size", [[16, 64, 64], [8, 32, 48]])
def test_dynunet_3d_anisotropic_counts_and_shapes(size):
    net = dynunet_3d_anisotropic()
    plan = plan_of("monai_dynunet_3d_anisotropic", [*size, 1])
    assert plan.total_params == torch_counts(net)[0] == 5_426_883
    assert plan.output_shapes["logits"] == shapes_of(net, size)
    assert plan.layer("enc2_conv1").attrs["kernel"] == (1, 3, 3)
    assert plan.axis_sizes[0].period == 4 and plan.axis_sizes[1].period == 8


@pytest.mark.slow
def test_dynunet_3d_anisotropic_weights_copied_give_the_same_outputs():
    from archgen.emit import emit_model

    net = dynunet_3d_anisotropic()
    randomize(net)
    model = emit_model(plan_of("monai_dynunet_3d_anisotropic", [8, 32, 48, 1]))
    assert keras_counts(model) == torch_counts(net)
    copy_weights(model, pairs(net))
    compare_outputs(model, net, (1, 8, 32, 48), lambda n, x: [n(x)])
