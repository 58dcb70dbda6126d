"""MONAI's BasicUNet against conf/peers/monai_basicunet_*.yaml: counts, shapes (odd sizes too),
copied weights."""

from __future__ import annotations

import numpy as np
import pytest

from tests.peers.common import (channels_last, compare_outputs, copy_weights, keras_counts, plan_of, randomize,
                                torch_counts)

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
from monai.networks.nets import BasicUNet  # noqa: E402


def pairs(net):
    def two(prefix, block):
        return [(f"{prefix}_conv{i + 1}", conv.conv) for i, conv in enumerate((block.conv_0, block.conv_1))] + \
               [(f"{prefix}_norm{i + 1}", conv.adn.N) for i, conv in enumerate((block.conv_0, block.conv_1))]

    out = two("enc1", net.conv_0)
    for i, down in enumerate((net.down_1, net.down_2, net.down_3)):
        out += two(f"enc{i + 2}", down.convs)
    out += two("bottleneck", net.down_4.convs)
    for level, up in zip((4, 3, 2, 1), (net.upcat_4, net.upcat_3, net.upcat_2, net.upcat_1)):
        out += [(f"dec{level}_up", up.upsample.deconv), *two(f"dec{level}", up.convs)]
    return out + [("logits", net.final_conv)]


@pytest.mark.parametrize("size", [[96, 96], [63, 63], [64, 37]])
def test_basicunet_2d_counts_and_shapes(size):
    net = BasicUNet(spatial_dims=2, in_channels=1, out_channels=2).eval()
    plan = plan_of("monai_basicunet_2d", [*size, 1])
    assert plan.total_params == torch_counts(net)[0] == 1_978_466
    with torch.no_grad():
        y = net(torch.zeros(1, 1, *size))
    assert plan.output_shapes["logits"] == (*y.shape[2:], y.shape[1]) == (*size, 2)


def test_basicunet_2d_weights_copied_give_the_same_outputs():
    from archgen.emit import emit_model

    net = BasicUNet(spatial_dims=2, in_channels=1, out_channels=2).eval()
    randomize(net)
    model = emit_model(plan_of("monai_basicunet_2d", [64, 48, 1]))
    assert keras_counts(model) == torch_counts(net)
    copy_weights(model, pairs(net))
    compare_outputs(model, net, (1, 64, 48), lambda n, x: [n(x)])


def test_basicunet_2d_odd_size_differs_only_by_the_padding():
    """At an odd size MONAI repeats the last row where archgen pads zeros: same shapes; instance norm
    spreads the difference over the whole map, so the outputs are close, not equal."""
    from archgen.emit import emit_model

    net = BasicUNet(spatial_dims=2, in_channels=1, out_channels=2).eval()
    randomize(net)
    model = emit_model(plan_of("monai_basicunet_2d", [64, 63, 1]))
    copy_weights(model, pairs(net))
    x = np.random.default_rng(0).normal(size=(1, 1, 64, 63)).astype("float32")
    with torch.no_grad():
        yt = channels_last(net(torch.from_numpy(x)).numpy())
    y = np.asarray(model(channels_last(x)))
    assert y.shape == yt.shape == (1, 64, 63, 2)
    assert np.corrcoef(y.ravel(), yt.ravel())[0, 1] > 0.99
    assert np.abs(y - yt).max() > 1e-4  # the padding does differ


@pytest.mark.parametrize("size", [[32, 32, 32], [33, 35, 31]])
def test_basicunet_3d_counts_and_shapes(size):
    net = BasicUNet(spatial_dims=3, in_channels=1, out_channels=2).eval()
    plan = plan_of("monai_basicunet_3d", [*size, 1])
    assert plan.total_params == torch_counts(net)[0] == 5_749_410
    with torch.no_grad():
        y = net(torch.zeros(1, 1, *size))
    assert plan.output_shapes["logits"] == (*y.shape[2:], y.shape[1]) == (*size, 2)


@pytest.mark.slow
def test_basicunet_3d_weights_copied_give_the_same_outputs():
    from archgen.emit import emit_model

    net = BasicUNet(spatial_dims=3, in_channels=1, out_channels=2).eval()
    randomize(net)
    model = emit_model(plan_of("monai_basicunet_3d", [32, 32, 32, 1]))
    copy_weights(model, pairs(net))
    compare_outputs(model, net, (1, 32, 32, 32), lambda n, x: [n(x)])
