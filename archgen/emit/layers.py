"""Every layer kind's Keras layer: one small function per kind, named by the kind's record
(``LayerKind.emitter`` in ``archgen.kinds``). They translate; they compute no shapes (crops, pads
and resize targets come solved in ``LayerPlan.attrs``).
"""

from __future__ import annotations

from typing import Any

from archgen.backend import import_keras
from archgen.emit.backbone import emit_backbone, emit_tap  # noqa: F401  (named by the backbone kinds)
from archgen.emit.blocks import (emit_attention, emit_bias, emit_dense, emit_global_pool,  # noqa: F401
                                 emit_position_embedding, emit_scale)
from archgen.emit.own_layers import (DepthwiseConvTranspose, GlobalResponseNorm, LinearUpSampling, PatchMerge,
                                     WindowAttention)
from archgen.planner.ir import LayerPlan

keras = import_keras()
L = keras.layers


def emit_input(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    return keras.Input(shape=layer.shape, name=layer.name)


def _nd(base: str, ndim: int, suffix: str = "") -> type:
    return getattr(L, f"{base}{ndim}D{suffix}")


def emit_conv(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    a = layer.attrs
    return _nd("Conv", ndim)(a["filters"], a["kernel"], strides=a["stride"], padding=a["padding"],
                             dilation_rate=a["dilation"], activation=a["activation"], use_bias=a["use_bias"],
                             name=layer.name)(xs[0])


def emit_conv_transpose(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    a = layer.attrs
    padding = a.get("padding", "same")
    # "valid" with output_padding 0 is the full output, (n - 1) * stride + kernel, also where the
    # kernel is smaller than the stride (Keras's default there is n * stride).
    return _nd("Conv", ndim, "Transpose")(a["filters"], a["kernel"], strides=a["stride"], padding=padding,
                                          output_padding=0 if padding == "valid" else None,
                                          activation=a["activation"], use_bias=a["use_bias"],
                                          name=layer.name)(xs[0])


def emit_depthwise_conv(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    a = layer.attrs
    options = dict(strides=a["stride"], padding=a["padding"], dilation_rate=a["dilation"],
                   activation=a["activation"], use_bias=a["use_bias"], name=layer.name)
    if ndim == 3:  # Keras has no DepthwiseConv3D: a conv of one group per channel is one
        return L.Conv3D(a["filters"], a["kernel"], groups=a["filters"], **options)(xs[0])
    return _nd("DepthwiseConv", ndim)(a["kernel"], depth_multiplier=1, **options)(xs[0])


def emit_depthwise_conv_transpose(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    a = layer.attrs
    kernel, stride = (_axes(a[key], ndim) for key in ("kernel", "stride"))
    return DepthwiseConvTranspose(kernel, stride, use_bias=a["use_bias"], name=layer.name)(xs[0])


def _axes(value: Any, ndim: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * ndim


def emit_maxpool(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    f = layer.attrs["factor"]
    return _nd("MaxPooling", ndim)(pool_size=layer.attrs.get("window") or f, strides=f, name=layer.name)(xs[0])


def emit_avgpool(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    f = layer.attrs["factor"]
    return _nd("AveragePooling", ndim)(pool_size=f, strides=f, name=layer.name)(xs[0])


def emit_upsample(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    a = layer.attrs
    if ndim == 2:  # linear in 2D is bilinear
        interpolation = "bilinear" if a["interpolation"] == "linear" else a["interpolation"]
        return L.UpSampling2D(a["factor"], interpolation=interpolation, name=layer.name)(xs[0])
    if a["interpolation"] == "linear":
        return LinearUpSampling(_axes(a["factor"], ndim), name=layer.name)(xs[0])
    return _nd("UpSampling", ndim)(a["factor"], name=layer.name)(xs[0])


def emit_norm(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    a = layer.attrs
    kind, affine = a["norm"], a.get("affine", True)
    if kind == "grn":
        return GlobalResponseNorm(name=layer.name)(xs[0])
    options = {"center": a.get("center", affine), "scale": a.get("scale", affine), "name": layer.name}
    if a.get("epsilon") is not None:
        options["epsilon"] = a["epsilon"]
    if kind == "batch":
        return L.BatchNormalization(**options)(xs[0])
    if kind in ("group", "instance"):  # groups=-1: one group per channel, i.e. instance norm
        return L.GroupNormalization(groups=-1 if kind == "instance" else a["groups"], **options)(xs[0])
    return L.LayerNormalization(axis=-1, **options)(xs[0])


def emit_activation(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    a = layer.attrs
    if a["activation"] in ("prelu", "prelu_channel"):  # PyTorch's nn.PReLU(): one slope, or one per channel
        shared = list(range(1, ndim + 2 if a["activation"] == "prelu" else ndim + 1))
        return L.PReLU(shared_axes=shared, alpha_initializer=keras.initializers.Constant(0.25),
                       name=layer.name)(xs[0])
    if a.get("negative_slope") is not None:
        return L.LeakyReLU(negative_slope=a["negative_slope"], name=layer.name)(xs[0])
    return L.Activation(a["activation"], name=layer.name)(xs[0])


def emit_dropout(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    return L.Dropout(layer.attrs["rate"], name=layer.name)(xs[0])


def emit_crop(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    crop = layer.attrs["cropping"]
    return _nd("Cropping", ndim)(crop[0] if ndim == 1 else crop, name=layer.name)(xs[0])


def emit_pad(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    pad = layer.attrs["padding"]
    return _nd("ZeroPadding", ndim)(pad[0] if ndim == 1 else pad, name=layer.name)(xs[0])


def emit_resize(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    height, width = layer.attrs["size"]
    return L.Resizing(height, width, interpolation="bilinear", name=layer.name)(xs[0])


def emit_concat(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    return L.Concatenate(axis=-1, name=layer.name)(xs)


def emit_add(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    return L.Add(name=layer.name)(xs)


def emit_multiply(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    return L.Multiply(name=layer.name)(xs)


def emit_window_attention(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    a = layer.attrs
    return WindowAttention(a["heads"], a["window"], a["shift"], qkv_bias=a["qkv_bias"], name=layer.name)(xs[0])


def emit_patch_merge(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    return PatchMerge(name=layer.name)(xs[0])
