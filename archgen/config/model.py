"""Pydantic models of the archgen YAML: the only place that knows the file format.

Every option is a name in a closed set (a ``Literal`` or a union discriminated on
``type``); a config never names Python code to import.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from archgen.config.fields import (Activation, Channels, Count, Epsilon, Name, Norm, Padding, PerAxis, Size, Slope,
                                 StageChannels, Strict, tagged)
from archgen.config.train import AugmentSpec, DataSpec, TrainSpec, check_training

MAX_CHANNELS_LIKE_A_SIZE = 16  # more channels than this, equal to a spatial size: a forgotten axis


class InputSpec(Strict):
    """The model's input tensor, without the batch axis."""

    shape: list[Size | None] = Field(min_length=2, max_length=4)
    """Spatial sizes then channels: [L, C] (1D), [H, W, C] (2D) or [D, H, W, C] (3D).
    A spatial size may be null: the model then accepts any legal size at run time."""

    @field_validator("shape")
    @classmethod
    def _not_a_forgotten_channel_axis(cls, shape: list) -> list:
        channels, spatial = shape[-1], shape[:-1]
        # [572, 572] reads as 572 channels of a 1D signal: almost always a forgotten channel axis.
        if channels is not None and channels > MAX_CHANNELS_LIKE_A_SIZE and channels in spatial and len(spatial) < 3:
            guess = [*shape, 1]
            raise ValueError(f"the last entry is the channel count: this is {len(spatial)}D with {channels} channels; "
                             f"for a {len(guess) - 1}D input with 1 channel write {guess}")
        return shape

    @model_validator(mode="after")
    def _channels_known(self) -> InputSpec:
        if self.shape[-1] is None:
            raise ValueError("the channel count (last entry of input.shape) must be a number")
        return self


def _slope_needs_leaky_relu(slope: float | None, info: ValidationInfo) -> float | None:
    """A ``negative_slope`` beside an activation that takes none would be silently ignored."""
    activation = info.data.get("activation")
    if slope is not None and activation is not None and activation != "leaky_relu":
        raise ValueError(f"only leaky_relu takes a negative slope, and the activation here is {activation}; "
                         "remove negative_slope or set activation: leaky_relu")
    return slope


class SqueezeExcite(Strict):
    """Channel gating: global average pool, a 1x1 conv reducing the channels by ``ratio``, its
    activation, a 1x1 conv back to the channels, sigmoid, and the block's output multiplied by it."""

    ratio: int = Field(default=16, ge=1, le=4096)
    """Channels of the reducing conv: the block's channels // ratio (at least 1)."""
    activation: Activation = "relu"
    """Activation of the reducing conv."""


class _BlockBase(Strict):
    convs: Count = 2
    """Convolutions per level."""
    kernel_size: Count | list[Count] = 3
    """Kernel size of every conv, or one per level (encoder level 1 first, bottleneck last)."""
    dilation: Count = 1
    """Dilation rate of every conv."""
    activation: Activation = "relu"
    """Activation after each conv (after the normalisation, if any)."""
    negative_slope: Slope | None = None
    """Slope of leaky_relu below zero; null means Keras's 0.2 (PyTorch's default is 0.01, MONAI's
    BasicUNet uses 0.1). Only with ``activation: leaky_relu``."""
    _slope = field_validator("negative_slope")(_slope_needs_leaky_relu)
    norm: Norm = "none"
    """Normalisation after each conv: batch, group (``groups``), layer, or instance (a group norm
    with one group per channel, as PyTorch's InstanceNorm: statistics per sample and channel)."""
    norm_epsilon: Epsilon | None = None
    """Epsilon of the normalisation; null means Keras's 0.001 (PyTorch's norms use 0.00001)."""
    norm_affine: bool = True
    """Whether the normalisation learns a scale and shift (PyTorch's ``affine``; InstanceNorm's
    default there is false, nnU-Net and MONAI set it true)."""
    bias: bool | None = None
    """Whether the convs have a bias; null means only without a norm (a norm's shift makes it redundant)."""
    inner_ratio: float = Field(default=1.0, gt=0)
    """Filters of every conv but the block's last, as a fraction of the level's filters
    (the 3D U-Net's encoder uses 0.5: 32 then 64 at level 1)."""
    groups: Channels = 8
    """Groups of a group norm; must divide the channel count of every level."""
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Dropout rate applied at the end of each block; 0 adds no layer."""
    padding: Padding | None = None
    """Padding of this block's convs; null takes the top-level ``padding``."""
    order: Literal["norm_act", "act_norm", "pre_activation"] = "norm_act"
    """After each conv: the norm then the activation, or the activation then the norm (nnU-Net's
    ``nonlin_first``); or pre_activation: the norm and the activation before each conv, none after
    (He et al. 2016, "Identity mappings"; MONAI's SegResNet), so a residual block adds its shortcut
    after its last conv with nothing after the addition."""
    se: SqueezeExcite | None = None
    """Squeeze-and-excitation (Hu et al. 2018) on the block's output channels, after its last conv
    (and that conv's norm and activation); in a residual block before the addition, as SE-ResNet.
    Null adds none."""


class ConvBlock(_BlockBase):
    """``convs`` convolutions in a row (the original U-Net block)."""

    type: Literal["conv"] = "conv"


class ResidualBlock(_BlockBase):
    """Convolutions with a shortcut added before the last activation: conv-norm-act, ..., conv-norm,
    add, act (nnU-Net's BasicBlockD with ``convs: 2``). The shortcut is the identity where channels
    and size stay."""

    type: Literal["residual"] = "residual"
    shortcut: Literal["plain", "resnet_d", "repeat"] = "plain"
    """How the shortcut changes channels or size: plain, a strided 1x1 conv (with the block's bias)
    then the norm; resnet_d (He et al. 2019, nnU-Net's ResidualEncoder), an average pooling by the
    stride where the block strides, then a 1x1 conv without bias and the norm where channels change;
    repeat, no weights: the input's channels repeated up to the block's filters, which they must
    divide (V-Net's input transition, ``x.repeat``), in a block that does not stride."""
    shortcut_from: Literal["input", "first_conv", "upsampled"] = "input"
    """What the shortcut carries: the block's input; its first conv's output (with its norm and
    activation), the later convs making the residual path (at least 2 convs); or, in a decoder
    stage, the level's up-sampled feature before it joined the skip (keras-unet-collection's V-Net:
    its pre-conv, and its transposed conv's output)."""
    shortcut_kernel_size: Count | Literal["block"] = 1
    """Kernel of the plain shortcut's conv where the block strides: a number, or block for the
    stage's own kernel (MONAI's ResidualUnit); where only the channels change it is 1x1."""
    shortcut_norm: bool = True
    """Whether the shortcut's conv is followed by the block's norm (MONAI's ResidualUnit: false)."""
    add_at: Literal["before_activation", "after_activation", "between_activations"] = "before_activation"
    """Where the shortcut is added: before the last activation (conv-norm, add, act: ResNet,
    nnU-Net), after it (conv-norm-act, add, and nothing after: MONAI's ResidualUnit), or between two
    (conv-norm-act, add, act: V-Net, the sum activated again)."""
    project: Literal["when_needed", "first_block"] = "when_needed"
    """When the shortcut gets its conv: where the channels or the size change, or also in the first
    block of every stage where they stay (image-classifiers' ResNet18/34: stage 1's first block
    projects 64 channels to 64)."""
    stage_output: Literal["sum", "activated"] = "sum"
    """With ``order: pre_activation``, what a stage of these blocks hands on (its skip, and the next
    stage's input): its last block's sum, or that sum through the block's norm and activation
    (``{stage}_out_norm``, ``{stage}_out_act``; image-classifiers' ResNets, whose skips are the next
    stage's first ``bn1``/``relu1`` and whose last stage ends in ``bn1``, ``relu1``). The next stage's
    first block then starts from it without a norm of its own, and projects its shortcut from it."""


