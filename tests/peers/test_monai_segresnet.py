"""MONAI's SegResNet (2D, 3D) and SegResNetDS against conf/peers/monai_segresnet*.yaml: trainable
parameters, output shapes, copied weights."""

from __future__ import annotations

import copy

import pytest
import yaml

from archgen.planner import make_plan
from archgen.config import validate
from tests.peers.common import PEERS, compare_outputs, copy_weights, keras_counts, plan_of, randomize, torch_counts
from tests.peers.keras_peers import plan_counts

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
from monai.networks.nets import SegResNet, SegResNetDS  # noqa: E402


def shapes_of(net, size) -> tuple[int, ...]:
    with torch.no_grad():
        y = net.eval()(torch.zeros(1, 1, *size))
    return (*y.shape[2:], y.shape[1])


def with_init_filters(name: str, init_filters: int, shape: list[int]) -> dict:
    """A conf/peers file with every stage's filters scaled to MONAI's ``init_filters``."""
    data = copy.deepcopy(yaml.safe_load((PEERS / f"{name}.yaml").read_text()))
    first = data["encoder"]["stages"][0]["filters"]
    for stage in data["encoder"]["stages"] + data["decoder"]["stages"]:
        stage["filters"] = stage["filters"] * init_filters // first
    data["input"]["shape"] = shape
    return data


@pytest.mark.parametrize("size", [[64, 64], [48, 80], [8, 16]])
def test_segresnet_2d_counts_and_shapes(size):
    net = SegResNet(spatial_dims=2, in_channels=1, out_channels=2)
    plan = plan_of("monai_segresnet_2d", [*size, 1])
    assert plan.total_params == torch_counts(net)[0] == 394_986
    assert plan.output_shapes["logits"] == shapes_of(net, size) == (*size, 2)


def test_segresnet_2d_init_filters_16_counts_as_monai():
    net = SegResNet(spatial_dims=2, in_channels=1, out_channels=2, init_filters=16)
    plan = make_plan(validate(with_init_filters("monai_segresnet_2d", 16, [64, 64, 1])))
    assert plan.total_params == torch_counts(net)[0] == 1_576_402


@pytest.mark.parametrize("size", [[32, 32, 32], [16, 24, 40]])
def test_segresnet_3d_counts_and_shapes(size):
    net = SegResNet(spatial_dims=3, in_channels=1, out_channels=2)
    plan = plan_of("monai_segresnet_3d", [*size, 1])
    assert plan.total_params == torch_counts(net)[0] == 1_176_186
    assert plan.output_shapes["logits"] == shapes_of(net, size) == (*size, 2)


@pytest.mark.parametrize("size", [[32, 32, 32], [16, 24, 40]])
def test_segresnetds_3d_counts_and_shapes(size):
    """Batch norm: trainable scale and shift, and moving statistics that MONAI keeps as buffers."""
    net = SegResNetDS()
    plan = plan_of("monai_segresnetds_3d", [*size, 1])
    assert plan_counts(plan) == torch_counts(net) == (19_914_146, 6_656)
    assert plan.output_shapes["logits"] == shapes_of(net, size) == (*size, 2)


# --- copied weights --------------------------------------------------------------------------------

def resblock_pairs(prefix: str, block) -> list:
    return [(f"{prefix}_norm1", block.norm1), (f"{prefix}_conv1", _conv(block.conv1)),
            (f"{prefix}_norm2", block.norm2), (f"{prefix}_conv2", _conv(block.conv2))]


def _conv(module):
    return getattr(module, "conv", module)  # MONAI's Convolution holds its nn.Conv as .conv


def stage_pairs(prefix: str, blocks) -> list:
    blocks = list(blocks)
    return [pair for j, block in enumerate(blocks)
            for pair in resblock_pairs(prefix if len(blocks) == 1 else f"{prefix}_block{j + 1}", block)]


def segresnet_pairs(net) -> list:
    n = len(net.down_layers)
    out = [("stem_conv1", _conv(net.convInit))]
    for i, layer in enumerate(net.down_layers):  # a strided conv into levels 2.., then the blocks
        if i > 0:
            out.append((f"enc{i}_down", _conv(layer[0])))
        out += stage_pairs("bottleneck" if i == n - 1 else f"enc{i + 1}", list(layer)[1:])
    for i, (up, blocks) in enumerate(zip(net.up_samples, net.up_layers)):  # deepest first
        level = n - 1 - i
        out += [(f"dec{level}_upconv", _conv(up[0]))] + stage_pairs(f"dec{level}", blocks)
    return out + [("logits_norm", net.conv_final[0]), ("logits", _conv(net.conv_final[2]))]


def segresnetds_pairs(net) -> list:
    levels = net.encoder.layers
    n = len(levels)
    out = [("stem_conv1", net.encoder.conv_init)]
    for i, level in enumerate(levels):
        out += stage_pairs("bottleneck" if i == n - 1 else f"enc{i + 1}", level["blocks"])
        if i < n - 1:
            out.append((f"enc{i + 1}_down", level["downsample"]))
    for i, level in enumerate(net.up_layers):
        lv = n - 1 - i
        out += [(f"dec{lv}_up", level["upsample"].deconv)] + stage_pairs(f"dec{lv}", level["blocks"])
    return out + [("logits", net.up_layers[-1]["head"])]


