"""Per-pixel layers: normalisation, activations and dropout."""

from __future__ import annotations

from dataclasses import dataclass

from archgen.kinds.base import (
    Attrs,
    KerasForm,
    LayerKind,
    Locality,
    NotThisKind,
    each_axis,
    first_input,
    known_params,
    no_edges,
    no_flops,
    no_workspace,
    pixel,
    ranked,
    same_span,
    unit_factor,
)
from archgen.kinds.memory import GRAD_FROM_OUTPUT, NORM_KEPT, NORM_TEMPORARIES


@dataclass(frozen=True)
class NormAttrs(Attrs):
    """``norm``: batch | instance | group | layer | grn (global response normalisation, MedNeXt's);
    ``scale``/``center`` None follow ``affine``."""

    norm: str
    groups: int
    epsilon: float | None
    affine: bool
    scale: bool | None = None
    center: bool | None = None


@dataclass(frozen=True)
class ActivationAttrs(Attrs):
    activation: str
    negative_slope: float | None = None


@dataclass(frozen=True)
class DropoutAttrs(Attrs):
    rate: float


def norm_locality(a) -> tuple[Locality, str]:
    """Batch norm (at inference) and archgen's layer norm (each pixel over its channels) are per
    pixel; instance and group norm and the global response norm take statistics over the whole map."""
    if a["norm"] in ("instance", "group"):
        return Locality.WHOLE_MAP, f"{a['norm']} norm: statistics over the whole map"
    if a["norm"] == "grn":
        return Locality.WHOLE_MAP, "global response norm: each channel's norm over the whole map"
    return Locality.PIXEL, ""


def norm_saved(layer, elements):  # batch norm: its input; group/layer norm also a normalised copy
    return list(layer.inputs), NORM_KEPT * elements[layer.name]


def activation_saved(layer, elements):
    act = layer.attrs.get("activation") or "linear"
    return ([layer.name] if act in GRAD_FROM_OUTPUT else list(layer.inputs)), 0


def norm_from_keras(layer) -> dict:
    cls = type(layer).__name__
    if cls == "BatchNormalization":
        return {"norm": "batch"}
    if cls == "GroupNormalization":
        return {"norm": "instance" if layer.groups == -1 else "group"}
    if cls == "GlobalResponseNorm":
        return {"norm": "grn"}
    if tuple(each_axis(layer.axis, 1)) not in ((-1,), (len(layer.input.shape) - 1,)):
        raise NotThisKind("a layer norm over spatial axes")
    return {"norm": "layer"}


KINDS = (
    LayerKind("norm", NormAttrs, size=first_input, factor=unit_factor, params=known_params, flops=no_flops, span=same_span,
              saved=norm_saved, workspace=lambda layer, elements: NORM_TEMPORARIES * elements[layer.name],
              locality=norm_locality, sees_edges=no_edges, note=lambda layer: layer.attrs["norm"],
              emitter="emit_norm",
              keras=KerasForm(("BatchNormalization", "GroupNormalization", "LayerNormalization", "GlobalResponseNorm"),
                              norm_from_keras)),
    LayerKind("activation", ActivationAttrs, size=first_input, factor=unit_factor, params=known_params, flops=no_flops,
              span=same_span, saved=activation_saved, workspace=no_workspace, locality=pixel, sees_edges=no_edges,
              note=lambda layer: layer.attrs["activation"], emitter="emit_activation",
              # per pixel: a function of each value, or a fixed scale per channel
              keras=KerasForm(("Activation", "ReLU", "LeakyReLU", "PReLU", "Softmax", "ELU", "Identity", "Rescaling",
                               "Normalization", "LayerScale"), lambda layer: {"activation": "linear"})),
    LayerKind("dropout", DropoutAttrs, size=first_input, factor=unit_factor, params=known_params, flops=no_flops,
              span=same_span, saved=lambda layer, elements: ([], elements[layer.name]),  # the mask
              workspace=no_workspace, locality=pixel, sees_edges=no_edges,
              note=lambda layer: f"rate {layer.attrs['rate']}", emitter="emit_dropout",
              keras=KerasForm(("Dropout", *ranked("SpatialDropout")))),
)

