"""MONAI's BasicUNetPlusPlus against conf/peers/monai_basicunetplusplus_2d.yaml: counts (MONAI's
three heads that only deep supervision uses included), shapes, copied weights, every head."""

from __future__ import annotations

import pytest
import yaml

from archgen.config import validate
from archgen.errors import PlanError
from archgen.planner import make_plan
from tests.peers.common import PEERS, compare_outputs, copy_weights, keras_counts, randomize, torch_counts

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
from monai.networks.nets import BasicUNetPlusPlus  # noqa: E402

PARAMS = 2_410_312
UNUSED_HEADS = 3 * (32 * 2 + 2)  # final_conv_0_1..0_3: 1x1 convs 32 -> 2, built also without deep supervision


def peer(deep: bool = False):
    return BasicUNetPlusPlus(spatial_dims=2, in_channels=1, out_channels=2, deep_supervision=deep).eval()


def plan(size: list[int], deep: bool = False):
    data = yaml.safe_load((PEERS / "monai_basicunetplusplus_2d.yaml").read_text())
    data["input"]["shape"] = [*size, 1]
    data["decoder"]["deep_supervision"] = deep
    return make_plan(validate(data))


def pairs(net, deep: bool):
    def two(prefix, block):
        convs = (block.conv_0, block.conv_1)
        return [(f"{prefix}_conv{i + 1}", c.conv) for i, c in enumerate(convs)] + \
               [(f"{prefix}_norm{i + 1}", c.adn.N) for i, c in enumerate(convs)]

    out = two("enc1", net.conv_0_0)
    for i in range(1, 4):
        out += two(f"enc{i + 1}", getattr(net, f"conv_{i}_0").convs)
    out += two("bottleneck", net.conv_4_0.convs)
    for j in range(1, 5):
        for i in range(5 - j):
            up = getattr(net, f"upcat_{i}_{j}")
            out += [(f"x{i}_{j}_up", up.upsample.deconv), *two(f"x{i}_{j}", up.convs)]
    out.append(("logits", net.final_conv_0_4))
    if deep:
        out += [(f"logits_x0_{j}", getattr(net, f"final_conv_0_{j}")) for j in (1, 2, 3)]
    return out


@pytest.mark.parametrize("size", [[96, 96], [64, 128], [32, 48]])
def test_counts_and_shapes(size):
    net, ours = peer(), plan(size)
    assert torch_counts(net) == (PARAMS, 0)
    assert ours.total_params == PARAMS - UNUSED_HEADS
    with torch.no_grad():
        (y,) = net(torch.zeros(1, 1, *size))
    assert ours.output_shapes == {"logits": (*y.shape[2:], y.shape[1])} == {"logits": (*size, 2)}


def test_with_deep_supervision_every_parameter_is_used_and_counted():
    net, ours = peer(deep=True), plan([64, 64], deep=True)
    assert ours.total_params == torch_counts(net)[0] == PARAMS
    with torch.no_grad():
        ys = net(torch.zeros(1, 1, 64, 64))
    assert list(ours.output_shapes.values()) == [(64, 64, 2)] * len(ys) == [(64, 64, 2)] * 4


@pytest.mark.parametrize("deep", [False, True])
def test_weights_copied_give_the_same_outputs(deep):
    from archgen.emit import emit_model

    net = peer(deep)
    randomize(net)
    model = emit_model(plan([32, 48], deep))
    assert keras_counts(model)[0] == PARAMS - (0 if deep else UNUSED_HEADS)
    copy_weights(model, pairs(net, deep))
    # MONAI lists x0_1..x0_4; archgen the final head (x0_4) first, then x0_1..x0_3.
    order = (lambda n, x: [(ys := n(x))[3], *ys[:3]]) if deep else (lambda n, x: n(x))
    compare_outputs(model, net, (1, 32, 48), order)


def test_a_size_that_needs_padding_is_refused_with_the_sizes_that_work():
    with pytest.raises(PlanError) as info:
        plan([40, 40])
    assert info.value.path == "input.shape" and "H = 16k" in info.value.render()
