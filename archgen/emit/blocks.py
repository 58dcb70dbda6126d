"""Emitters of the layer kinds that squeeze-and-excitation and the transformer bottleneck add.

Built-in Keras layers throughout but two: ``PositionEmbedding`` holds a learned weight of the map's
size, which no built-in layer does without an index input; ``Bias`` adds a learned vector to every
position, the output bias of an attention whose query, key and value projections have none (Keras's
MultiHeadAttention has one ``use_bias`` for all four). They are registered with Keras as
``archgen>PositionEmbedding`` and ``archgen>Bias``, so a saved model loads with ``safe_mode=True``
once this module is imported (``import archgen.emit`` does it).
"""

from __future__ import annotations

from typing import Any

from archgen.backend import import_keras
from archgen.planner.ir import LayerPlan

keras = import_keras()
L = keras.layers


@keras.saving.register_keras_serializable(package="archgen")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector to every position of a map: one weight of shape (*spatial, channels),
    initialised as keras.layers.Embedding's (uniform in [-0.05, 0.05])."""

    def build(self, input_shape):
        self.embedding = self.add_weight(shape=tuple(input_shape[1:]), initializer="uniform", name="embedding")

    def call(self, inputs):
        return inputs + keras.ops.cast(self.embedding, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="archgen")
class Bias(keras.layers.Layer):
    """Adds a learned vector of the input's channels to every position, initialised to zeros."""

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="bias")

    def call(self, inputs):
        return inputs + keras.ops.cast(self.bias, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def emit_global_pool(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    return getattr(L, f"GlobalAveragePooling{ndim}D")(keepdims=True, name=layer.name)(xs[0])


def emit_scale(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    return L.Multiply(name=layer.name)(xs)  # the gate's size-1 axes broadcast


def emit_dense(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    return L.Dense(layer.attrs["units"], use_bias=layer.attrs.get("use_bias", True), name=layer.name)(xs[0])


def emit_attention(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    a = layer.attrs
    attention = L.MultiHeadAttention(a["heads"], a["key_dim"], attention_axes=tuple(range(1, ndim + 1)),
                                     use_bias=a.get("use_bias", True), name=layer.name)
    return attention(xs[0], xs[0])


def emit_bias(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    return Bias(name=layer.name)(xs[0])


def emit_position_embedding(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    return PositionEmbedding(name=layer.name)(xs[0])
