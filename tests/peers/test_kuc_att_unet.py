"""keras-unet-collection's att_unet_2d with each of its attention gates (``attention="add"`` or
``"multiply"``, any ``atten_activation``) against archgen's attention merge (``combine``,
``activation``): counts, and outputs with copied weights."""

from __future__ import annotations

import contextlib
import io

import pytest

from tests.peers.keras_peers import keras_counts, randomize, same_outputs

kuc = pytest.importorskip("keras_unet_collection.models")


def config(combine: str, activation: str) -> dict:
    """att_unet_2d((64, 64, 3), [8, 16, 32], 2), its other defaults: ReLU blocks without batch norm,
    max pooling, bilinear up-sampling, the gate's 1x1 convs with biases, softmax."""
    return {"input": {"shape": [64, 64, 3]}, "padding": "same",
            "encoder": {"block": {"type": "conv", "activation": "relu"}, "downsample": {"type": "maxpool"},
                        "stages": [{"filters": 8}, {"filters": 16, "stride": 2}, {"filters": 32, "stride": 2}]},
            "decoder": {"align": "none", "upsample": {"type": "interpolate", "interpolation": "bilinear"},
                        "merge": {"type": "attention", "skip_bias": True, "order": "up_skip", "combine": combine,
                                  "activation": activation},
                        "stages": [{"filters": 8}, {"filters": 16}]},
            "heads": [{"name": "logits", "filters": 2, "activation": "softmax"}]}


@pytest.mark.parametrize("attention, activation, ours", [("add", "ReLU", "relu"), ("multiply", "ReLU", "relu"),
                                                         ("multiply", "ELU", "elu"), ("add", "GELU", "gelu")])
def test_attention_gates_give_the_same_outputs(attention, activation, ours):
    from archgen.config import validate
    from archgen.emit import emit_model
    from archgen.planner import make_plan

    model = emit_model(make_plan(validate(config(attention, ours))))
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its settings
        peer = kuc.att_unet_2d((64, 64, 3), [8, 16, 32], 2, attention=attention, atten_activation=activation)
    assert keras_counts(model) == keras_counts(peer)
    randomize(peer)
    mine, theirs = [x for x in model.layers if x.weights], [x for x in peer.layers if x.weights]
    assert [[tuple(w.shape) for w in x.weights] for x in mine] == [[tuple(w.shape) for w in x.weights] for x in theirs]
    for x, y in zip(mine, theirs):  # the same layers in the same order: encoder, each gate, each stage, head
        x.set_weights(y.get_weights())
    joined = "multiply" if attention == "multiply" else "add"
    assert sum(x.name.endswith(f"_attn_{joined}") for x in model.layers) == 2
    same_outputs(model, peer, (64, 64, 3))
