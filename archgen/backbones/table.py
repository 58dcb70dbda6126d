"""One row per keras.applications backbone: where its stages end, their channels, its size.

Measured from Keras 3.15 with ``tools/backbone_table.py`` (``weights=None``, 224x224x3) and checked
against Keras by ``tests/backbones/test_table.py``. Facts, not code: the planner reads them and
never imports TensorFlow.

A tap is a stage output the decoder reads: the last tensor at each stride (1 where a backbone has
one, as VGG's first block; 2, 4, 8, 16; 32 is the bottleneck), in the layer order of the model.
It is a layer's output, or, where that layer's name is one Keras numbers automatically
(MobileNetV3's ``re_lu_2`` changes with how many models a session built), the input of the named
layer that reads it; ``""`` is the model's output. Parameters count the 3-channel model (the stem
conv and any built-in normalisation depend on the input's channels). FLOPs are 2 x multiply-adds of
the convolutions (ConvNeXt's pointwise Dense layers are 1x1 convolutions), ``flops_per_tile`` per 32x32 tile of the input plus ``flops_constant`` (the 1x1
squeeze-and-excitation convs on pooled maps), exact at every multiple of 32.
"""

from __future__ import annotations

from dataclasses import dataclass

INPUT = "input"

# How a backbone wants its pixels (what its keras.applications ``preprocess_input`` does). archgen
# builds the model as keras.applications does, with its built-in preprocessing layers where it has them.
CAFFE = "caffe: RGB 0..255 to BGR, ImageNet mean subtracted, no scaling (preprocess_input of its module)"
TF = "tf: 0..255 scaled to -1..1 (preprocess_input of its module)"
TORCH = "torch: 0..255 scaled to 0..1, ImageNet mean and std normalised (preprocess_input of its module)"
BUILT_IN_MINUS1_1 = "built in: feed RGB 0..255; a Rescaling layer maps it to -1..1"
BUILT_IN_IMAGENET = "built in: feed RGB 0..255; Rescaling and Normalization layers apply ImageNet's mean and std"
BUILT_IN_V2 = ("built in: feed RGB 0..255; B0-B3 apply ImageNet's mean and std (Rescaling, Normalization), "
               "S maps to -1..1 (Rescaling)")


@dataclass(frozen=True)
class Tap:
    """One stage output: its stride, its channels, and the Keras layer it is taken from."""

    stride: int
    channels: int
    layer: str
    side: str = "output"
    """``output`` of ``layer``, or its ``input`` (the tensor it reads)."""


