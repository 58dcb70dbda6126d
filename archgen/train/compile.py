"""The Keras side of a training setup: each output's loss, weight and metrics, and the optimizer.

A head's loss reads its channels as its activation says (``from_logits`` for a linear head,
softmax or sigmoid as ``archgen.train.labels.head_mode`` decides). Each output's weight is its
head's ``weight`` times its deep-supervision share. Metrics are put on each head's own output
only (not on its deep-supervision copies).
"""

from __future__ import annotations

from typing import Any

from archgen.backend import import_keras
from archgen.train.outputs import OutputTarget
from archgen.train.setup import Setup

keras = import_keras()


def make_loss(spec: Any, target: OutputTarget):
    """The Keras loss for one output from its loss spec (``archgen.config.train``)."""
    from archgen.train import losses

    kind = spec.type
    if kind == "mse":
        return keras.losses.MeanSquaredError()
    if kind == "mae":
        return keras.losses.MeanAbsoluteError()
    if kind == "huber":
        return keras.losses.Huber(delta=spec.delta)
    mode = target.mode
    common = {"activation": mode.activation, "from_logits": mode.from_logits}
    if kind == "ce":
        return losses.CrossEntropy(**common)
    if kind == "focal":
        return losses.Focal(gamma=spec.gamma, alpha=spec.alpha, **common)
    overlap = {"include_background": spec.include_background, "smooth": spec.smooth, "batch": spec.batch, **common}
    if kind == "dice":
        return losses.Dice(**overlap)
    if kind == "tversky":
        return losses.Tversky(alpha=spec.alpha, beta=spec.beta, **overlap)
    return losses.DiceCE(dice_weight=spec.dice_weight, ce_weight=spec.ce_weight, **overlap)


def make_metrics(names: list[str], target: OutputTarget) -> list:
    """Keras metrics for one head's output (``dice``, ``iou``, their per-class forms, ``mae``, ``mse``)."""
    from archgen.train.metrics import DiceScore, IoUScore

    out: list = []
    for name in names:
        if name == "mae":
            out.append(keras.metrics.MeanAbsoluteError(name="mae"))
        elif name == "mse":
            out.append(keras.metrics.MeanSquaredError(name="mse"))
        elif target.mode is not None:
            kind = DiceScore if name.startswith("dice") else IoUScore
            base = "dice" if name.startswith("dice") else "iou"
            mode = {"activation": target.mode.activation, "from_logits": target.mode.from_logits}
            if name.endswith("_per_class"):  # the foreground label values, 1 on
                out += [kind(target.channels, class_id=c, name=f"{base}_{c}", **mode)
                        for c in range(1, target.mode.classes)]
            else:
                out.append(kind(target.channels, name=base, **mode))
    return out


def head_weights(setup: Setup) -> dict[str, float]:
    own = {entry.name: entry.weight for entry in setup.train.heads}
    return {o.name: own.get(o.head, 1.0) * o.weight for o in setup.outputs}


def make_optimizer(spec: Any, total_steps: int):
    """The optimizer with its learning-rate schedule over ``total_steps``."""
    lr = spec.learning_rate
    if spec.schedule == "poly":
        rate: Any = keras.optimizers.schedules.PolynomialDecay(lr, decay_steps=total_steps, end_learning_rate=0.0,
                                                               power=0.9)
    elif spec.schedule == "cosine":
        warmup = min(getattr(spec, "warmup_steps", 0), max(total_steps - 1, 0))
        if warmup:
            rate = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=max(total_steps - warmup, 1),
                                                          warmup_target=lr, warmup_steps=warmup)
        else:
            rate = keras.optimizers.schedules.CosineDecay(lr, decay_steps=total_steps)
    else:
        rate = lr
    decay = spec.weight_decay or None
    if spec.type == "sgd":
        return keras.optimizers.SGD(rate, momentum=spec.momentum, nesterov=spec.nesterov, weight_decay=decay)
    if spec.type == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=spec.weight_decay)
    return keras.optimizers.Adam(rate, weight_decay=decay)


def compile_model(model, setup: Setup) -> None:
    """``model.compile`` with each output's loss, weight and metrics (a dict keyed by output name)."""
    loss, weights, metrics = {}, {}, {}
    shares = head_weights(setup)
    for target in setup.outputs:
        loss[target.name] = make_loss(setup.losses[target.head], target)
        weights[target.name] = shares[target.name]
        if target.name == target.head:
            metrics[target.name] = make_metrics(setup.metrics[target.head], target)
    single = len(setup.outputs) == 1
    name = setup.outputs[0].name
    # a lone head's weight counts as it does in val_loss (a float: Keras takes no dict for one output)
    model.compile(optimizer=make_optimizer(setup.train.optimizer, setup.train.total_steps),
                  loss=loss[name] if single else loss,
                  loss_weights=weights[name] if single else weights,
                  metrics=metrics.get(name, []) if single else metrics)
