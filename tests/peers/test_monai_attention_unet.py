"""MONAI's AttentionUnet against conf/peers/monai_attention_unet_2d.yaml: counts (batch norm's
statistics apart), shapes, copied weights (its gate's batch norms with non-trivial statistics)."""

from __future__ import annotations

import pytest

from tests.peers.common import compare_outputs, copy_weights, keras_counts, plan_of, randomize, torch_counts

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
from monai.networks.nets import AttentionUnet  # noqa: E402
from monai.networks.nets.attentionunet import AttentionLayer  # noqa: E402


def attention_unet():
    return AttentionUnet(spatial_dims=2, in_channels=1, out_channels=2, channels=(16, 32, 64, 128, 256),
                         strides=(2, 2, 2, 2)).eval()


def conv_block_pairs(prefix: str, block) -> list:
    return [pair for i, conv in enumerate(block.conv)
            for pair in ((f"{prefix}_conv{i + 1}", conv.conv), (f"{prefix}_norm{i + 1}", conv.adn.N))]


def pairs(net) -> list:
    """archgen's layer for each module: MONAI's recursion unrolled, level 1 outermost."""
    head, layer, reduce = net.model
    out = conv_block_pairs("enc1", head) + [("logits", reduce.conv)]
    level = 1
    while True:
        gate = layer.attention
        out += [(f"dec{level}_up", layer.upconv.up.conv), (f"dec{level}_up_norm", layer.upconv.up.adn.N),
                (f"dec{level}_attn_g", gate.W_g[0].conv), (f"dec{level}_attn_g_norm", gate.W_g[1]),
                (f"dec{level}_attn_x", gate.W_x[0].conv), (f"dec{level}_attn_x_norm", gate.W_x[1]),
                (f"dec{level}_attn_psi", gate.psi[0].conv), (f"dec{level}_attn_psi_norm", gate.psi[1]),
                (f"dec{level}_conv1", layer.merge.conv), (f"dec{level}_act1", layer.merge.adn.A)]
        sub = layer.submodule
        if not isinstance(sub, torch.nn.Sequential):  # the bottom: a ConvBlock
            return out + conv_block_pairs("bottleneck", sub)
        out += conv_block_pairs(f"enc{level + 1}", sub[0])
        layer, level = sub[1], level + 1
        assert isinstance(layer, AttentionLayer)


@pytest.mark.parametrize("size", [[96, 96], [64, 128], [16, 48]])
def test_attention_unet_2d_counts_and_shapes(size):
    net = attention_unet()
    plan = plan_of("monai_attention_unet_2d", [*size, 1])
    trainable, statistics = torch_counts(net)
    assert (trainable, statistics) == (1_987_434, 2_952)
    assert plan.total_params == trainable + statistics  # Keras counts batch norm's moving mean and variance
    with torch.no_grad():
        y = net(torch.zeros(1, 1, *size))
    assert plan.output_shapes["logits"] == (*y.shape[2:], y.shape[1]) == (*size, 2)


def test_attention_unet_2d_weights_copied_give_the_same_outputs():
    from archgen.emit import emit_model

    net = attention_unet()
    randomize(net)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # running statistics away from 0 and 1, so a norm left out would show
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
    model = emit_model(plan_of("monai_attention_unet_2d", [64, 48, 1]))
    assert keras_counts(model) == torch_counts(net)
    copy_weights(model, pairs(net))
    compare_outputs(model, net, (1, 64, 48), lambda n, x: [n(x)])
