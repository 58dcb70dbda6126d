"""MONAI's VNet against conf/peers/monai_vnet_3d.yaml: counts (batch norm's statistics apart),
shapes, copied weights (the repeated input, the sums activated again, the output transition)."""

from __future__ import annotations

import pytest

from archgen.config import load_spec
from archgen.errors import PlanError
from archgen.planner import make_plan
from tests.peers.common import PEERS, compare_outputs, copy_weights, keras_counts, plan_of, randomize, torch_counts
from tests.peers.keras_peers import plan_counts

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
from monai.networks.nets import VNet  # noqa: E402

COUNTS = (45_597_898, 5_316)  # trainable; batch norm's running means and variances


def peer(spatial_dims: int = 3):
    return VNet(spatial_dims=spatial_dims, in_channels=1, out_channels=2).eval()


def pairs(net) -> list:
    def convs(prefix, ops):
        return [pair for j, lu in enumerate(ops) for pair in
                ((f"{prefix}_conv{j + 1}", lu.conv_block.conv), (f"{prefix}_norm{j + 1}", lu.conv_block.adn.N))]

    out = [("enc1_conv1", net.in_tr.conv_block.conv), ("enc1_norm1", net.in_tr.conv_block.adn.N)]
    downs = (net.down_tr32, net.down_tr64, net.down_tr128, net.down_tr256)
    for level, (down, prefix) in enumerate(zip(downs, ("enc2", "enc3", "enc4", "bottleneck")), start=1):
        out += [(f"enc{level}_down", down.down_conv), (f"enc{level}_down_norm", down.bn1), *convs(prefix, down.ops)]
    for level, up in zip((4, 3, 2, 1), (net.up_tr256, net.up_tr128, net.up_tr64, net.up_tr32)):
        out += [(f"dec{level}_up", up.up_conv), (f"dec{level}_up_norm", up.bn1), *convs(f"dec{level}", up.ops)]
    return out + [("logits_pre_conv", net.out_tr.conv_block.conv), ("logits_pre_norm", net.out_tr.conv_block.adn.N),
                  ("logits", net.out_tr.conv2)]


