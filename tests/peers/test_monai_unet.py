"""MONAI's UNet against conf/peers/monai_unet_2d.yaml (residual units) and the same file turned into
the network without residual units: counts, shapes, copied weights (PReLU slopes, transposed-conv
kernels with PyTorch's padding and output_padding)."""

from __future__ import annotations

import copy

import pytest
import yaml

from archgen.errors import PlanError
from archgen.planner import make_plan
from archgen.config import validate
from tests.peers.common import PEERS, compare_outputs, copy_weights, keras_counts, randomize, torch_counts

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
from monai.networks.layers.simplelayers import SkipConnection  # noqa: E402
from monai.networks.nets import UNet  # noqa: E402

CHANNELS = (16, 32, 64, 128, 256)


def monai_unet(num_res_units: int, spatial_dims: int = 2):
    return UNet(spatial_dims=spatial_dims, in_channels=1, out_channels=2, channels=CHANNELS, strides=(2, 2, 2, 2),
                num_res_units=num_res_units).eval()


def config(num_res_units: int, size: list[int]) -> dict:
    """The peer file; without residual units, its blocks become MONAI's single Convolution: one conv
    per encoder stage, none in the decoder (the up-sampling alone, plain at the top)."""
    data = yaml.safe_load((PEERS / "monai_unet_2d.yaml").read_text())
    data["input"]["shape"] = [*size, 1]
    if num_res_units == 0:
        data = copy.deepcopy(data)
        block = data["encoder"]["block"]
        for key in ("shortcut_kernel_size", "shortcut_norm", "add_at"):
            del block[key]
        block["type"] = "conv"
        for stage in data["encoder"]["stages"]:
            stage["convs"] = 1
        for stage in data["decoder"]["stages"]:
            stage["convs"] = 0
    return data


def plan_for(num_res_units: int, size: list[int]):
    return make_plan(validate(config(num_res_units, size)))


def levels(net):
    """MONAI's recursion unrolled: (down layers, level 1 first; up layers, level 1 first; bottom)."""
    block, downs, ups = net.model, [], []
    while isinstance(block, torch.nn.Sequential) and isinstance(block[1], SkipConnection):
        downs.append(block[0])
        ups.append(block[2])
        block = block[1].submodule
    return downs, ups, block


def convolution_pairs(name: str, act: str, conv) -> list:
    """A MONAI Convolution: its conv, and its PReLU where it has one (conv_only has none)."""
    out = [(name, conv.conv)]
    if hasattr(conv, "adn"):
        out.append((act, conv.adn.A))
    return out


def unit_pairs(prefix: str, unit) -> list:
    """A ResidualUnit: each subunit's conv and PReLU, and the shortcut conv where it has one."""
    out = []
    for i, sub in enumerate(unit.conv):
        out += convolution_pairs(f"{prefix}_conv{i + 1}", f"{prefix}_act{i + 1}", sub)
    if isinstance(unit.residual, torch.nn.Conv2d):
        out.append((f"{prefix}_proj", unit.residual))
    return out


def pairs(net, num_res_units: int) -> list:
    downs, ups, bottom = levels(net)
    out = []
    if num_res_units:
        for level, down in enumerate(downs, 1):
            out += unit_pairs(f"enc{level}", down)
        out += unit_pairs("bottleneck", bottom)
        for level, up in enumerate(ups, 1):
            out += convolution_pairs(f"dec{level}_up", f"dec{level}_up_act", up[0]) + unit_pairs(f"dec{level}", up[1])
        return out
    for level, down in enumerate(downs, 1):
        out += convolution_pairs(f"enc{level}_conv1", f"enc{level}_act1", down)
    out += convolution_pairs("bottleneck_conv1", "bottleneck_act1", bottom)
    for level, up in enumerate(ups, 1):
        out += convolution_pairs(f"dec{level}_up", f"dec{level}_up_act", up)
    return out


@pytest.mark.parametrize("num_res_units, params", [(2, 1_625_161), (0, 660_282)])
@pytest.mark.parametrize("size", [[96, 96], [64, 128], [16, 48]])
def test_unet_2d_counts_and_shapes(num_res_units, params, size):
    net = monai_unet(num_res_units)
    plan = plan_for(num_res_units, size)
    assert torch_counts(net) == (params, 0)  # instance norm without affine: no weights, no statistics
    assert plan.total_params == params
    with torch.no_grad():
        y = net(torch.zeros(1, 1, *size))
    assert plan.output_shapes["logits"] == (*y.shape[2:], y.shape[1]) == (*size, 2)


@pytest.mark.parametrize("num_res_units", [2, 0])
def test_the_same_file_gives_the_3d_network(num_res_units):
    net = monai_unet(num_res_units, spatial_dims=3)
    plan = plan_for(num_res_units, [16, 32, 48])
    assert plan.total_params == torch_counts(net)[0]
    with torch.no_grad():
        y = net(torch.zeros(1, 1, 16, 32, 48))
    assert plan.output_shapes["logits"] == (*y.shape[2:], y.shape[1]) == (16, 32, 48, 2)


@pytest.mark.parametrize("num_res_units", [2, 0])
def test_unet_2d_weights_copied_give_the_same_outputs(num_res_units):
    from archgen.emit import emit_model

    net = monai_unet(num_res_units)
    randomize(net)
    with torch.no_grad():  # PReLU slopes apart from each other and from PyTorch's 0.25
        for i, module in enumerate(m for m in net.modules() if isinstance(m, torch.nn.PReLU)):
            module.weight.fill_(0.05 + 0.02 * i)
    model = emit_model(plan_for(num_res_units, [64, 48]))
    assert keras_counts(model) == torch_counts(net)
    copy_weights(model, pairs(net, num_res_units))
    compare_outputs(model, net, (1, 64, 48), lambda n, x: [n(x)])


def test_unet_2d_sizes_that_do_not_tile_are_refused_as_monai_fails_on_them():
    with pytest.raises(RuntimeError):
        with torch.no_grad():
            monai_unet(2)(torch.zeros(1, 1, 40, 40))
    with pytest.raises(PlanError) as info:
        plan_for(2, [40, 40])
    assert info.value.path == "input.shape" and "H = 16k" in info.value.render()
