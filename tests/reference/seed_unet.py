"""The original U-Net, written by hand in plain Keras from the paper.

Ronneberger, Fischer, Brox 2015, "U-Net: Convolutional Networks for Biomedical Image
Segmentation" (arXiv:1505.04597), section 2 and Fig. 1. Kept free of archgen on purpose: it is
the baseline that conf/unet.yaml is checked and timed against, so it must not share archgen's code.
"""

from __future__ import annotations

import keras
from keras import layers

FILTERS = (64, 128, 256, 512, 1024)  # doubled at each down-sampling step, 1024 at the bottom


def seed_unet(input_shape: tuple[int, int, int] = (572, 572, 1), num_classes: int = 2) -> keras.Model:
    """572x572x1 -> 388x388x``num_classes`` logits at the paper's tile size.

    Any other size works when every 2x2 max-pool meets an even size (188, 204, ... = 16k + 60);
    the skip crops follow from the shapes, so they need not be stored.
    """
    inputs = keras.Input(shape=input_shape)
    x = inputs
    skips = []
    # Contracting path: two unpadded 3x3 ReLU convs, then a 2x2 max-pool with stride 2.
    for filters in FILTERS[:-1]:
        x = _two_convs(x, filters)
        skips.append(x)
        if x.shape[1] % 2 or x.shape[2] % 2:
            raise ValueError(f"input {input_shape[:2]} meets a 2x2 max-pool at odd size {tuple(x.shape[1:3])}")
        x = layers.MaxPooling2D(pool_size=2, strides=2)(x)
    x = _two_convs(x, FILTERS[-1])
    # Expansive path: a 2x2 up-convolution halving the channels, the matching contracting-path map
    # centre-cropped to its size (border pixels are lost in every unpadded conv), concatenated, two convs.
    for filters, skip in zip(reversed(FILTERS[:-1]), reversed(skips)):
        x = layers.Conv2DTranspose(filters, kernel_size=2, strides=2, activation="relu")(x)
        skip = layers.Cropping2D(_centre_crop(skip.shape, x.shape))(skip)
        x = layers.Concatenate(axis=-1)([x, skip])
        x = _two_convs(x, filters)
    # A 1x1 conv maps each 64-channel feature vector to the classes; the softmax belongs to the loss.
    outputs = layers.Conv2D(num_classes, kernel_size=1)(x)
    return keras.Model(inputs, outputs, name="original_unet")


def _two_convs(x, filters: int):
    for _ in range(2):
        x = layers.Conv2D(filters, kernel_size=3, padding="valid", activation="relu")(x)
    return x


def _centre_crop(big: tuple, small: tuple) -> tuple[tuple[int, int], tuple[int, int]]:
    """Per-side crop of ``big`` (N, H, W, C) down to ``small``'s height and width."""
    crops = []
    for have, want in zip(big[1:3], small[1:3]):
        extra = have - want
        crops.append((extra // 2, extra - extra // 2))
    return tuple(crops)