@dataclass(frozen=True)
class Backbone:
    """A keras.applications model as an encoder: ``include_top=False``."""

    name: str
    """The name a config gives (``encoder.name``): the constructor's name in lower case."""
    constructor: str
    """The function in ``keras.applications``."""
    params: int
    """Parameters of the model without its top, 3 input channels (trainable and not)."""
    flops_per_tile: int
    flops_constant: int
    taps: tuple[Tap, ...]
    """Strides ascending; the last (stride ``divisor``) is the bottleneck."""
    preprocessing: str
    divisor: int = 32
    """Every input size must be a multiple of this (the total stride), so each tap is input / stride."""
    min_size: int = 32
    """keras.applications refuses smaller inputs (``obtain_input_shape(min_size=32)``)."""

    @property
    def depth(self) -> int:
        """Stride-2 steps from the input to the bottleneck: the decoder's stage count."""
        return self.divisor.bit_length() - 1

    def flops(self, height: int, width: int) -> int:
        return self.flops_per_tile * (height // self.divisor) * (width // self.divisor) + self.flops_constant


def _row(constructor: str, params: int, per_tile: int, constant: int, preprocessing: str, taps: list[tuple]) -> Backbone:
    return Backbone(constructor.lower(), constructor, params, per_tile, constant, tuple(Tap(*t) for t in taps),
                    preprocessing)


ROWS = [
    _row('VGG16', 14_714_688, 626_393_088, 0, CAFFE,
         [(1, 64, 'block1_conv2'), (2, 128, 'block2_conv2'), (4, 256, 'block3_conv3'),
          (8, 512, 'block4_conv3'), (16, 512, 'block5_conv3'), (32, 512, 'block5_pool')]),
    _row('VGG19', 20_024_384, 796_262_400, 0, CAFFE,
         [(1, 64, 'block1_conv2'), (2, 128, 'block2_conv2'), (4, 256, 'block3_conv4'),
          (8, 512, 'block4_conv4'), (16, 512, 'block5_conv4'), (32, 512, 'block5_pool')]),
    _row('ResNet50', 23_587_712, 157_384_704, 0, CAFFE,
         [(2, 64, 'conv1_relu'), (4, 256, 'conv2_block3_out'), (8, 512, 'conv3_block4_out'),
          (16, 1024, 'conv4_block6_out'), (32, 2048, 'conv5_block3_out')]),
    _row('ResNet101', 42_658_176, 308_903_936, 0, CAFFE,
         [(2, 64, 'conv1_relu'), (4, 256, 'conv2_block3_out'), (8, 512, 'conv3_block4_out'),
          (16, 1024, 'conv4_block23_out'), (32, 2048, 'conv5_block3_out')]),
    _row('ResNet152', 58_370_944, 460_423_168, 0, CAFFE,
         [(2, 64, 'conv1_relu'), (4, 256, 'conv2_block3_out'), (8, 512, 'conv3_block8_out'),
          (16, 1024, 'conv4_block36_out'), (32, 2048, 'conv5_block3_out')]),
    _row('ResNet50V2', 23_564_800, 142_049_280, 0, TF,
         [(2, 64, 'conv1_conv'), (4, 64, 'conv2_block3_1_relu'), (8, 128, 'conv3_block4_1_relu'),
          (16, 256, 'conv4_block6_1_relu'), (32, 2048, 'post_relu')]),
    _row('ResNet101V2', 42_626_560, 293_568_512, 0, TF,
         [(2, 64, 'conv1_conv'), (4, 64, 'conv2_block3_1_relu'), (8, 128, 'conv3_block4_1_relu'),
          (16, 256, 'conv4_block23_1_relu'), (32, 2048, 'post_relu')]),
    _row('ResNet152V2', 58_331_648, 445_087_744, 0, TF,
         [(2, 64, 'conv1_conv'), (4, 64, 'conv2_block3_1_relu'), (8, 128, 'conv3_block8_1_relu'),
          (16, 256, 'conv4_block36_1_relu'), (32, 2048, 'post_relu')]),
    _row('DenseNet121', 7_037_504, 115_638_272, 0, TORCH,
         [(2, 64, 'conv1_relu'), (4, 128, 'pool2_conv'), (8, 256, 'pool3_conv'), (16, 512, 'pool4_conv'),
          (32, 1024, 'relu')]),
    _row('DenseNet169', 12_642_880, 137_068_544, 0, TORCH,
         [(2, 64, 'conv1_relu'), (4, 128, 'pool2_conv'), (8, 256, 'pool3_conv'), (16, 640, 'pool4_conv'),
          (32, 1664, 'relu')]),
    _row('DenseNet201', 18_321_984, 175_079_424, 0, TORCH,
         [(2, 64, 'conv1_relu'), (4, 128, 'pool2_conv'), (8, 256, 'pool3_conv'), (16, 896, 'pool4_conv'),
          (32, 1920, 'relu')]),
    _row('MobileNet', 3_228_864, 23_172_096, 0, TF,
         [(2, 64, 'conv_pw_1_relu'), (4, 128, 'conv_pw_3_relu'), (8, 256, 'conv_pw_5_relu'),
          (16, 512, 'conv_pw_11_relu'), (32, 1024, 'conv_pw_13_relu')]),
    _row('MobileNetV2', 2_257_984, 12_224_256, 0, TF,
         [(2, 96, 'block_1_expand_relu'), (4, 144, 'block_3_expand_relu'), (8, 192, 'block_6_expand_relu'),
          (16, 576, 'block_13_expand_relu'), (32, 1280, 'out_relu')]),
    _row('MobileNetV3Small', 939_120, 2_221_952, 917_504, BUILT_IN_MINUS1_1,
         [(2, 16, 'expanded_conv_depthwise_pad', INPUT), (4, 72, 'expanded_conv_1_depthwise_pad', INPUT),
          (8, 96, 'expanded_conv_3_depthwise_pad', INPUT), (16, 288, 'expanded_conv_8_depthwise_pad', INPUT),
          (32, 576, '')]),
    _row('MobileNetV3Large', 2_996_352, 8_676_480, 3_014_400, BUILT_IN_MINUS1_1,
         [(2, 64, 'expanded_conv_1_depthwise_pad', INPUT), (4, 72, 'expanded_conv_3_depthwise_pad', INPUT),
          (8, 240, 'expanded_conv_6_depthwise_pad', INPUT), (16, 672, 'expanded_conv_12_depthwise_pad', INPUT),
          (32, 960, '')]),
    _row('EfficientNetB0', 4_049_571, 15_669_696, 1_254_400, BUILT_IN_IMAGENET,
         [(2, 96, 'block2a_expand_activation'), (4, 144, 'block3a_expand_activation'),
          (8, 240, 'block4a_expand_activation'), (16, 672, 'block6a_expand_activation'),
          (32, 1280, 'top_activation')]),
    _row('EfficientNetB1', 6_575_239, 23_153_600, 2_216_960, BUILT_IN_IMAGENET,
         [(2, 96, 'block2a_expand_activation'), (4, 144, 'block3a_expand_activation'),
          (8, 240, 'block4a_expand_activation'), (16, 672, 'block6a_expand_activation'),
          (32, 1280, 'top_activation')]),
    _row('EfficientNetB2', 7_768_569, 26_785_376, 2_627_456, BUILT_IN_IMAGENET,
         [(2, 96, 'block2a_expand_activation'), (4, 144, 'block3a_expand_activation'),
          (8, 288, 'block4a_expand_activation'), (16, 720, 'block6a_expand_activation'),
          (32, 1408, 'top_activation')]),
    _row('EfficientNetB3', 10_783_535, 39_155_616, 3_719_296, BUILT_IN_IMAGENET,
         [(2, 144, 'block2a_expand_activation'), (4, 192, 'block3a_expand_activation'),
          (8, 288, 'block4a_expand_activation'), (16, 816, 'block6a_expand_activation'),
          (32, 1536, 'top_activation')]),
    _row('EfficientNetB4', 17_673_823, 61_175_552, 6_234_816, BUILT_IN_IMAGENET,
         [(2, 144, 'block2a_expand_activation'), (4, 192, 'block3a_expand_activation'),
          (8, 336, 'block4a_expand_activation'), (16, 960, 'block6a_expand_activation'),
          (32, 1792, 'top_activation')]),
    _row('EfficientNetB5', 28_513_527, 95_889_536, 10_303_104, BUILT_IN_IMAGENET,
         [(2, 144, 'block2a_expand_activation'), (4, 240, 'block3a_expand_activation'),
          (8, 384, 'block4a_expand_activation'), (16, 1056, 'block6a_expand_activation'),
          (32, 2048, 'top_activation')]),
    _row('EfficientNetB6', 40_960_143, 136_750_272, 14_962_368, BUILT_IN_IMAGENET,
         [(2, 192, 'block2a_expand_activation'), (4, 240, 'block3a_expand_activation'),
          (8, 432, 'block4a_expand_activation'), (16, 1200, 'block6a_expand_activation'),
          (32, 2304, 'top_activation')]),
    _row('EfficientNetB7', 64_097_687, 210_424_704, 23_799_808, BUILT_IN_IMAGENET,
         [(2, 192, 'block2a_expand_activation'), (4, 288, 'block3a_expand_activation'),
          (8, 480, 'block4a_expand_activation'), (16, 1344, 'block6a_expand_activation'),
          (32, 2560, 'top_activation')]),
    _row('EfficientNetV2B0', 5_919_312, 29_215_296, 2_062_848, BUILT_IN_V2,
         [(2, 16, 'block1a_project_activation'), (4, 32, 'block2b_add'), (8, 192, 'block4a_expand_activation'),
          (16, 672, 'block6a_expand_activation'), (32, 1280, 'top_activation')]),
    _row('EfficientNetV2B1', 6_931_124, 41_362_496, 2_396_160, BUILT_IN_V2,
         [(2, 16, 'block1b_add'), (4, 32, 'block2c_add'), (8, 192, 'block4a_expand_activation'),
          (16, 672, 'block6a_expand_activation'), (32, 1280, 'top_activation')]),
    _row('EfficientNetV2B2', 8_769_374, 47_587_424, 3_061_888, BUILT_IN_V2,
         [(2, 16, 'block1b_add'), (4, 32, 'block2c_add'), (8, 224, 'block4a_expand_activation'),
          (16, 720, 'block6a_expand_activation'), (32, 1408, 'top_activation')]),
    _row('EfficientNetV2B3', 12_930_622, 65_556_480, 4_617_728, BUILT_IN_V2,
         [(2, 16, 'block1b_add'), (4, 40, 'block2c_add'), (8, 224, 'block4a_expand_activation'),
          (16, 816, 'block6a_expand_activation'), (32, 1536, 'top_activation')]),
    _row('EfficientNetV2S', 20_331_360, 116_120_448, 7_329_792, BUILT_IN_V2,
         [(2, 24, 'block1b_add'), (4, 48, 'block2d_add'), (8, 256, 'block4a_expand_activation'),
          (16, 960, 'block6a_expand_activation'), (32, 1280, 'top_activation')]),
    _row('ConvNeXtTiny', 27_820_128, 181_827_072, 0, BUILT_IN_IMAGENET,
         [(4, 96, 'convnext_tiny_stage_0_block_2_identity'),
          (8, 192, 'convnext_tiny_stage_1_block_2_identity'),
          (16, 384, 'convnext_tiny_stage_2_block_8_identity'), (32, 768, '')]),
    _row('ConvNeXtSmall', 49_454_688, 354_405_888, 0, BUILT_IN_IMAGENET,
         [(4, 96, 'convnext_small_stage_0_block_2_identity'),
          (8, 192, 'convnext_small_stage_1_block_2_identity'),
          (16, 384, 'convnext_small_stage_2_block_26_identity'), (32, 768, '')]),
    _row('ConvNeXtBase', 87_566_464, 626_681_856, 0, BUILT_IN_IMAGENET,
         [(4, 128, 'convnext_base_stage_0_block_2_identity'),
          (8, 256, 'convnext_base_stage_1_block_2_identity'),
          (16, 512, 'convnext_base_stage_2_block_26_identity'), (32, 1024, '')]),
]

BACKBONES: dict[str, Backbone] = {row.name: row for row in ROWS}