class BottleneckBlock(ResidualBlock):
    """He et al. 2016's bottleneck, a residual block of a 1x1 conv to ``inner_ratio`` x the stage's
    filters, ``convs`` - 2 convs of the stage's kernel (the first strides where the block does:
    torchvision's and image-classifiers' ResNet50), then a 1x1 conv to the stage's filters; the
    shortcut and every other option as the residual block's."""

    type: Literal["bottleneck"] = "bottleneck"
    convs: Annotated[int, Field(ge=3, le=64)] = 3
    """Convolutions per block, the two 1x1 convs included (ResNet50: 3)."""
    inner_ratio: float = Field(default=0.25, gt=0)
    """Filters of every conv but the last, as a fraction of the stage's filters (ResNet50: 64 of 256)."""


class RecurrentResidualBlock(_BlockBase):
    """R2U-Net's recurrent residual block (Alom et al. 2018): a 1x1 conv to the level's filters, then
    ``convs`` recurrent units in a row, each conv(x) followed by ``recurrences`` times conv(x + previous),
    every conv with its norm and activation and all convs of a unit distinct (weights are not shared,
    as keras-unet-collection builds it); the 1x1 conv's output is added to the last unit's output."""

    type: Literal["recurrent_residual"] = "recurrent_residual"
    recurrences: Count = 2
    """How many times a unit adds its input to its last output and convolves again (the paper's t)."""


class RSUBlock(_BlockBase):
    """U-Net 2's residual U-block (Qin et al. 2020), as keras-unet-collection's ``RSU`` and ``RSU4F``
    build it: a conv to the level's filters (the block's input conv), a small U-Net inside on
    ``mid_filters`` channels (a conv per inner level, max pooling by 2 between them, a dilated conv
    at its bottom, a decoder that up-samples bilinearly and concatenates each inner level's conv),
    a conv back to the level's filters, and the input conv's output added. Every conv has the
    block's kernel, norm and activation; ``convs`` does not apply."""

    type: Literal["rsu"] = "rsu"
    height: Count | Literal["dilated"] | list[Count | Literal["dilated"]] = 4
    """Max poolings inside the block (keras-unet-collection's ``depth``; the paper's RSU-L has L - 2),
    or dilated: RSU-4F, no pooling, its inner convs dilated by ``dilations``. One value, or one per
    level (encoder level 1 first, bottleneck last; a decoder's block reads its levels' and not the last)."""
    mid_filters: Channels | list[Channels] | None = None
    """Channels of the inner U-Net's convs, one number or one per level as ``height``; null means
    ``inner_ratio`` x the level's filters."""
    inner_ratio: float = Field(default=0.25, gt=0)
    """The inner convs' channels as a fraction of the level's filters, where ``mid_filters`` is null
    (keras-unet-collection's automatic RSU channels: a quarter)."""
    dilation: Count = 2
    """Dilation of the conv at the bottom of a pooled block's inner U-Net (the paper's 2)."""
    dilations: Annotated[list[Count], Field(min_length=2, max_length=16)] = [1, 2, 4, 8]
    """A dilated block's inner convs on the way down, the last one its bottom; on the way up each
    inner level's conv takes that level's dilation, the one back to the level's filters 1 (RSU-4F:
    1, 2, 4, 8)."""
    interpolation: Literal["nearest", "bilinear", "linear"] = "bilinear"
    """How the inner decoder up-samples by 2: bilinear (2D only; the paper's, keras-unet-collection's
    default), nearest, or linear along every axis (1D, 2D, 3D)."""


