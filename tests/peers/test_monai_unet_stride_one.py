"""MONAI's UNet with strides (2, 2, 1) against conf/peers/monai_unet_2d_stride_one.yaml: a level
that keeps the size, whose transposed conv has stride 1 and output_padding 0 (one value per level);
and with an anisotropic stride (2, (2, 1), 2), whose transposed conv has output_padding (1, 0)."""

from __future__ import annotations

import pytest
import yaml

from archgen.config import validate
from archgen.errors import PlanError
from archgen.planner import make_plan
from tests.peers.common import PEERS, compare_outputs, copy_weights, keras_counts, randomize, torch_counts

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
from monai.networks.nets import UNet  # noqa: E402

from tests.peers.test_monai_unet import pairs  # noqa: E402

PARAMS = 385_221


def monai_unet():
    return UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(16, 32, 64, 128), strides=(2, 2, 1),
                num_res_units=2).eval()


def config(size: list[int], output_padding=None) -> dict:
    data = yaml.safe_load((PEERS / "monai_unet_2d_stride_one.yaml").read_text())
    data["input"]["shape"] = [*size, 1]
    if output_padding is not None:
        data["decoder"]["upsample"]["output_padding"] = output_padding
    return data


@pytest.mark.parametrize("size", [[64, 64], [32, 96], [12, 20]])
def test_counts_and_shapes(size):
    net = monai_unet()
    plan = make_plan(validate(config(size)))
    assert torch_counts(net) == (PARAMS, 0)
    assert plan.total_params == PARAMS
    with torch.no_grad():
        y = net(torch.zeros(1, 1, *size))
    assert plan.output_shapes["logits"] == (*y.shape[2:], y.shape[1]) == (*size, 2)


def test_weights_copied_give_the_same_outputs():
    from archgen.emit import emit_model

    net = monai_unet()
    randomize(net)
    with torch.no_grad():
        for i, module in enumerate(m for m in net.modules() if isinstance(m, torch.nn.PReLU)):
            module.weight.fill_(0.05 + 0.02 * i)
    model = emit_model(make_plan(validate(config([32, 48]))))
    assert keras_counts(model) == (PARAMS, 0)
    assert model.get_layer("dec3_up").strides == (1, 1)
    copy_weights(model, pairs(net, 2))
    compare_outputs(model, net, (1, 32, 48), lambda n, x: [n(x)])


@pytest.mark.parametrize("output_padding, path, words", [
    (1, "decoder.upsample.output_padding", "level 3 has stride 1"),
    ([1, 1, 1], "decoder.upsample.output_padding[2]", "at most 0 at level 3"),
    ([1, 1], "decoder.upsample.output_padding", "2 values for 3 decoder levels"),
    ([1, 2, 0], "decoder.upsample.output_padding[1]", "at most 1"),
])
def test_an_output_padding_pytorch_would_refuse_is_refused_at_its_level(output_padding, path, words):
    with pytest.raises(PlanError) as info:
        make_plan(validate(config([64, 64], output_padding)))
    assert info.value.path == path and words in info.value.render()


ANISOTROPIC_PARAMS = 150_633


def monai_anisotropic():
    return UNet(spatial_dims=2, in_channels=3, out_channels=4, channels=(8, 16, 32, 64), strides=(2, (2, 1), 2),
                num_res_units=3).eval()


def anisotropic_config(size: list[int], output_padding=(1, [1, 0], 1)) -> dict:
    data = config(size, list(output_padding))
    data["input"]["shape"] = [*size, 3]
    data["encoder"]["stages"] = [{"filters": 8, "convs": 3, "stride": 2}, {"filters": 16, "convs": 3, "stride": [2, 1]},
                                 {"filters": 32, "convs": 3, "stride": 2}, {"filters": 64, "convs": 3, "stride": 1}]
    data["decoder"]["stages"] = [{"filters": 4, "convs": 1}, {"filters": 8, "convs": 1}, {"filters": 16, "convs": 1}]
    data["heads"][0]["filters"] = 4
    return data


@pytest.mark.parametrize("size", [[64, 64], [40, 24], [24, 36]])
def test_an_anisotropic_stride_takes_output_padding_per_axis(size):
    net = monai_anisotropic()
    plan = make_plan(validate(anisotropic_config(size)))
    assert torch_counts(net) == (ANISOTROPIC_PARAMS, 0) and plan.total_params == ANISOTROPIC_PARAMS
    with torch.no_grad():
        y = net(torch.zeros(1, 3, *size))
    assert plan.output_shapes["logits"] == (*y.shape[2:], y.shape[1]) == (*size, 4)


def test_an_anisotropic_stride_gives_the_same_outputs():
    from archgen.emit import emit_model

    net = monai_anisotropic()
    randomize(net)
    model = emit_model(make_plan(validate(anisotropic_config([40, 24]))))
    assert keras_counts(model) == (ANISOTROPIC_PARAMS, 0)
    assert model.get_layer("dec2_up").strides == (2, 1)
    copy_weights(model, pairs(net, 3))
    compare_outputs(model, net, (3, 40, 24), lambda n, x: [n(x)])


@pytest.mark.parametrize("output_padding, path, words", [
    ((1, 1, 1), "decoder.upsample.output_padding[1]", "has stride [2, 1], and output_padding must be below the "
                                                      "stride on each axis"),
    ((1, [1, 1], 1), "decoder.upsample.output_padding[1]", "at most [1, 0] at level 2"),
    ((1, [1, 0, 0], 1), "decoder.upsample.output_padding[1]", "has 3 entries; the input has 2 spatial axes"),
])
def test_an_anisotropic_output_padding_pytorch_would_refuse_is_refused(output_padding, path, words):
    with pytest.raises(PlanError) as info:
        make_plan(validate(anisotropic_config([64, 64], output_padding)))
    assert info.value.path == path and words in info.value.render()
