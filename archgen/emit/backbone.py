"""The keras.applications backbone and its taps, for ``keras_model.py``'s registry.

The application is built without its top and wrapped as one nested functional model named
``backbone`` whose outputs are the taps the table names (a layer's output, or the input of the
layer that reads an automatically named one). Each tap then passes through an ``Identity`` layer
named as in the plan (``backbone_s4``), so the outer model's layers are the plan's one to one.
Both are built-in layers: the saved model loads with ``safe_mode=True``.
"""

from __future__ import annotations

import os
from typing import Any

from archgen.backend import import_keras
from archgen.errors import EmitError
from archgen.model_file import check_weights_file, weights_loading
from archgen.planner.ir import LayerPlan

keras = import_keras()


def _tap_tensor(base, layer: str, side: str):
    if not layer:
        return base.outputs[0]
    found = base.get_layer(layer)
    return found.output if side == "output" else found.input


def _weights(a: dict) -> str | None:
    weights = a["weights"]
    if weights in (None, "imagenet"):
        return weights
    if not os.path.lexists(weights):
        raise EmitError(f"no such weights file (relative paths start at {os.getcwd()})", path="encoder.weights",
                        value=weights)
    check_weights_file(weights)
    return weights


def emit_backbone(layer: LayerPlan, xs: list[Any], ndim: int) -> list[Any]:
    """The nested ``backbone`` model applied to the input; returns one tensor per tap."""
    a = layer.attrs
    shape = tuple(xs[0].shape[1:])
    build = getattr(keras.applications, a["constructor"])
    try:
        with weights_loading("encoder.weights", str(a["weights"])):
            base = build(include_top=False, weights=_weights(a), input_shape=shape)
    except (ValueError, OSError) as exc:
        raise EmitError(f"keras.applications.{a['constructor']} refused it: {' '.join(str(exc).split())[:400]}",
                        path="encoder.weights" if a["weights"] else "encoder", value=a["weights"]) from None
    taps = [_tap_tensor(base, name, side) for name, side in a["taps"]]
    body = keras.Model(base.inputs, taps, name=layer.name)
    _freeze(base, taps, a["trainable_stages"])
    return body(xs[0])


def _freeze(base, taps: list[Any], trainable_stages: int) -> None:
    """Freeze all but the last ``trainable_stages`` stages. A stage is the layers after the previous
    tap's layer, up to and including the layer that makes its own tap, in the application's layer
    order (``base.layers``, which lists every layer after the layers it reads)."""
    if trainable_stages >= len(taps):
        return
    makers = [next(i for i, layer in enumerate(base.layers) if layer.output is tap) for tap in taps]
    first_trainable = makers[len(taps) - trainable_stages - 1] + 1
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= first_trainable


def emit_tap(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    return keras.layers.Identity(name=layer.name)(xs[0][layer.attrs["index"]])