class ConvNeXtBlock(Strict):
    """ConvNeXt's block (Liu et al. 2022) as MedNeXt (Roy et al. 2023) builds it: a depthwise conv of
    ``kernel_size`` (one filter per channel), the norm, a 1x1 conv to ``expansion`` times the block's
    input channels with the activation, a 1x1 conv to the level's filters, and the block's input
    added (through a 1x1 conv where the channels or the size change). Every conv has a bias unless
    ``bias`` is false. Defaults of the keys it shares with the conv block are theirs: ConvNeXt's
    gelu and a norm are set in the config (MedNeXt: gelu, norm group with one group per channel)."""

    type: Literal["convnext"] = "convnext"
    convs: Count = 2
    """Not used: a convnext block's convs are fixed (kept so that every block reads a stage's ``convs``)."""
    kernel_size: Count | list[Count] = 3
    """Kernel size of the depthwise conv, or one per level (encoder level 1 first, bottleneck last)."""
    dilation: Count = 1
    """Dilation rate of the depthwise conv."""
    activation: Activation = "relu"
    """Activation after the expanding 1x1 conv (ConvNeXt, MedNeXt: gelu)."""
    negative_slope: Slope | None = None
    """Slope of leaky_relu below zero; null means Keras's 0.2. Only with ``activation: leaky_relu``."""
    _slope = field_validator("negative_slope")(_slope_needs_leaky_relu)
    norm: Norm = "none"
    """Normalisation after the depthwise conv (MedNeXt: group with ``groups`` equal to the channels,
    which is instance with ``norm_affine: true``; ConvNeXt: layer)."""
    norm_epsilon: Epsilon | None = None
    """Epsilon of the normalisation; null means Keras's 0.001 (PyTorch's norms use 0.00001)."""
    norm_affine: bool = True
    """Whether the normalisation learns a scale and shift."""
    groups: Channels = 8
    """Groups of a group norm; must divide the channel count of every level."""
    bias: bool = True
    """Whether the convs (depthwise, both 1x1 and the shortcut's) have a bias."""
    expansion: Count | list[Count] = 4
    """Channels of the expanding 1x1 conv, as a multiple of the block's input channels: one number,
    or one per level as ``kernel_size`` (level 1 first, bottleneck last; a decoder's block reads its
    levels' and not the last). A block that down-samples out of a level, or up-samples into one,
    takes that level's."""
    global_resp_norm: bool = False
    """ConvNeXt v2's global response normalisation after the expanding conv's activation
    (``<block>_grn``: each channel scaled by its L2 norm over the map relative to the channels' mean,
    learned ``gamma`` and ``beta`` per channel, starting as the identity): MedNeXt's and MONAI's
    ``global_resp_norm``."""
    residual: bool = True
    """Whether the block's input is added to its output (MedNeXt's ``use_residual_connection``)."""
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Dropout rate applied at the end of each block; 0 adds no layer."""
    padding: Padding | None = None
    """Padding of the depthwise conv; null takes the top-level ``padding`` (valid crops the shortcut)."""
    se: SqueezeExcite | None = None
    """Squeeze-and-excitation on the block's output channels, after its last 1x1 conv and before the
    addition. Null adds none."""


Block = tagged("conv", ConvBlock, ResidualBlock, RecurrentResidualBlock, ConvNeXtBlock, BottleneckBlock, RSUBlock)


OddSizes = Literal["refuse", "floor"]


class MaxPool(Strict):
    """Max pooling with window = stride = ``factor``."""

    type: Literal["maxpool"] = "maxpool"
    factor: int = Field(default=2, ge=2, le=64)
    """Down-sampling factor on every spatial axis (with ``encoder.stages``, each stage's ``stride``)."""
    odd_sizes: OddSizes = "refuse"
    """A size the factor does not divide: refuse it (every legal size tiles seamlessly), or floor it,
    dropping the last rows as PyTorch's pooling does (MONAI's BasicUNet); pair floor with
    ``decoder.align: pad`` so any input size works."""


class AvgPool(Strict):
    """Average pooling with window = stride = ``factor``."""

    type: Literal["avgpool"] = "avgpool"
    factor: int = Field(default=2, ge=2, le=64)
    """Down-sampling factor on every spatial axis (with ``encoder.stages``, each stage's ``stride``)."""
    odd_sizes: OddSizes = "refuse"
    """A size the factor does not divide: refuse it, or floor it (see ``maxpool``)."""


class StridedConv(Strict):
    """A convolution with stride ``factor`` (kernel = factor unless given)."""

    type: Literal["conv"] = "conv"
    factor: int = Field(default=2, ge=2, le=64)
    """Down-sampling factor on every spatial axis."""
    kernel_size: Count | Annotated[list[Count], Field(min_length=1, max_length=3)] | Literal["level"] | None = None
    """Kernel size (one, or one per axis); null means ``factor``; ``level``: the kernel of the level
    it leaves (MONAI's SegResNetDS, whose anisotropic levels have kernel 1 on an axis they do not
    stride)."""
    activation: Activation = "relu"
    """Activation after the strided conv."""
    negative_slope: Slope | None = None
    """Slope of leaky_relu below zero; null means Keras's 0.2 (PyTorch's default is 0.01). Only with
    ``activation: leaky_relu``."""
    _slope = field_validator("negative_slope")(_slope_needs_leaky_relu)
    change_channels: bool = False
    """Change the channels to the next level's filters (SegResNet's strided conv) instead of keeping
    the level's, which the next stage's first conv then changes."""
    bias: bool = True
    """Whether the strided conv has a bias."""
    norm: Norm = "none"
    """Normalisation after the strided conv, before its activation (V-Net's down transition)."""
    norm_epsilon: Epsilon | None = None
    """Epsilon of that norm; null means Keras's 0.001."""
    norm_affine: bool = True
    """Whether that norm learns a scale and shift."""
    groups: Channels = 8
    """Groups of a group norm."""


class StrideFirstConv(Strict):
    """No layer of its own: the first conv of the next stage strides by ``factor`` and changes the
    channels (nnU-Net's PlainConvUNet, MONAI's DynUNet)."""

    type: Literal["stride"] = "stride"
    factor: int = Field(default=2, ge=2, le=64)
    """Down-sampling factor on every spatial axis (with ``encoder.stages``, each stage's ``stride``)."""


class BlockDown(Strict):
    """One block of the encoder's kind that leaves a level: its first conv (a convnext block's
    depthwise conv) strides by ``factor``, it changes the channels to the next level's filters, and
    its shortcut, where the block has one, projects by a strided 1x1 conv (MedNeXt's down block).
    Its layers belong to the level it leaves (``enc2_down_*``) and take that level's kernel."""

    type: Literal["block"] = "block"
    factor: int = Field(default=2, ge=2, le=64)
    """Down-sampling factor on every spatial axis (with ``encoder.stages``, each stage's ``stride``)."""
    global_resp_norm: bool | None = None
    """A convnext block's global response normalisation in the down block: null as the block says;
    MONAI's MedNeXt leaves it out of its down blocks (false)."""


Downsample = tagged("maxpool", MaxPool, AvgPool, StridedConv, StrideFirstConv, BlockDown)


class TransposeUp(Strict):
    """A transposed convolution with stride ``factor`` (the paper's "up-convolution")."""

    type: Literal["transpose"] = "transpose"
    factor: int = Field(default=2, ge=2, le=64)
    """Up-sampling factor on every spatial axis; left out, the encoder's down-sampling factor."""
    kernel_size: Count | Annotated[list[Count], Field(min_length=1, max_length=3)] | Literal["level"] | None = None
    """Kernel size (one, or one per axis); null means ``factor``; ``level``: the kernel of the decoder
    level it up-samples into."""
    activation: Activation = "linear"
    """Activation of the transposed conv (the seed U-Net uses relu)."""
    negative_slope: Slope | None = None
    """Slope of leaky_relu below zero; null means Keras's 0.2 (PyTorch's default is 0.01). Only with
    ``activation: leaky_relu``."""
    _slope = field_validator("negative_slope")(_slope_needs_leaky_relu)
    bias: bool = True
    """Whether the transposed conv has a bias."""
    keep_channels: bool = False
    """Keep the input's channels (as the 3D U-Net does) instead of taking the target level's."""
    padding: Literal["same", "centered"] | Annotated[int, Field(ge=0, le=64)] = "same"
    """same: the output is exactly ``factor`` times the input (Keras's "same"); a number is PyTorch's
    ``padding`` of a ConvTranspose: that many rows dropped from each side of the full output, whose
    size is then (n - 1) * factor + kernel - 2 * padding + output_padding; centered: per axis,
    PyTorch's padding (kernel - 1) // 2 and output_padding factor - 1 - (kernel - 1) % 2, so the
    output is ``factor`` times the input (MONAI's UpSample given a kernel)."""
    output_padding: Annotated[int, Field(ge=0, le=64)] | Annotated[
        list[Annotated[int, Field(ge=0, le=64)] | Annotated[list[Annotated[int, Field(ge=0, le=64)]],
                                                           Field(min_length=1, max_length=3)]],
        Field(min_length=1, max_length=64)] = 0
    """PyTorch's ``output_padding``: rows given back at the end (at most ``padding``, below the
    level's stride on each axis; only with a number as ``padding``). A number for every level, or a
    list of one per decoder level, level 1 first, each a number or one per spatial axis (MONAI's
    UNet gives stride - 1: 0 where a level keeps the size, [1, 0] where it strides [2, 1]). MONAI's
    up-sampling: kernel 3, padding 1, output_padding 1."""
    conv_first: bool = False
    """A 1x1 conv without bias to the level's channels before the transposed conv, which then keeps
    them (layer ``dec<level>_upconv``): MONAI's SegResNet with ``upsample_mode="deconv"``."""
    conv_after: Count | None = None
    """The kernel size of a conv after the transposed conv (and its norm and activation), with the same
    norm and activation (layers ``dec<level>_postconv``, ``_postnorm``, ``_postact``; no bias where a
    norm follows): keras-unet-collection's conv before the concatenation under ``unpool=False``.
    Null adds none."""
    norm: Norm = "none"
    """Normalisation after the transposed conv, before its activation (MONAI's UNet, AttentionUnet)."""
    norm_epsilon: Epsilon | None = None
    """Epsilon of that norm; null means Keras's 0.001."""
    norm_affine: bool = True
    """Whether that norm learns a scale and shift."""
    groups: Channels = 8
    """Groups of a group norm."""


class ResizeUp(Strict):
    """Nearest or bilinear up-sampling followed by a convolution (padding same)."""

    type: Literal["resize"] = "resize"
    factor: int = Field(default=2, ge=2, le=64)
    """Up-sampling factor on every spatial axis; left out, the encoder's down-sampling factor."""
    interpolation: Literal["nearest", "bilinear", "linear"] = "nearest"
    """Interpolation of the up-sampling; bilinear works on 2D inputs only; linear is linear along
    every axis in 1D, 2D and 3D (PyTorch's linear, bilinear, trilinear with align_corners=False)."""
    kernel_size: Count = 2
    """Kernel size of the conv after the resize."""
    activation: Activation = "linear"
    """Activation of the conv after the resize."""
    negative_slope: Slope | None = None
    """Slope of leaky_relu below zero; null means Keras's 0.2 (PyTorch's default is 0.01). Only with
    ``activation: leaky_relu``."""
    _slope = field_validator("negative_slope")(_slope_needs_leaky_relu)
    keep_channels: bool = False
    """Keep the input's channels instead of taking the target level's."""
    conv_first: bool = False
    """The conv (with its norm and activation) before the resize instead of after it: MONAI's
    SegResNet (a 1x1 conv, then linear interpolation). Cheaper, and for a 1x1 conv without a norm
    or an activation the same function, since both are linear."""
    bias: bool = True
    """Whether the conv has a bias (it has none where a norm follows it)."""
    norm: Norm = "none"
    """Normalisation after the conv, before its activation; the conv then has no bias
    (keras-unet-collection's decode layer: up-sample, conv, batch norm, ReLU)."""
    norm_epsilon: Epsilon | None = None
    """Epsilon of that norm; null means Keras's 0.001."""
    norm_affine: bool = True
    """Whether that norm learns a scale and shift."""
    groups: Channels = 8
    """Groups of a group norm."""


class InterpolateUp(Strict):
    """Nearest or bilinear up-sampling alone, no learned layer: the channels stay
    (segmentation_models' Unet decoder)."""

    type: Literal["interpolate"] = "interpolate"
    factor: int = Field(default=2, ge=2, le=64)
    """Up-sampling factor on every spatial axis; left out, the encoder's down-sampling factor."""
    interpolation: Literal["nearest", "bilinear", "linear"] = "nearest"
    """Interpolation of the up-sampling; bilinear works on 2D inputs only; linear along every axis
    in 1D, 2D and 3D (see ``resize``)."""


class BlockUp(Strict):
    """One block of the decoder's kind that enters a level: its depthwise conv is transposed and
    strides by ``factor`` (placed as PyTorch's ConvTranspose with padding kernel // 2), its shortcut
    a 1x1 transposed conv of that stride, and its output is zero-padded by factor - 1 rows at the
    start of each axis to factor times the input's size (MedNeXt's up block). Convnext blocks only;
    it takes the level's kernel and expansion, and the stage's ``up_filters``."""

    type: Literal["block"] = "block"
    factor: int = Field(default=2, ge=2, le=64)
    """Up-sampling factor on every spatial axis; left out, the encoder's down-sampling factor."""
    global_resp_norm: bool | None = None
    """A convnext block's global response normalisation in the up block: null as the block says."""


Upsample = tagged("transpose", TransposeUp, ResizeUp, InterpolateUp, BlockUp)


class ConcatMerge(Strict):
    """Concatenate the up-sampled feature and the skip on the channel axis."""

    type: Literal["concat"] = "concat"
    order: Literal["up_skip", "skip_up"] = "up_skip"
    """Channel order of the concatenation: the up-sampled feature first (nnU-Net, DynUNet) or the
    skip first (MONAI's BasicUNet, AttentionUnet). Same counts; matters when copying weights."""


class AddMerge(Strict):
    """Add the skip to the up-sampled feature (a 1x1 projection where channels differ)."""

    type: Literal["add"] = "add"


class AttentionMerge(Strict):
    """Attention gate on the skip (Oktay et al. 2018), then concatenate."""

    type: Literal["attention"] = "attention"
    inter_filters: Channels | None = None
    """Channels of the gate's intermediate 1x1 convs; null means half the skip's channels."""
    norm: Literal["none", "batch", "instance", "layer"] = "none"
    """Normalisation after each of the gate's three 1x1 convs (MONAI's AttentionUnet: batch); the
    sigmoid then follows the last one's norm."""
    norm_epsilon: Epsilon | None = None
    """Epsilon of the gate's norms; null means Keras's 0.001."""
    skip_bias: bool = False
    """Whether the gate's conv on the skip has a bias (Oktay et al.: no; MONAI: yes)."""
    order: Literal["up_skip", "skip_up"] = "up_skip"
    """Channel order of the concatenation after the gate (see ``concat``; MONAI: skip_up)."""
    combine: Literal["add", "multiply"] = "add"
    """How the gate joins its two 1x1 convs: added (Oktay et al.'s additive attention) or multiplied
    (keras-unet-collection's ``attention="multiply"``)."""
    activation: Activation = "relu"
    """Activation of the joined convs, before the sigmoid's conv (keras-unet-collection's
    ``atten_activation``)."""


Merge = tagged("concat", ConcatMerge, AddMerge, AttentionMerge)


class Transformer(Strict):
    """Transformer layers on the bottleneck's output (TransUNet, Chen et al. 2021): patches of
    ``patch_size`` embedded by a conv of that kernel and stride, a learned position embedding, ``layers``
    pre-norm blocks of multi-head self-attention over every patch and an MLP, each with a residual
    addition, then a conv back to the bottleneck's filters and size."""

    patch_size: Count = 1
    """Patch edge on every spatial axis, in bottleneck positions; the bottleneck's size must be a
    multiple of it. Above 1 the map comes back by a transposed conv of that kernel and stride."""
    embed_dim: Channels = 768
    """Channels of every token."""
    layers: Count = 12
    """Transformer blocks in a row."""
    heads: Channels = 12
    """Attention heads."""
    key_dim: Channels | None = None
    """Size of each head's query and key; null means embed_dim // heads (ViT). keras-unet-collection
    uses embed_dim."""
    mlp_dim: Channels = 3072
    """Hidden units of each block's MLP."""
    mlp_activation: Activation = "gelu"
    """Activation of the MLP's hidden layer."""
    activate_mlp_output: bool = False
    """Apply ``mlp_activation`` after the MLP's second Dense too (keras-unet-collection's ViT_MLP does)."""
    project_in: bool = False
    """A 1x1 conv without bias on the bottleneck's output before the patches (keras-unet-collection's
    ``conv_trans_before``)."""
    final_norm: bool = True
    """A layer norm after the last block (ViT's and TransUNet's encoder_norm; keras-unet-collection has none)."""
    out_bias: bool = False
    """Whether the conv back to the bottleneck's filters has a bias."""

Align = Literal["crop", "pad", "resize", "none"]


class EncoderStage(Strict):
    """One encoder stage, as a row of nnU-Net's plans (the last stage is the bottleneck)."""

    filters: StageChannels
    """Output channels of the stage's convs."""
    convs: Count = 2
    """Convolutions per block."""
    blocks: Count = 1
    """Blocks in a row; each residual block adds its own shortcut."""
    kernel_size: PerAxis = 3
    """Kernel size of the stage's convs: one for every spatial axis, or one per axis ([1, 3, 3])."""
    stride: PerAxis = 1
    """Down-sampling into this stage (by ``encoder.downsample``): one factor for every spatial axis or
    one per axis ([1, 2, 2]); 1 is none. The decoder up-samples by the same factors."""
    add_at: Literal["before_activation", "after_activation", "between_activations"] | None = None
    """A residual block's ``add_at`` at this stage; null means the block's (V-Net: its input
    transition adds before its one activation, every other level between two)."""


class DecoderStage(Strict):
    """One decoder stage: up-sampling from the stage below, the skip joined, then convs."""

    filters: StageChannels
    """Output channels of the stage's convs."""
    convs: Annotated[int, Field(ge=0, le=64)] = 2
    """Convolutions per block; 0 means no block: the up-sampling and the merge alone (MONAI's UNet
    without residual units)."""
    blocks: Count = 1
    """Blocks in a row."""
    kernel_size: PerAxis = 3
    """Kernel size of the stage's convs: one for every spatial axis, or one per axis."""
    up_filters: StageChannels | None = None
    """Output channels of the up-sampling that feeds this stage; null means the stage's ``filters``."""


class InputNorm(Strict):
    """A batch norm of the input itself, before the stem's convs (image-classifiers' ResNets:
    ``bn_data``, which learns a shift per channel but no scale)."""

    scale: bool = True
    """Whether it learns a scale per channel."""
    center: bool = True
    """Whether it learns a shift per channel."""
    epsilon: Epsilon | None = None
    """Epsilon; null means Keras's 0.001."""


class StemPool(Strict):
    """A max pooling after the stem's convs whose window may be larger than its stride, the input
    padded with zeros by (kernel_size - 1) // 2 on both sides (image-classifiers' ``pooling0``;
    PyTorch's MaxPool2d(3, 2, 1) pads with -inf, which is the same after a ReLU)."""

    kernel_size: Count = 3
    """Window on every spatial axis."""
    factor: int = Field(default=2, ge=2, le=64)
    """Stride on every spatial axis."""


class Stem(Strict):
    """Convs that read the input before the first stage (nnU-Net's ResidualEncoder stem): conv, norm
    and activation as the encoder's block sets them (norm then activation after each conv, also
    where the block pre-activates), never residual. A stem that strides (a ResNet's 7x7/2 conv and
    3x3/2 max pool) makes two levels of its own: level 1 is the input at full resolution (after
    ``input_norm``), level 2 the stem's convs' output, and ``encoder.stages[0]`` is level 3, after
    the pool."""

    filters: StageChannels | None = None
    """Output channels of the stem's convs; null means the first stage's filters."""
    convs: Count = 1
    """Convolutions in a row."""
    kernel_size: PerAxis | None = None
    """Kernel size: one for every spatial axis, or one per axis; null means the first stage's."""
    stride: PerAxis = 1
    """Stride of the first conv: one for every spatial axis, or one per axis; above 1 the stem is a
    level of its own (see above), which the decoder up-samples from by this stride."""
    pool: StemPool | None = None
    """A max pooling after the convs, into the first stage (only with a stride above 1); null means none."""
    input_norm: InputNorm | None = None
    """A batch norm of the input before the convs (layer ``stem_input_norm``); null means none."""
    conv_only: bool = False
    """The convs alone, without the block's norm, activation or dropout (MedNeXt's 1x1 stem,
    SegResNet's first conv); a bias as the block's ``bias`` says (null: yes)."""


class EncoderSpec(Strict):
    """The contracting path: ``depth`` levels each ending in a down-sampling, then the bottleneck."""

    type: Literal["unet"] = "unet"
    """The encoder's kind: unet (built here from blocks, the default), backbone (a pretrained
    classifier from keras.applications), vit (a vision transformer on the input, UNETR) or swin (a
    Swin transformer on the input, SwinUNETR)."""
    depth: int = Field(default=4, ge=0, le=12)
    """Number of down-sampling steps (levels 1..depth, then the bottleneck)."""
    filters: Channels | list[Channels] = 64
    """Filters of level 1 (each deeper level multiplies by ``multiplier``), or one per level
    (depth + 1 entries, bottleneck last)."""
    multiplier: float = Field(default=2.0, gt=0, le=64)
    """Channel growth per level when ``filters`` is a single number."""
    max_filters: Channels | None = None
    """Cap on the filters of any level (nnU-Net caps at 320 in 3D, 512 in 2D)."""
    stem: Stem | None = None
    """Convs before the first stage (layers ``stem_conv1``, ...); null means none."""
    block: Block = ConvBlock()
    """The block applied at each level and at the bottleneck."""
    downsample: Downsample = MaxPool()
    """How each level is down-sampled."""
    stages: list[EncoderStage] | None = Field(default=None, min_length=1, max_length=13)
    """The encoder stage by stage (level 1 first, bottleneck last), in place of ``depth``,
    ``filters``, ``multiplier``, ``max_filters`` and the block's ``convs`` and ``kernel_size``."""
    transformer: Transformer | None = None
    """Transformer layers after the bottleneck's block (layers ``bottleneck_vit_*``); null means none."""


DecoderType = Literal["unet", "unet++", "unet3+"]


class Center(Strict):
    """Convs on a backbone's stride-32 output, each with the decoder block's norm and activation
    (norm then activation after each conv; never residual): the bottleneck a backbone lacks."""

    filters: StageChannels
    """Output channels of every conv (segmentation_models: 512)."""
    convs: Count = 2
    """Convolutions in a row."""
    kernel_size: PerAxis = 3
    """Kernel size: one for every spatial axis, or one per axis."""


class BackboneEncoder(Strict):
    """A pretrained image classifier from keras.applications as the encoder, built without its top
    (``include_top=False``). Its stage outputs ("taps", at strides 1 (VGG only), 2, 4, 8 and 16) are
    the decoder's skips and its stride-32 output the bottleneck, so the decoder has 5 stages. Each
    backbone's taps, channels, parameters and legal sizes are one row of
    ``archgen/backbones/table.py``. 2D inputs only; each size a multiple of 32, at least 32. Without
    ``decoder.stages`` the decoder is segmentation_models' (16 filters at level 1, doubling to 256);
    without ``decoder.block``, archgen's default conv block."""

    type: Literal["backbone"] = "backbone"
    name: str
    """The keras.applications model in lower case: vgg16, resnet50, resnet50v2, densenet121,
    mobilenetv2, mobilenetv3small, efficientnetb0, efficientnetv2s, convnexttiny, ..."""
    weights: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    """imagenet (Keras downloads the file into ~/.keras/models on first use; needs 3 input channels),
    null (random initial weights), or the path of a weights file saved from the same backbone built
    with include_top=False (``.weights.h5``, ``.h5`` or ``.keras``), relative to the working directory."""
    adapter: bool = False
    """Put a learned 1x1 convolution from the input's channels to 3 (layer ``backbone_adapter``,
    3C + 3 parameters) before the backbone, which reads 3 channels (RGB, for pretrained weights):
    needed for an input of other than 3 channels."""
    trainable: bool | Annotated[int, Field(ge=0, le=64)] = True
    """true: the whole backbone learns; false: it is frozen (its batch norms then run in inference
    mode); N: only its last N stages learn, where a stage is the layers up to and including a tap
    (the first stage ends at the first tap, the last at the stride-32 output)."""
    center: Center | None = None
    """Convs on the backbone's stride-32 output before the decoder (layers ``bottleneck_conv1``, ...):
    segmentation_models' ``center_block1``/``center_block2`` on a VGG. Null means none."""

    @field_validator("name")
    @classmethod
    def _known_backbone(cls, name: str) -> str:
        from archgen.backbones import BACKBONES
        from archgen.errors import did_you_mean

        if name not in BACKBONES:
            hint = did_you_mean(name.lower(), BACKBONES) if name.lower() not in BACKBONES else \
                f" (did you mean '{name.lower()}'?)"
            raise ValueError(f"unknown backbone{hint}; known: {', '.join(BACKBONES)}")
        return name

    @field_validator("weights")
    @classmethod
    def _weights_source(cls, weights: str | None) -> str | None:
        if weights is not None and not weights.isprintable():
            raise ValueError("a weights path may not hold control or other non-printable characters")
        if weights is None or weights == "imagenet" or weights.endswith((".h5", ".keras")):
            return weights
        from archgen.errors import did_you_mean

        raise ValueError(f"expected imagenet, null, or the path of a weights file ending in .weights.h5, .h5 or "
                         f".keras{did_you_mean(weights, ['imagenet'])}")


class ViTEncoder(Strict):
    """A vision transformer on the input itself (UNETR, Hatamizadeh et al. 2022): patches of
    ``patch_size`` embedded by a conv of that kernel and stride (layer ``vit_patch``), a learned
    position embedding (``vit_pos``), ``layers`` pre-norm transformer layers (``vit_layer1_*``...:
    layer norm, multi-head self-attention, addition, layer norm, an MLP of two Dense layers,
    addition), then a layer norm (``vit_norm``), whose output is the bottleneck. The decoder's levels
    between the input and the bottleneck get their skips from the encoder's own paths: level 1 is
    ``block`` on the input (``enc1``); level L >= 2 is the output of layer ``taps[L - 2]`` on the
    patch grid, brought up by a transposed conv (kernel and stride 2) to the level's filters
    (``encL_proj``), then by as many more steps of a transposed conv and ``block``
    (``encL_prup1_up``, ``encL_prup1``, ...) as the level lies above the bottleneck's next level
    (MONAI's ``UnetrPrUpBlock``). Each level is a factor 2 finer than the one below it, so
    ``patch_size`` is 2 to the number of levels (16 for 4)."""

    type: Literal["vit"] = "vit"
    patch_size: Count = 16
    """Patch edge on every spatial axis, in input pixels: 2 ** len(filters). Each input size must be a
    multiple of it."""
    filters: list[Channels] = Field(min_length=1, max_length=6)
    """Output channels of the encoder's levels below the bottleneck, level 1 (the input's size) first."""
    taps: list[Count] = Field(default=[], max_length=5)
    """The transformer layers (1 = the first) whose outputs feed levels 2, 3, ...: one per level
    but level 1, ascending. MONAI's UNETR reads its ``hidden_states_out[3]``, ``[6]``, ``[9]``:
    layers 4, 7 and 10."""
    embed_dim: Channels = 768
    """Channels of every token (MONAI's ``hidden_size``)."""
    layers: Count = 12
    """Transformer layers in a row."""
    heads: Channels = 12
    """Attention heads; each has embed_dim // heads channels."""
    mlp_dim: Channels = 3072
    """Hidden units of each layer's MLP."""
    mlp_activation: Activation = "gelu"
    """Activation of the MLP's hidden layer."""
    qkv_bias: bool = False
    """Whether the attention's query, key and value projections have a bias; its output projection
    always has one (a layer of its own, ``vit_layerN_attn_bias``, where these have none)."""
    norm_epsilon: Epsilon | None = None
    """Epsilon of the transformer's layer norms; null means Keras's 0.001 (PyTorch's LayerNorm: 0.00001)."""
    final_norm: bool = True
    """A layer norm after the last layer (``vit_norm``), before the bottleneck; the taps are not normed."""
    block: Block = ConvBlock()
    """The block of level 1 and of every step of the taps' paths."""
    up_bias: bool = False
    """Whether the transposed convs of the taps' paths have a bias (MONAI's have none)."""
    tap_blocks: bool = True
    """``block`` after each further transposed conv of a tap's path (``enc{L}_prup{j}``); false: the
    transposed convs alone (MONAI's ``UNETR(conv_block=False)``)."""


class SwinEncoder(Strict):
    """A Swin transformer on the input (SwinUNETR, Hatamizadeh et al. 2022; Liu et al. 2021): patches
    of 2 embedded by a conv of kernel and stride 2 (``swin_patch``, level 2), then one stage per entry
    of ``depths``: that many blocks of window self-attention (``swin{i}_block{j}_*``: layer norm,
    attention within windows of ``window_size`` with a learned bias per relative offset, every second
    block's windows shifted by half a window, addition, layer norm, an MLP, addition), then patch
    merging into the next level (``swin{i}_merge``: each 2x2(x2) block of positions as one, a layer
    norm, ``swin{i}_reduce``: a Dense without bias to twice the channels). Level 1 is ``block`` on the
    input (``enc1``); level L >= 2 is the stage output at its size (level 2: the patches, with
    ``embed_dim`` channels, doubling per level), through a layer norm without scale or shift where
    ``normalize``, then ``block`` where ``blocks_at`` lists it (``encL``; ``bottleneck`` for the
    deepest level, len(depths) + 2, the bottleneck)."""

    type: Literal["swin"] = "swin"
    embed_dim: Channels = 24
    """Channels of the patches (level 2; MONAI's ``feature_size``); each stage doubles them."""
    depths: list[Count] = Field(default=[2, 2, 2, 2], min_length=1, max_length=6)
    """Blocks per stage."""
    heads: list[Channels] = Field(default=[3, 6, 12, 24], min_length=1, max_length=6)
    """Attention heads per stage, one entry per entry of ``depths``."""
    window_size: PerAxis = 7
    """Window edge on every spatial axis, or one per axis; a level not larger than it on an axis is
    one window there, without a shift. A size that is not a whole number of windows is padded with
    zeros at the end."""
    patch_norm: bool = False
    """A layer norm on the patches (``swin_patch_norm``; MONAI's ``patch_norm``)."""
    mlp_ratio: float = Field(default=4.0, gt=0, le=64)
    """Hidden units of each block's MLP, as a multiple of its channels (rounded down)."""
    mlp_activation: Activation = "gelu"
    """Activation of the MLP's hidden layer."""
    qkv_bias: bool = True
    """Whether the attention's query, key and value projection has a bias."""
    norm_epsilon: Epsilon | None = None
    """Epsilon of the layer norms; null means Keras's 0.001 (PyTorch's LayerNorm: 0.00001)."""
    normalize: bool = True
    """Each level's output through a layer norm without scale or shift (``swin_out{L}``) before it is
    used (MONAI's ``normalize``); the stages go on from the un-normed output."""
    block: Block = ConvBlock()
    """The block of level 1 (on the input) and of the levels in ``blocks_at``."""
    blocks_at: list[Count] = Field(default=[2, 3, 4, 6], max_length=8)
    """Levels (2 .. len(depths) + 2) whose output passes through ``block`` before the decoder reads it;
    MONAI's SwinUNETR: all but len(depths) + 1."""
    stage_blocks: bool = False
    """``block`` also at the start of each stage, on the stage's input before its first window-attention
    block (``swin{i}_res_*``; the level's norm and ``blocks_at`` block read the stage's input without
    it): SwinUNETR v2 (MONAI's ``use_v2``, whose block there is a UnetResBlock of kernel 3 with
    instance norm, as MONAI's SwinUNETR's own blocks with its default norm)."""


Encoder = tagged("unet", EncoderSpec, BackboneEncoder, ViTEncoder, SwinEncoder)


class DecoderSpec(Strict):
    """The expanding path: one level per encoder level, deepest first."""

    type: DecoderType = "unet"
    """Topology: unet (each level joins the up-sampled level below and the skip of its own level);
    unet++ (Zhou et al. 2018: nested dense skips, node ``x{i}_{j}`` reads ``x{i}_0..x{i}_{j-1}`` and
    the up-sampled ``x{i+1}_{j-1}``); unet3+ (Huang et al. 2020: each level reads every skip level at
    its scale or finer, brought down as the encoder down-samples, and every deeper level, resized up
    or through a transposed conv, each through a conv to ``cat_channels``, then fuses their
    concatenation with the stage's convs)."""
    cat_channels: Channels | Annotated[list[Channels], Field(min_length=1, max_length=64)] | None = None
    """unet3+: filters of the conv every full-scale input passes, or one per decoder level (level 1
    first); null means encoder level 1's."""
    fusion_norm: Norm | None = None
    """unet3+: the norm of each level's fusion convs (the stage's convs on the concatenation); null
    means the decoder block's. keras-unet-collection's ``unet_3plus_2d`` always gives them batch norm,
    also with ``batch_norm=False``; the convs' bias follows the block's ``bias`` (null: none with a norm)."""

    @field_validator("fusion_norm")
    @classmethod
    def _fusion_norm_is_unet3p(cls, value, info: ValidationInfo):
        if value is not None and info.data.get("type") != "unet3+":
            raise ValueError("applies to decoder.type unet3+ (its fusion convs); for the other decoders set "
                             "decoder.block.norm")
        return value
    deep_supervision: bool = False
    """unet++ and unet3+: every head on level 1 gets a copy on the intermediate outputs: unet++'s top
    nested nodes ``x0_1..x0_{depth-1}`` (named ``<head>_x0_<j>``); unet3+'s deeper levels and the
    bottleneck, resized up to level 1 (named ``<head>_dec<level>``). For unet use
    ``heads[].deep_supervision``."""

    @field_validator("deep_supervision")
    @classmethod
    def _deep_supervision_has_a_topology(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("type") == "unet":
            raise ValueError("applies to decoder.type unet++ and unet3+; for unet give each head the levels "
                             "it supervises (heads[].deep_supervision)")
        return value

    skips: Literal["all", "none"] | list[Count] = "all"
    """Which encoder levels send a skip connection: all (U-Net), none (plain
    encoder-decoder), or a list of levels (1 = full resolution)."""
    align: Align | list[Align] = "crop"
    """How a skip is brought to the up-sampled feature's size: crop the skip (centre,
    asymmetric when the difference is odd), pad the up-sampled feature, resize the skip, or
    none (sizes must already match). One value, or one per level (level 1 first)."""
    merge: Merge = ConcatMerge()
    """How the aligned skip joins the up-sampled feature."""
    merge_at: Literal["after_upsample", "before_upsample"] = "after_upsample"
    """When a level joins its skip: after up-sampling the feature from below (the U-Net), or before,
    so that the up-sampling reads both and undoes the down-sampling into the skip's own stage
    (MONAI's UNet). Before needs a bottleneck of stride 1."""
    last_conv_only: bool = False
    """Level 1's last conv (its block's, or the up-sampling's where level 1 has ``convs: 0``) without
    norm, activation or dropout: the decoder makes the output itself (MONAI's UNet), and a head
    with ``conv: false`` passes it on."""
    upsample: Upsample = TransposeUp()
    """How each level is up-sampled."""
    block: Block | None = None
    """The block of each decoder level; null reuses the encoder's (with a backbone: the default block)."""
    stages: list[DecoderStage] | None = Field(default=None, min_length=0, max_length=12)
    """The decoder stage by stage, level 1 (full resolution) first: one per encoder stage but the
    bottleneck. In place of the block's ``convs`` and ``kernel_size`` and the up-sampling's
    ``keep_channels``; null derives them from the encoder."""


class FusedSides(Strict):
    """U-Net 2's fused output (Qin et al. 2020), as keras-unet-collection's ``u2net_2d`` builds it: a
    side output on each of ``levels`` (a conv of ``kernel_size`` to the head's filters, up-sampled
    to the head's level where deeper, then the head's activation), their concatenation, and on it
    the head's own conv and activation."""

    levels: Annotated[list[Count], Field(min_length=1, max_length=13)]
    """Decoder levels with a side output, in the order they are concatenated (1 = full resolution,
    depth + 1 the bottleneck); each at the head's level or deeper."""
    kernel_size: Count = 3
    """Kernel size of the side outputs' convs."""
    interpolation: Literal["nearest", "bilinear", "linear"] = "bilinear"
    """How a deeper side output is up-sampled to the head's level (bilinear: 2D only)."""
    outputs: bool = False
    """The side outputs are outputs of the model too (deep supervision), named ``<name>_dec<level>``,
    before the fused one."""


class HeadSpec(Strict):
    """One output of the model: a conv on a decoder level."""

    name: Name
    """Output name, also the name of its layer (Keras names outputs after their layers)."""
    filters: Channels
    """Output channels (classes for segmentation, maps for regression)."""
    activation: Activation = "linear"
    """softmax or sigmoid for segmentation, linear for logits or regression."""
    kernel_size: Count = 1
    """Kernel size of the head conv."""
    conv: bool = True
    """false: no conv, the level's features as they are (through ``activation``), for a decoder that
    makes the output itself (``decoder.last_conv_only``); ``filters`` must equal their channels."""
    level: Count = 1
    """Decoder level the head reads (1 = full resolution; depth + 1 reads the bottleneck)."""
    deep_supervision: list[Count] = Field(default=[], max_length=64)
    """Deeper decoder levels that get a copy of this head (nnU-Net's deep supervision);
    each output is named ``<name>_dec<level>``."""

    @field_validator("deep_supervision")
    @classmethod
    def _deeper_levels_once_each(cls, levels: list[int], info: ValidationInfo) -> list[int]:
        level = info.data.get("level")
        for j, lv in enumerate(levels):
            if level is not None and lv <= level:
                raise ValueError(f"entry {j} is level {lv}, which is not deeper than the head's own level {level}: "
                                 f"deep supervision copies the head onto deeper levels ({level + 1} and up)")
            if lv in levels[:j]:
                raise ValueError(f"level {lv} is listed twice: each level gets one copy of the head")
        return levels
    fuse: FusedSides | None = None
    """A fused output (U-Net 2): side outputs on several levels, concatenated, then the head's conv
    (``kernel_size``, usually 1) on them; null means the head's conv reads its level directly."""
    pre_activation: bool = False
    """The decoder block's norm and activation before the head's conv (layers ``<name>_norm``,
    ``<name>_act``), as a network of pre-activation blocks ends: SegResNet's final group norm and
    ReLU before its 1x1 conv."""
    pre_conv_kernel_size: Count | None = None
    """A conv to the head's ``filters`` with this kernel, then the decoder block's norm and
    activation, before the head's conv (layers ``<name>_pre_conv``, ``_pre_norm``, ``_pre_act``; its
    bias as the block's convs' unless ``pre_conv_bias`` says): V-Net's output transition, 5, batch
    norm, ELU, then the 1x1 conv. Null adds none."""
    pre_conv_bias: bool | None = None
    """Whether that conv has a bias; null means as the decoder block's convs (MONAI's
    ``VNet(bias=True)`` gives it one while its up transitions' convs have none)."""


class ArchSpec(Strict):
    """An encoder-decoder network: input, encoder, decoder, heads."""

    name: Name = "unet"
    """Model name; also the default output file stem."""
    input: InputSpec
    """The input tensor."""
    padding: Padding = "same"
    """Padding of every conv whose block does not set its own."""
    encoder: Encoder = EncoderSpec()
    """The contracting path: built from blocks (``type: unet``), a pretrained backbone, or a vision
    transformer on the input (``type: vit``, ``type: swin``)."""
    decoder: DecoderSpec = DecoderSpec()
    """The expanding path."""
    heads: list[HeadSpec] = Field(min_length=1, max_length=64)
    """The model's outputs."""
    data: DataSpec | None = None
    """Training data: folders, split, normalisation, patches (``archgen train``; see archgen/config/train.py)."""
    augment: AugmentSpec | None = None
    """Random transforms of training patches (``archgen train``)."""
    train: TrainSpec | None = None
    """Losses, metrics, optimizer, steps (``archgen train``)."""

    @model_validator(mode="after")
    def _training_fits_the_network(self) -> ArchSpec:
        if self.data is not None or self.augment is not None or self.train is not None:
            check_training(self)
        return self

    @property
    def ndim(self) -> int:
        """Number of spatial axes (1, 2 or 3)."""
        return len(self.input.shape) - 1