def test_segresnet_2d_weights_copied_give_the_same_outputs():
    from archgen.emit import emit_model

    net = SegResNet(spatial_dims=2, in_channels=1, out_channels=2).eval()
    randomize(net)
    model = emit_model(plan_of("monai_segresnet_2d", [64, 48, 1]))
    assert keras_counts(model) == torch_counts(net)
    copy_weights(model, segresnet_pairs(net))
    compare_outputs(model, net, (1, 64, 48), lambda n, x: [n(x)])


def test_segresnet_3d_weights_copied_give_the_same_outputs():
    """Trilinear up-sampling (archgen's LinearUpSampling layer) included."""
    from archgen.emit import emit_model

    net = SegResNet(spatial_dims=3, in_channels=1, out_channels=2).eval()
    randomize(net)
    model = emit_model(plan_of("monai_segresnet_3d", [16, 24, 16, 1]))
    assert keras_counts(model) == torch_counts(net)
    copy_weights(model, segresnet_pairs(net))
    compare_outputs(model, net, (1, 16, 24, 16), lambda n, x: [n(x)])


def test_segresnetds_weights_copied_give_the_same_outputs():
    """The 3D network with init_filters 8 (the structure of the defaults, a quarter of the width)."""
    from archgen.emit import emit_model

    net = SegResNetDS(init_filters=8).eval()
    randomize(net)
    with torch.no_grad():  # batch norm's running statistics, away from 0 and 1
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    model = emit_model(make_plan(validate(with_init_filters("monai_segresnetds_3d", 8, [16, 16, 24, 1]))))
    assert keras_counts(model) == torch_counts(net)
    copy_weights(model, segresnetds_pairs(net))
    compare_outputs(model, net, (1, 16, 16, 24), lambda n, x: [n(x)])


def anisotropic_config(shape: list[int]) -> dict:
    """SegResNetDS(init_filters=8, resolution=(1, 1, 4)): levels 1 and 2 stride [2, 2, 1] and take
    kernel [3, 3, 1] (their blocks, the conv that leaves them, the transposed conv into them)."""
    data = with_init_filters("monai_segresnetds_3d", 8, shape)
    flat = [3, 3, 1]
    data["encoder"]["stem"]["kernel_size"] = flat
    data["encoder"]["downsample"]["kernel_size"] = "level"
    for stage, kernel, stride in zip(data["encoder"]["stages"], [flat, flat, 3, 3], [1, [2, 2, 1], [2, 2, 1], 2]):
        stage.update(kernel_size=kernel, stride=stride)
    for stage, kernel in zip(data["decoder"]["stages"], [flat, flat, 3]):
        stage["kernel_size"] = kernel
    data["decoder"]["upsample"] = {"type": "transpose", "kernel_size": "level", "padding": "centered", "bias": False}
    return data


@pytest.mark.parametrize("size", [[32, 32, 8], [16, 48, 12]])
def test_anisotropic_segresnetds_weights_copied_give_the_same_outputs(size):
    """Kernels per axis and per level on the strided and transposed convs (``kernel_size: level``),
    padded as MONAI's UpSample pads a given kernel (``padding: centered``)."""
    from archgen.emit import emit_model

    net = SegResNetDS(init_filters=8, resolution=(1.0, 1.0, 4.0)).eval()
    randomize(net)
    plan = make_plan(validate(anisotropic_config([*size, 1])))
    assert plan_counts(plan) == torch_counts(net) == (1_190_618, 1_664)
    assert plan.layer("enc1_down").attrs["kernel"] == (3, 3, 1) and plan.layer("dec1_up").attrs["kernel"] == (3, 3, 1)
    model = emit_model(plan)
    copy_weights(model, segresnetds_pairs(net))
    compare_outputs(model, net, (1, *size), lambda n, x: [n(x)])


def deconv_config(shape: list[int]) -> dict:
    """SegResNet's ``upsample_mode="deconv"``: the 1x1 conv without bias, then a transposed conv of
    kernel 2 and stride 2 with bias that keeps the channels."""
    data = yaml.safe_load((PEERS / "monai_segresnet_2d.yaml").read_text())
    data["input"]["shape"] = shape
    data["decoder"]["upsample"] = {"type": "transpose", "conv_first": True, "bias": True}
    return data


@pytest.mark.parametrize("size", [[64, 64], [48, 80]])
def test_segresnet_deconv_counts_shapes_and_outputs(size):
    from archgen.emit import emit_model

    net = SegResNet(spatial_dims=2, in_channels=1, out_channels=2, upsample_mode="deconv").eval()
    plan = make_plan(validate(deconv_config([*size, 1])))
    assert plan_counts(plan) == torch_counts(net) and plan.output_shapes["logits"] == shapes_of(net, size)
    randomize(net)
    model = emit_model(plan)
    pairs = segresnet_pairs(net)
    n = len(net.down_layers)
    pairs += [(f"dec{n - 1 - i}_up", up[1].deconv) for i, up in enumerate(net.up_samples)]
    copy_weights(model, pairs)
    compare_outputs(model, net, (1, *size), lambda n, x: [n(x)])
