"""Plan -> ``keras.Model`` (functional API): each layer by its kind's emitter (``archgen.emit.layers``).

The emitter translates; it computes no shapes. Crops, pads and resize targets come solved
in ``LayerPlan.attrs``. Only built-in layers are used, but for the transformer's position embedding
(registered with Keras in ``blocks.py``), so a saved model loads with ``safe_mode=True``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable

from archgen.backend import import_keras
from archgen.emit.initialize import numpy_sampling
from archgen.errors import EmitError, did_you_mean
from archgen.kinds import KINDS
from archgen.planner.ir import LayerPlan, Plan

keras = import_keras()

L = keras.layers
Emitter = Callable[[LayerPlan, list[Any], int], Any]


def _emitters() -> dict[str, Emitter]:
    """Each registered kind's emitter; a kind whose record names none is an error at import."""
    from archgen.emit import layers

    missing = [kind.name for kind in KINDS.values() if not hasattr(layers, kind.emitter)]
    if missing:
        raise ImportError(f"no Keras emitter for layer kinds {missing}")
    return {name: getattr(layers, kind.emitter) for name, kind in KINDS.items()}


EMITTERS: dict[str, Emitter] = _emitters()


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
