"""keras-unet-collection's unet_3plus_2d with its defaults (no batch norm, but the fusion convs
always with it) against conf/peers/kuc_unet_3plus_2d_defaults.yaml: counts, shapes, copied weights."""

from __future__ import annotations

import pytest

from archgen.config import validate
from archgen.errors import SpecError
from archgen.planner import make_plan
from tests.emit.test_emit_plan_agree import assert_model_matches_plan
from tests.peers.common import plan_of
from tests.peers.keras_peers import keras_counts, plan_counts

kuc = pytest.importorskip("keras_unet_collection.models", reason="pip install keras-unet-collection pillow")
from archgen.emit import emit_model  # noqa: E402
from tests.peers.test_kuc_topologies import same_outputs  # noqa: E402

FILTERS = [64, 128, 256, 512, 1024]
NAME = "kuc_unet_3plus_2d_defaults"


def peer(size: list[int], filters=FILTERS):
    return kuc.unet_3plus_2d((*size, 3), n_labels=2, filter_num_down=filters)  # every other argument: default


@pytest.mark.parametrize("size", [[128, 128], [64, 64], [96, 64]])
def test_counts_and_shapes(size, capsys):
    plan, theirs = plan_of(NAME, [*size, 3]), peer(size)
    assert plan_counts(plan) == keras_counts(theirs) == (26_077_890, 2_560)  # batch norm in the 4 fusion convs
    assert plan.output_shapes["logits"] == tuple(theirs.output_shape[1:]) == (*size, 2)


def test_only_the_fusion_convs_are_normalised():
    model = emit_model(plan := plan_of(NAME, [64, 64, 3]))
    assert_model_matches_plan(model, plan)
    norms = sorted(layer.name for layer in model.layers if "norm" in type(layer).__name__.lower())
    assert norms == [f"dec{level}_norm1" for level in (1, 2, 3, 4)]
    assert not model.get_layer("dec1_conv1").use_bias and model.get_layer("dec2_from_enc2_conv1").use_bias


def test_weights_copied_give_the_same_outputs(capsys):
    theirs = peer([64, 64], [8, 16, 32, 64, 128])
    ours = emit_model(make_plan(validate({**_config(), "input": {"shape": [64, 64, 3]},
                                          "encoder": {**_config()["encoder"], "filters": 8},
                                          "decoder": {**_config()["decoder"], "cat_channels": 8,
                                                      "stages": [{"filters": 40, "convs": 1}] * 4}})))
    same_outputs(ours, theirs)


def test_fusion_norm_belongs_to_unet3plus():
    data = _config()
    data["decoder"] = {**data["decoder"], "type": "unet++", "skips": "all"}
    with pytest.raises(SpecError) as info:
        validate(data)
    assert info.value.path == "decoder.fusion_norm" and "unet3+" in info.value.render()


def _config() -> dict:
    import yaml

    from tests.peers.common import PEERS

    return yaml.safe_load((PEERS / f"{NAME}.yaml").read_text())
