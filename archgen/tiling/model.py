"""A Keras model's geometry: checked against a plan (``fitted_geometry``), or, for a model with a
fixed input size and no config, read from its layers through the registry of layer kinds (each
Keras layer archgen emits is mapped back to its kind; a layer of any other class is an error).
Imports Keras only through the model it is given."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from fractions import Fraction
from typing import Any, Sequence

from archgen.errors import PlanError
from archgen.kinds import KINDS, LayerKind, Locality, kind_of
from archgen.kinds.base import NotThisKind
from archgen.planner.build import AXIS_NAMES
from archgen.planner.ir import Plan
from archgen.tiling.geometry import Geometry, plan_geometry, static_head


def load_model(path: str | os.PathLike):
    """The model in a ``.keras`` file, checked by ``archgen.model_file`` before Keras reads it."""
    from archgen.model_file import load_model as load_checked

    return load_checked(path)


def check_model(model) -> None:
    """Refuse, naming ``predict_tiled``'s argument, what is not a Keras model with symbolic inputs
    (None, a number, a subclassed model never called): reading its geometry would fail deep inside
    with Python's own error. Keras is not imported here: a Keras model exists only once it is."""
    import sys

    keras = sys.modules.get("keras")
    if keras is None or not isinstance(model, keras.Model):
        shown = model if model is None or isinstance(model, (bool, int, float, bytes)) else type(model).__name__
        raise PlanError("expected a Keras model or the path of a .keras file", path="model_or_path", value=shown)
    try:
        inputs = list(model.inputs)
        shape = tuple(inputs[0].shape)
        list(model.outputs)
    except Exception:
        inputs, shape = [], ()
    if not inputs or not shape:
        raise PlanError("has no symbolic inputs (a subclassed model, or one never built); tiling reads the "
                        "layer graph of a functional model such as archgen builds", path="model_or_path",
                        value=getattr(model, "name", type(model).__name__))


def output_names(model) -> list[str]:
    """The model's output names in output order (archgen names them after the heads)."""
    from archgen.compat.keras import producer

    names = getattr(model, "output_names", None)
    if names and len(names) == len(model.outputs):
        return list(names)
    return [producer(tensor)[0].name for tensor in model.outputs]


def model_geometry(model) -> Geometry:
    """The geometry of a Keras model alone: possible only with a fixed input size.

    Each layer is mapped back to archgen's layer kind (``keras_kind``) and the registry says how it
    divides the resolution, whether it reads the whole map and whether it sees where a tile ends, as
    it does for a plan. The period is the product of the down-sampling factors of all layers; a
    head's resolution comes from following first inputs back to the input (through a nested model,
    such as a backbone, from the output the head reads), as archgen lays out a U-Net: encoder,
    bottleneck, then each decoder level's up-sampling first.
    """
    check_model(model)
    shape = tuple(model.inputs[0].shape)
    ndim = len(shape) - 2
    fixed = tuple(shape[1:-1])
    if ndim not in AXIS_NAMES:
        raise PlanError(f"has {ndim} spatial axes; tiling handles 1, 2 or 3", path="model", value=list(shape))
    if any(n is None for n in fixed):
        raise PlanError("takes any legal input size, and which sizes are legal is not stored in the model; "
                        "pass plan= or config= (archgen predict --config CONFIG)", path="model",
                        value=["?" if n is None else n for n in shape[1:]])
    layers = list(_every_layer(model))
    kinds = {id(layer): keras_kind(layer) for layer in layers}
    memo: dict[int, tuple[Fraction, ...]] = {}
    depth = [_chain_factor(out, kinds, ndim, memo) for layer in layers for out in _outputs(layer)]
    # tiles start on the grid of the coarsest map (a parallel strided shortcut is the same grid)
    period = tuple(math.lcm(*(int(f[axis]) for f in depth if f[axis] >= 1 and f[axis].denominator == 1))
                   for axis in range(ndim))
    heads = []
    for name, tensor in zip(output_names(model), model.outputs):
        scale = tuple(1 / f for f in _chain_factor(tensor, kinds, ndim, memo))
        heads.append(static_head(name, fixed, tuple(tensor.shape[1:-1]), scale))
    whole_map, exact = [], True
    for layer in layers:
        name, attrs = kinds[id(layer)]
        locality, why = kind_of(name).locality(attrs)
        if locality is Locality.WHOLE_MAP:
            whole_map.append(f"{layer.name} ({why})")
        exact = exact and not kind_of(name).sees_edges(attrs)
    return Geometry(ndim, shape[-1], period, tuple(heads), fixed, (None,) * ndim, exact and not whole_map,
                    tuple(whole_map))


def _every_layer(model):
    """The model's layers, those of nested models (a backbone) in their place."""
    for layer in model.layers:
        if _nested(layer):
            yield from _every_layer(layer)
        else:
            yield layer


def _nested(layer) -> bool:
    return hasattr(layer, "layers") and hasattr(layer, "outputs")


def _spatial(tensor) -> tuple:
    return tuple(tensor.shape[1:-1])


def keras_kind(layer) -> tuple[str, dict[str, Any]]:
    """archgen's layer kind of a Keras layer, and the attributes the kind's facts read: each kind
    names its Keras classes and reads them (``LayerKind.keras``).

    A class archgen does not emit is an error: what it reads, and whether its output near a tile's
    border depends on where the tile ends, cannot be told from its name."""
    cls = type(layer).__name__
    kind = _kinds_by_class().get(cls)
    if kind is None:
        raise _unknown(layer, f"a {cls}")
    try:
        return kind.name, kind.keras.attrs(layer)
    except NotThisKind as exc:
        raise _unknown(layer, str(exc)) from None


