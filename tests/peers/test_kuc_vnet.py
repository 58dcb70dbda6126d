"""keras-unet-collection's vnet_2d against conf/peers/kuc_vnet_2d.yaml: counts, shapes, copied
weights (Keras to Keras); its default up-sampling, which does not build, is shown not to."""

from __future__ import annotations

import pytest
import yaml

from archgen.config import validate
from archgen.errors import PlanError
from archgen.planner import make_plan
from tests.peers.common import PEERS, plan_of
from tests.peers.keras_peers import keras_counts, plan_counts, randomize, same_outputs

kuc = pytest.importorskip("keras_unet_collection.models", reason="pip install keras-unet-collection pillow")
from archgen.emit import emit_model  # noqa: E402

FILTERS = [16, 32, 64, 128, 256]


def peer(size: list[int], **call):
    return kuc.vnet_2d((*size, 1), filter_num=FILTERS, n_labels=2, **{"unpool": False, **call})


@pytest.mark.parametrize("size", [[128, 128], [64, 64], [96, 32]])
def test_counts_and_shapes(size):
    plan, theirs = plan_of("kuc_vnet_2d", [*size, 1]), peer(size)
    assert plan_counts(plan) == keras_counts(theirs) == (3_899_058, 0)
    assert plan.output_shapes["logits"] == tuple(theirs.output_shape[1:]) == (*size, 2)


def test_its_default_up_sampling_does_not_build():
    with pytest.raises(ValueError, match="incompatible shapes"):
        peer([64, 64], unpool=True)


def test_weights_copied_give_the_same_outputs():
    theirs, ours = peer([64, 48]), emit_model(plan_of("kuc_vnet_2d", [64, 48, 1]))
    randomize(theirs)
    weighted = lambda model: [layer for layer in model.layers if layer.weights]  # noqa: E731
    for mine, their in zip(weighted(ours), weighted(theirs), strict=True):  # both build in the same order
        assert [w.shape for w in mine.weights] == [w.shape for w in their.weights], (mine.name, their.name)
        mine.set_weights(their.get_weights())
    same_outputs(ours, theirs, (64, 48, 1))


def test_the_sums_read_the_first_conv_and_the_up_sampling():
    layers = {layer.name: layer for layer in plan_of("kuc_vnet_2d").layers}
    assert layers["enc2_residual"].inputs == ("enc2_conv3", "enc2_conv1")
    assert layers["dec4_residual"].inputs == ("dec4_conv3", "dec4_up")


def _config() -> dict:
    return yaml.safe_load((PEERS / "kuc_vnet_2d.yaml").read_text())


def test_shortcut_from_is_refused_where_it_cannot_be():
    data = _config()
    data["encoder"]["stages"][0]["convs"] = 1
    with pytest.raises(PlanError) as info:
        make_plan(validate(data))
    assert info.value.path == "encoder.block.shortcut_from" and "give it 2 or more" in info.value.render()
    data = _config()
    data["encoder"]["block"]["shortcut_from"] = "upsampled"
    with pytest.raises(PlanError) as info:
        make_plan(validate(data))
    assert info.value.path == "encoder.block.shortcut_from" and "no up-sampled feature" in info.value.render()
