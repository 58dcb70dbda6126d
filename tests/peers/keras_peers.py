"""Helpers for comparing archgen with Keras networks: counts, random weights, copies, outputs."""

from __future__ import annotations

import numpy as np


def keras_counts(model) -> tuple[int, int]:
    """(trainable parameters, non-trainable ones such as batch norm's moving statistics)."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return trainable, model.count_params() - trainable


def plan_counts(plan) -> tuple[int, int]:
    """The plan's (trainable, non-trainable) split: a batch norm's moving mean and variance are half
    of its parameters, and the only weights Keras does not train."""
    frozen = sum(layer.params // 2 for layer in plan.layers if layer.kind == "norm" and layer.attrs["norm"] == "batch")
    return plan.total_params - frozen, frozen


def randomize(model, seed: int = 0) -> None:
    """Every weight random; scales and variances positive around 1, so a mix-up would show."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        name = w.path.rsplit("/", 1)[-1]
        if name in ("gamma", "moving_variance"):
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
        else:
            w.assign((rng.normal(size=w.shape) * 0.1).astype("float32"))


def copy_by_name(model, peer, peer_name_of, transform=None) -> None:
    """Give each archgen layer with weights the weights of the peer layer ``peer_name_of(name)``;
    ``transform(name, weights)`` reshapes them where the layers' layouts differ."""
    for layer in model.layers:
        if not layer.weights:
            continue
        weights = peer_name_of(layer.name)
        weights = peer.get_layer(weights).get_weights() if isinstance(weights, str) else weights
        layer.set_weights(transform(layer.name, weights) if transform else weights)


def same_outputs(model, peer, shape: tuple[int, ...], tol: float = 1e-4, seed: int = 1) -> None:
    x = np.random.default_rng(seed).normal(size=(2, *shape)).astype("float32")
    y, y_peer = np.asarray(model(x, training=False)), np.asarray(peer(x, training=False))
    assert y.shape == y_peer.shape
    np.testing.assert_allclose(y, y_peer, atol=tol, rtol=0)
