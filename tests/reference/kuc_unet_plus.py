"""UNet++ as keras-unet-collection 0.1.13's ``unet_plus_2d`` describes it, written by hand in plain Keras.

Zhou, Siddiquee, Tajbakhsh, Liang 2018, "UNet++: A Nested U-Net Architecture for Medical Image
Segmentation" (arXiv:1807.10165), with keras-unet-collection's choices: per level two 3x3 convs
(no bias), batch norm, ReLU; 2x2 max pooling; each nested node up-samples the node below (bilinear x2,
then a 3x3 conv, batch norm, ReLU), concatenates it first with the row's earlier nodes, then two
convs. keras-unet-collection's own code passes ``concat=False`` to every nested node, so its model has
no concatenation at all; this reference restores it. Kept free of archgen on purpose.
"""

from __future__ import annotations

import keras
from keras import layers


def kuc_unet_plus(input_shape=(128, 128, 3), filter_num=(64, 128, 256, 512), n_labels: int = 2,
                  stack_num_down: int = 2, stack_num_up: int = 2, deep_supervision: bool = False) -> keras.Model:
    """The nested nodes X[i][j] (row i = resolution level, column j); the output reads X[0][depth]."""
    depth = len(filter_num) - 1
    inputs = keras.Input(shape=input_shape)
    x = _convs(inputs, filter_num[0], stack_num_down)
    grid = {(0, 0): x}
    for i in range(1, depth + 1):  # the encoder: column 0
        x = layers.MaxPooling2D(2)(x)
        x = _convs(x, filter_num[i], stack_num_down)
        grid[(i, 0)] = x
    for j in range(1, depth + 1):
        for i in range(depth - j + 1):
            up = layers.UpSampling2D(2, interpolation="bilinear")(grid[(i + 1, j - 1)])
            up = _convs(up, filter_num[i], 1)
            x = layers.Concatenate()([up] + [grid[(i, k)] for k in range(j)])
            grid[(i, j)] = _convs(x, filter_num[i], stack_num_up)
    heads = [grid[(0, j)] for j in range(1, depth)] if deep_supervision else []
    outputs = [layers.Conv2D(n_labels, 1, activation="softmax")(h) for h in heads + [grid[(0, depth)]]]
    return keras.Model(inputs, outputs if deep_supervision else outputs[0], name="unet_plus_reference")


def _convs(x, filters: int, count: int):
    for _ in range(count):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    return x