@functools.cache
def _kinds_by_class() -> dict[str, LayerKind]:
    table: dict[str, LayerKind] = {}
    for kind in KINDS.values():
        for cls in kind.keras.classes if kind.keras else ():
            assert cls not in table, f"Keras class {cls} claimed by {table[cls].name} and {kind.name}"
            table[cls] = kind
    return table


def _unknown(layer, what: str) -> PlanError:
    return PlanError(f"layer {layer.name} is {what}, which archgen does not build, so whether tiles of this "
                     f"model stitch exactly cannot be told; pass plan= or config= (archgen predict --config "
                     f"CONFIG)", path="model", value=type(layer).__name__)


def _factor(layer, kind: tuple[str, dict[str, Any]], ndim: int) -> tuple[Fraction, ...]:
    """How much ``layer`` divides the resolution per axis: the kind's factor, or, for a resize to
    another layer's size, its input's size over its output's."""
    name, attrs = kind
    if name == "resize":
        return tuple(Fraction(int(i), int(o)) for i, o in zip(_spatial(layer.input), _spatial(layer.output)))
    return tuple(kind_of(name).factor(attrs, 3)[:ndim])


def _outputs(layer) -> list:
    out = layer.output
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _chain_factor(tensor, kinds: dict, ndim: int, memo: dict) -> tuple[Fraction, ...]:
    """The resolution factor of ``tensor`` relative to the model's input: the product of the factors
    of the layers met following first inputs back (into a nested model through the output read).
    ``memo`` keeps each tensor's factor, so asking for every layer's output is linear."""
    from archgen.compat.keras import producer

    chain = []  # (tensor, its layer's own factor), from the tensor asked for back towards the input
    factor = (Fraction(1),) * ndim
    while True:
        if id(tensor) in memo:
            factor = memo[id(tensor)]
            break
        made = producer(tensor)
        if made is None:
            break
        layer, index, inputs = made
        if _nested(layer):
            own = _chain_factor(layer.outputs[index], kinds, ndim, memo)  # its input leads back out below
        elif id(layer) in kinds:
            own = _factor(layer, kinds[id(layer)], ndim)
        else:
            own = (Fraction(1),) * ndim
        chain.append((tensor, own))
        if not inputs:
            break
        tensor = inputs[0]
    for done, own in reversed(chain):
        factor = tuple(a * b for a, b in zip(factor, own))
        memo[id(done)] = factor
    return factor


def fitted_geometry(plan: Plan, model) -> Geometry:
    """The plan's geometry, checked against the model, with the model's own fixed sizes."""
    check_model(model)
    if not isinstance(plan, Plan):
        raise PlanError("expected a plan from archgen.plan(config)", path="plan", value=type(plan).__name__)
    geo = plan_geometry(plan)
    shape = tuple(model.inputs[0].shape)
    fixed = tuple(shape[1:-1])
    problem = None
    if len(fixed) != geo.ndim:
        problem = f"the model has {len(fixed)} spatial axes, the plan {geo.ndim}"
    elif shape[-1] != geo.channels:
        problem = f"the model takes {shape[-1]} input channels, the plan {geo.channels}"
    elif len(model.outputs) != len(geo.heads):
        problem = f"the model has {len(model.outputs)} outputs, the plan {len(geo.heads)} heads"
    elif any(n is None and planned is not None for n, planned in zip(fixed, geo.fixed)):
        problem = "the model takes any size where the plan fixes one; plan it with a free size"
    elif any(rule is None for rule in geo.rules) and fixed != geo.fixed:
        problem = f"the model takes {list(fixed)}, the plan {list(geo.fixed)}"
    elif model.count_params() != plan.total_params:  # e.g. built with other filters or depth
        problem = f"the model has {model.count_params():,} parameters, the plan {plan.total_params:,}"
    else:
        problem = _output_mismatch(plan, geo, model, fixed)
    if problem:
        raise PlanError(f"the plan does not describe this model: {problem}", path="plan", value=plan.name)
    return dataclasses.replace(geo, fixed=fixed)


def _output_mismatch(plan: Plan, geo: Geometry, model, fixed: tuple[int | None, ...]) -> str | None:
    for head, tensor in zip(geo.heads, model.outputs):
        out = tuple(tensor.shape[1:])
        planned = plan.output_shapes[head.name][-1]
        if out[-1] != planned:
            return f"output {head.name} has {out[-1]} channels in the model, {planned} in the plan"
        for axis, (n, o) in enumerate(zip(fixed, out[:-1])):
            if n is not None and o is not None and head.size(n, axis) != o:
                return (f"output {head.name} is {o} for an input of {n} in the model, {head.size(n, axis)} "
                        f"in the plan")
    return None


def plan_for_model(config: Any, model, overrides: Sequence[str] = ()) -> Plan:
    """Plan ``config`` (with ``overrides``) at the model's own input shape."""
    check_model(model)
    return plan_for_shape(config, tuple(model.inputs[0].shape[1:]), overrides)


def plan_for_shape(config: Any, shape: Sequence[int | None], overrides: Sequence[str] = ()) -> Plan:
    """Plan ``config`` (with ``overrides``) at input ``shape`` = ``(*spatial, C)``, None for a free size.

    ``config`` is a config file's path, or any other form ``archgen.plan`` takes (a mapping, a
    DictConfig, an ArchSpec); anything else is refused naming ``config``."""
    from archgen.planner import make_plan

    text = "[" + ",".join("null" if n is None else str(int(n)) for n in shape) + "]"
    if isinstance(config, (str, os.PathLike)):
        from archgen.config import load_spec

        return make_plan(load_spec(config, [*overrides, f"input.shape={text}"]))
    from archgen.api import plan
    from archgen.config.load import check_overrides

    return plan(config, [*check_overrides(overrides), f"input.shape={text}"])


# --------------------------------------------------------------------------------------------
