"""Plan -> ``keras.Model`` (functional API): one small function per layer kind.

The emitter translates; it computes no shapes. Crops, pads and resize targets come solved
in ``LayerPlan.attrs``. Only built-in layers are used, but for the transformer's position embedding
(registered with Keras in ``blocks.py``), so a saved model loads with ``safe_mode=True``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable

from archgen.backend import import_keras
from archgen.emit.backbone import emit_backbone, emit_tap
from archgen.emit.blocks import BLOCK_EMITTERS
from archgen.emit.initialize import numpy_sampling
from archgen.errors import EmitError, did_you_mean
from archgen.planner.ir import LayerPlan, Plan

keras = import_keras()

L = keras.layers
Emitter = Callable[[LayerPlan, list[Any], int], Any]


def _nd(base: str, ndim: int, suffix: str = "") -> type:
    return getattr(L, f"{base}{ndim}D{suffix}")


def emit_conv(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    a = layer.attrs
    return _nd("Conv", ndim)(a["filters"], a["kernel"], strides=a["stride"], padding=a["padding"],
                             dilation_rate=a["dilation"], activation=a["activation"], use_bias=a["use_bias"],
                             name=layer.name)(xs[0])


def emit_conv_transpose(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    a = layer.attrs
    return _nd("Conv", ndim, "Transpose")(a["filters"], a["kernel"], strides=a["stride"],
                                          padding=a.get("padding", "same"), activation=a["activation"],
                                          use_bias=a["use_bias"], name=layer.name)(xs[0])


def emit_maxpool(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    f = layer.attrs["factor"]
    return _nd("MaxPooling", ndim)(pool_size=f, strides=f, name=layer.name)(xs[0])


def emit_avgpool(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    f = layer.attrs["factor"]
    return _nd("AveragePooling", ndim)(pool_size=f, strides=f, name=layer.name)(xs[0])


def emit_upsample(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    a = layer.attrs
    if ndim == 2:
        return L.UpSampling2D(a["factor"], interpolation=a["interpolation"], name=layer.name)(xs[0])
    return _nd("UpSampling", ndim)(a["factor"], name=layer.name)(xs[0])


def emit_norm(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    a = layer.attrs
    kind, affine = a["norm"], a.get("affine", True)
    options = {"center": affine, "scale": affine, "name": layer.name}
    if a.get("epsilon") is not None:
        options["epsilon"] = a["epsilon"]
    if kind == "batch":
        return L.BatchNormalization(**options)(xs[0])
    if kind in ("group", "instance"):  # groups=-1: one group per channel, i.e. instance norm
        return L.GroupNormalization(groups=-1 if kind == "instance" else a["groups"], **options)(xs[0])
    return L.LayerNormalization(axis=-1, **options)(xs[0])


def emit_activation(layer: LayerPlan, xs: list[Any], ndim: int) -> Any:
    a = layer.attrs
    if a["activation"] == "prelu":  # one slope for the whole tensor, as PyTorch's nn.PReLU()
        return L.PReLU(shared_axes=list(range(1, ndim + 2)), alpha_initializer=keras.initializers.Constant(0.25),
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


EMITTERS: dict[str, Emitter] = {
    "conv": emit_conv,
    "conv_transpose": emit_conv_transpose,
    "maxpool": emit_maxpool,
    "avgpool": emit_avgpool,
    "upsample": emit_upsample,
    "norm": emit_norm,
    "activation": emit_activation,
    "dropout": emit_dropout,
    "crop": emit_crop,
    "pad": emit_pad,
    "resize": emit_resize,
    "concat": emit_concat,
    "add": emit_add,
    "multiply": emit_multiply,
    "backbone": emit_backbone,
    "tap": emit_tap,
    **BLOCK_EMITTERS,  # squeeze-and-excitation and the transformer bottleneck
}


PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def emit_model(plan: Plan, precision: str = "float32") -> keras.Model:
    """Build the functional model of ``plan``; layer names are the plan's names.

    ``precision`` is a Keras dtype policy: ``mixed_bfloat16`` / ``mixed_float16`` compute in
    16 bits with float32 variables (the heads stay float32 so softmax and losses are stable).
    Returns a model with one output per head (a single tensor when there is one head). Keras
    names an output after the layer that makes it, and the plan names each head's layer after
    the head, so ``model.output_names`` are the heads' names and ``compile`` takes a loss dict
    keyed by them.
    """
    if precision not in PRECISIONS:
        raise EmitError(f"unknown precision; expected one of {', '.join(PRECISIONS)}", path="--precision",
                        value=precision)
    with _policy(precision), _recursion_room(len(plan.layers)), numpy_sampling(keras.backend.backend()):
        return _emit(plan)


@contextmanager
def _recursion_room(layers: int):
    """Keras walks a functional graph recursively, a few frames per layer: deep but legal plans
    (the planner caps them) need more than Python's default limit of 1,000."""
    import sys

    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, 10 * layers + 1_000))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


@contextmanager
def _policy(policy):
    """Keras's dtype policy is global; set it for the layers made inside, then restore it."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _emit(plan: Plan) -> keras.Model:
    tensors: dict[str, Any] = {}
    for layer in plan.layers:
        if layer.kind == "input":
            tensors[layer.name] = keras.Input(shape=layer.shape, name=layer.name)
            continue
        emitter = EMITTERS.get(layer.kind)
        if emitter is None:
            raise EmitError(f"no emitter for layer kind '{layer.kind}'{did_you_mean(layer.kind, EMITTERS)}",
                            path=layer.name)
        try:
            with _policy("float32" if layer.group == "head" else keras.config.dtype_policy()):
                tensors[layer.name] = emitter(layer, [tensors[i] for i in layer.inputs], plan.ndim)
        except (ValueError, TypeError) as exc:
            raise EmitError(f"Keras refused this layer: {' '.join(str(exc).split())[:400]}", path=layer.name) from None
    outputs = [tensors[name] for name in plan.outputs.values()]
    return keras.Model(tensors["input"], outputs[0] if len(outputs) == 1 else outputs, name=plan.name)
