"""Keras's internals: the sampling functions of its JAX back end (``keras.src.backend.jax.random``),
and a functional model's graph (``_keras_history``, ``_inbound_nodes``, ``_nodes_by_depth``).

Keras draws every initial weight on JAX through ``uniform``, ``normal`` and ``truncated_normal``
of that module, and turns its seeds into JAX keys with ``jax_draw_seed``. Where a Keras release
keeps them elsewhere, nothing is replaced and models build as Keras builds them, only slower.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

WRITTEN_FOR = "keras>=3,<4"
SAMPLERS = ("uniform", "normal", "truncated_normal")


@contextmanager
def jax_samplers_replaced(**replacements: Callable[..., Any]) -> Iterator[bool]:
    """While the block runs, Keras's JAX sampling functions named in ``replacements`` (of
    ``SAMPLERS``) are those given; afterwards Keras's own again. Yields whether they were replaced
    (False where this Keras has no such functions, or no ``jax_draw_seed`` to seed them with)."""
    try:
        from keras.src.backend.jax import random as jax_random
    except ImportError:  # Keras moved its back end
        yield False
        return
    if not all(hasattr(jax_random, name) for name in (*replacements, "jax_draw_seed")):
        yield False
        return
    saved = {name: getattr(jax_random, name) for name in replacements}
    for name, function in replacements.items():
        setattr(jax_random, name, function)
    try:
        yield True
    finally:
        for name, function in saved.items():
            setattr(jax_random, name, function)


def jax_seed_key(seed: Any) -> Any:
    """The JAX key Keras's JAX back end draws from ``seed`` (an int, a ``SeedGenerator`` or a key);
    drawing from a ``SeedGenerator`` advances it, as Keras's own sampling does."""
    from keras.src.backend.jax.random import jax_draw_seed

    return jax_draw_seed(seed)


def producer(tensor: Any) -> tuple[Any, int, list[Any]] | None:
    """The operation that made a symbolic ``tensor`` in a functional graph, which of its outputs the
    tensor is, and that call's input tensors (``KerasTensor._keras_history`` and the operation's
    ``_inbound_nodes``); None for a tensor no operation made (an input)."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    operation, node_index, tensor_index = history
    node = operation._inbound_nodes[node_index]
    return operation, tensor_index, list(node.input_tensors)


def calls_in_run_order(model: Any) -> list[tuple[Any, list[Any], list[Any]]] | None:
    """Each call of a functional ``model``'s graph as ``(operation, input tensors, output tensors)``,
    in an order Keras can run them (inputs before what reads them; ``Functional._nodes_by_depth``,
    deepest first); None for a model without such a graph."""
    by_depth = getattr(model, "_nodes_by_depth", None)
    if not by_depth:
        return None
    return [(node.operation, list(node.input_tensors), list(node.outputs))
            for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]]
