"""keras-unet-collection's ``transunet_2d`` (no backbone) written again in plain Keras 3.

The original (keras_unet_collection/_model_transunet_2d.py, version 0.1.13) no longer builds on
Keras 3: it reshapes a symbolic tensor with ``tf.reshape``. This module follows its structure layer
for layer, with the same layer names, so that conf/peers/kuc_transunet_2d.yaml can be checked against
it: parameter counts, shapes, and outputs with copied weights. Kept free of archgen on purpose.
"""

from __future__ import annotations

import keras
from keras import layers


class PatchEmbedding(layers.Layer):
    """Tokens -> Dense(embed_dim)(tokens) + Embedding(num_patch, embed_dim)(0..num_patch-1), as the
    original's ``patch_embedding``."""

    def __init__(self, num_patch: int, embed_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.num_patch = num_patch
        self.proj = layers.Dense(embed_dim, name="proj")
        self.pos_embed = layers.Embedding(num_patch, embed_dim, name="pos_embed")

    def build(self, input_shape):
        self.proj.build(input_shape)
        self.pos_embed.build((self.num_patch,))

    def call(self, tokens):
        return self.proj(tokens) + self.pos_embed(keras.ops.arange(self.num_patch))


def conv_stack(x, filters: int, convs: int, batch_norm: bool, name: str):
    """3x3 conv (bias only without batch norm), batch norm, ReLU; ``convs`` times (CONV_stack)."""
    for i in range(convs):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm, name=f"{name}_{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_{i}_bn")(x)
        x = layers.ReLU(name=f"{name}_{i}_activation")(x)
    return x


def vit_block(v, num_heads: int, key_dim: int, mlp: list[int], name: str):
    """Pre-norm attention with a residual addition, then a pre-norm MLP whose every Dense is
    followed by GELU (the last one too), with a residual addition (ViT_block, ViT_MLP)."""
    h = layers.LayerNormalization(name=f"{name}_layer_norm_1")(v)
    h = layers.MultiHeadAttention(num_heads=num_heads, key_dim=key_dim, name=f"{name}_atten")(h, h)
    v = layers.Add(name=f"{name}_skip_1")([h, v])
    h = layers.LayerNormalization(name=f"{name}_layer_norm_2")(v)
    for i, units in enumerate(mlp):
        h = layers.Dense(units, name=f"{name}_mlp_dense_{i}")(h)
        h = layers.Activation("gelu", name=f"{name}_mlp_activation_{i}")(h)
    return layers.Add(name=f"{name}_skip_2")([h, v])


def kuc_transunet_2d(input_size=(128, 128, 3), filter_num=(64, 128, 256, 512), n_labels=2, stack_num_down=2,
                     stack_num_up=2, embed_dim=768, num_mlp=3072, num_heads=12, num_transformer=12,
                     batch_norm=False, unpool="nearest", name="transunet") -> keras.Model:
    """ReLU convs, max pooling, Softmax output; ``unpool`` is nearest or bilinear up-sampling."""
    depth = len(filter_num)
    encode_size = input_size[0] // 2 ** (depth - 1)
    num_patch = encode_size**2
    inputs = keras.Input(input_size)
    x = conv_stack(inputs, filter_num[0], stack_num_down, batch_norm, f"{name}_down0")
    skips = [x]
    for i, f in enumerate(filter_num[1:]):
        x = layers.MaxPooling2D(2, name=f"{name}_down{i + 1}_encode_maxpool")(x)
        x = conv_stack(x, f, stack_num_down, batch_norm, f"{name}_down{i + 1}_conv")
        skips.append(x)
    x = layers.Conv2D(filter_num[-1], 1, use_bias=False, name=f"{name}_conv_trans_before")(skips.pop())
    x = layers.Reshape((num_patch, filter_num[-1]), name=f"{name}_patches")(x)  # 1x1 patches
    x = PatchEmbedding(num_patch, embed_dim, name=f"{name}_embedding")(x)
    for i in range(num_transformer):
        x = vit_block(x, num_heads, embed_dim, [num_mlp, embed_dim], f"{name}_ViT_{i}")
    x = layers.Reshape((encode_size, encode_size, embed_dim), name=f"{name}_unpatch")(x)
    x = layers.Conv2D(filter_num[-1], 1, use_bias=False, name=f"{name}_conv_trans_after")(x)
    for i, (f, skip) in enumerate(zip(filter_num[:-1][::-1], skips[::-1])):
        x = layers.UpSampling2D(2, interpolation=unpool, name=f"{name}_up{i}_decode_unpool")(x)
        x = conv_stack(x, f, 1, batch_norm, f"{name}_up{i}_conv_before_concat")
        x = layers.Concatenate(name=f"{name}_up{i}_concat")([x, skip])
        x = conv_stack(x, f, stack_num_up, batch_norm, f"{name}_up{i}_conv_after_concat")
    x = layers.Conv2D(n_labels, 1, name=f"{name}_output")(x)
    outputs = layers.Softmax(name=f"{name}_output_activation")(x)
    return keras.Model(inputs, outputs, name=f"{name}_model")
