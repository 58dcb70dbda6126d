"""MONAI's UNet with strides (2, 2, 1) against conf/peers/monai_unet_2d_stride_one.yaml: a level
that keeps the size, whose transposed conv has stride 1 and output_padding 0 (one value per level)."""

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