def randomize_statistics(net, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


@pytest.mark.parametrize("size", [[64, 64, 64], [32, 32, 32], [16, 48, 32]])
def test_counts_and_shapes(size):
    net, plan = peer(), plan_of("monai_vnet_3d", [*size, 1])
    assert torch_counts(net) == plan_counts(plan) == COUNTS
    with torch.no_grad():
        y = net(torch.zeros(1, 1, *size))
    assert plan.output_shapes["logits"] == (*y.shape[2:], y.shape[1]) == (*size, 2)


def test_the_same_file_gives_the_2d_network():
    net, plan = peer(2), make_plan(load_spec(PEERS / "monai_vnet_3d.yaml", ["input.shape=[64,48,1]"]))
    assert torch_counts(net) == plan_counts(plan)
    with torch.no_grad():
        y = net(torch.zeros(1, 1, 64, 48))
    assert plan.output_shapes["logits"] == (*y.shape[2:], y.shape[1]) == (64, 48, 2)


def test_weights_copied_give_the_same_outputs_2d():
    from archgen.emit import emit_model

    net = peer(2)
    randomize(net)
    with torch.no_grad():
        randomize_statistics(net)
    model = emit_model(make_plan(load_spec(PEERS / "monai_vnet_3d.yaml", ["input.shape=[32,48,1]"])))
    assert keras_counts(model) == torch_counts(net)
    copy_weights(model, pairs(net))
    compare_outputs(model, net, (1, 32, 48), lambda n, x: [n(x)])


def test_weights_copied_give_the_same_outputs_3d():
    from archgen.emit import emit_model

    net = peer()
    randomize(net)
    with torch.no_grad():
        randomize_statistics(net)
    model = emit_model(plan_of("monai_vnet_3d", [16, 32, 32, 1]))
    assert keras_counts(model) == COUNTS
    copy_weights(model, pairs(net))
    compare_outputs(model, net, (1, 16, 32, 32), lambda n, x: [n(x)])


def test_an_input_whose_channels_do_not_divide_16_cannot_be_repeated():
    with pytest.raises(PlanError) as info:
        plan_of("monai_vnet_3d", [32, 32, 32, 3])
    assert info.value.path == "encoder.block.shortcut" and "16 channels from 3" in info.value.render()


def test_a_stage_add_at_needs_a_residual_block():
    import yaml

    from archgen.config import validate

    data = yaml.safe_load((PEERS / "monai_vnet_3d.yaml").read_text())
    data["encoder"]["block"] = {"type": "conv", "norm": "batch", "activation": "elu"}
    with pytest.raises(PlanError) as info:
        make_plan(validate(data))
    assert info.value.path == "encoder.stages[0].add_at" and "residual" in info.value.render()


def test_bias_true_gives_the_encoder_and_the_output_transition_biases():
    """``VNet(bias=True)``: biases on the encoder's convs, the strided convs and the output transition's
    5x5 conv; MONAI's up transitions build their convs without (their ``bias`` is not passed on)."""
    import yaml

    from archgen.config import validate
    from archgen.emit import emit_model

    net = VNet(spatial_dims=2, in_channels=4, out_channels=2, bias=True).eval()
    data = yaml.safe_load((PEERS / "monai_vnet_3d.yaml").read_text())
    data["input"]["shape"] = [32, 48, 4]
    data["encoder"]["block"]["bias"] = data["encoder"]["downsample"]["bias"] = True
    data["decoder"]["block"] = {**data["encoder"]["block"], "bias": False}
    data["heads"][0]["pre_conv_bias"] = True
    plan = make_plan(validate(data))
    assert plan_counts(plan) == torch_counts(net)
    randomize(net)
    with torch.no_grad():
        randomize_statistics(net)
    model = emit_model(plan)
    copy_weights(model, pairs(net))
    compare_outputs(model, net, (4, 32, 48), lambda n, x: [n(x)])
    del data["heads"][0]["pre_conv_bias"]  # as the decoder block's convs: none
    assert plan_counts(make_plan(validate(data)))[0] == torch_counts(net)[0] - 2


def prelu_pairs(net) -> list:
    """archgen's activation layers and MONAI's PReLUs (one slope per channel, ``num_parameters=nchan``)."""
    out = [("enc1_act", net.in_tr.act_function)]
    downs = (net.down_tr32, net.down_tr64, net.down_tr128, net.down_tr256)
    ups = (net.up_tr256, net.up_tr128, net.up_tr64, net.up_tr32)
    for level, (down, prefix) in enumerate(zip(downs, ("enc2", "enc3", "enc4", "bottleneck")), start=1):
        out += [(f"enc{level}_down_act", down.act_function1), (f"{prefix}_act", down.act_function2)]
        out += [(f"{prefix}_act{j + 1}", lu.act_function) for j, lu in enumerate(down.ops)]
    for level, up in zip((4, 3, 2, 1), ups):
        out += [(f"dec{level}_up_act", up.act_function1), (f"dec{level}_act", up.act_function2)]
        out += [(f"dec{level}_act{j + 1}", lu.act_function) for j, lu in enumerate(up.ops)]
    return out + [("logits_pre_act", net.out_tr.act_function1)]


def test_prelu_with_a_slope_per_channel_gives_the_same_outputs():
    """MONAI's ``VNet(act="prelu")``: every PReLU learns a slope per channel (``prelu_channel``)."""
    from archgen.emit import emit_model

    net = VNet(spatial_dims=2, in_channels=1, out_channels=2, act="prelu").eval()
    randomize(net)
    with torch.no_grad():
        randomize_statistics(net)
        for m in net.modules():
            if isinstance(m, torch.nn.PReLU):
                m.weight.uniform_(-0.5, 0.5)
    overrides = ["input.shape=[32,48,1]"] + [f"{key}.activation=prelu_channel" for key in
                                             ("encoder.block", "encoder.downsample", "decoder.upsample")]
    model = emit_model(make_plan(load_spec(PEERS / "monai_vnet_3d.yaml", overrides)))
    assert keras_counts(model) == torch_counts(net)
    assert len(prelu_pairs(net)) == sum(isinstance(m, torch.nn.PReLU) for m in net.modules()) == 32
    copy_weights(model, pairs(net) + prelu_pairs(net))
    compare_outputs(model, net, (1, 32, 48), lambda n, x: [n(x)])
