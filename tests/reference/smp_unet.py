"""segmentation_models' Unet decoder on keras.applications' ResNet50, written by hand in plain Keras.

qubvel/segmentation_models 1.0 (``models/unet.py``: ``build_unet``, ``DecoderUpsamplingX2Block``,
``Conv3x3BnReLU``) runs on Keras 2 only, and its own ``Unet('resnet50')`` takes image-classifiers'
ResNet50, not keras.applications'; so this decoder on keras.applications' ResNet50 is written out
here layer by layer, with segmentation_models' layer names: the backbone's stage outputs as skips,
deepest first; for each of
``decoder_filters`` an UpSampling2D(2), the skip concatenated after the up-sampled feature, two
3x3 convs without bias, each with batch norm and ReLU; a 3x3 ``final_conv`` and a sigmoid. Kept free
of archgen on purpose: it is what conf/peers/smp_unet_resnet50.yaml is checked against.
"""

from __future__ import annotations

import keras
from keras import layers

DECODER_FILTERS = (256, 128, 64, 32, 16)
# ResNet50's stage outputs at strides 16, 8, 4, 2 (segmentation_models takes the same stage
# boundaries from image-classifiers' ResNet50: stage4_unit1_relu1, ..., relu0).
SKIPS = ("conv4_block6_out", "conv3_block4_out", "conv2_block3_out", "conv1_relu")


def _conv_bn_relu(x, filters: int, name: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_uniform",
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def smp_unet_resnet50(input_shape=(224, 224, 3), classes: int = 1) -> keras.Model:
    backbone = keras.applications.ResNet50(include_top=False, weights=None, input_shape=input_shape)
    x = backbone.output
    skips = [backbone.get_layer(name).output for name in SKIPS]
    for stage, filters in enumerate(DECODER_FILTERS):
        x = layers.UpSampling2D(size=2, name=f"decoder_stage{stage}_upsampling")(x)
        if stage < len(skips):
            x = layers.Concatenate(axis=-1, name=f"decoder_stage{stage}_concat")([x, skips[stage]])
        x = _conv_bn_relu(x, filters, f"decoder_stage{stage}a")
        x = _conv_bn_relu(x, filters, f"decoder_stage{stage}b")
    x = layers.Conv2D(classes, 3, padding="same", use_bias=True, name="final_conv")(x)
    x = layers.Activation("sigmoid", name="sigmoid")(x)
    return keras.Model(backbone.input, x, name="smp_unet_resnet50")
