"""Dice and IoU as Keras ``Metric`` objects, for any back end and any ``compile``/``fit``.

Each metric counts true positives, false positives and false negatives per class over every
batch since its last reset (an epoch, in ``fit``), and scores them as ``archgen.train.scores``
does: the mean over the foreground classes that occur in the labels or the prediction, or one
class with ``class_id``. A prediction is the arg-max of a softmax head, and for a sigmoid head
the highest channel above ``threshold`` (label = channel + 1), as the losses read the channels.
Regression heads take Keras's own ``MeanAbsoluteError``.
"""

from __future__ import annotations

from typing import Any

from archgen.backend import import_keras

keras = import_keras()
ops = keras.ops

__all__ = ["DiceScore", "IoUScore"]


class _OverlapScore(keras.metrics.Metric):
    def __init__(self, channels: int, *, activation: str = "softmax", from_logits: bool = True,
                 class_id: int | None = None, threshold: float = 0.5, name: str | None = None, dtype: Any = None):
        if activation not in ("softmax", "sigmoid"):
            raise ValueError(f"activation must be softmax or sigmoid; received activation={activation!r}")
        classes = channels if activation == "softmax" else channels + 1
        if class_id is not None and not 0 <= class_id < classes:
            raise ValueError(f"class_id must be a label value from 0 to {classes - 1}; received class_id={class_id}")
        super().__init__(name=name, dtype=dtype)
        self.channels, self.activation, self.from_logits = channels, activation, from_logits
        self.class_id, self.threshold, self.classes = class_id, threshold, classes
        self.tally = self.add_variable(shape=(3, classes), initializer="zeros", dtype="float32", name="tally")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "channels": self.channels, "activation": self.activation,
                "from_logits": self.from_logits, "class_id": self.class_id, "threshold": self.threshold}

    def _predicted(self, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        if self.activation == "softmax":
            return ops.argmax(y_pred, axis=-1)
        probs = ops.sigmoid(y_pred) if self.from_logits else y_pred
        above = probs > self.threshold
        best = ops.argmax(ops.where(above, probs, -1.0), axis=-1) + 1
        return ops.where(ops.any(above, axis=-1), best, ops.zeros_like(best))

    def update_state(self, y_true, y_pred, sample_weight=None):
        if len(y_true.shape) == len(y_pred.shape):  # (B, *spatial, 1)
            y_true = ops.squeeze(y_true, axis=-1)
        true = ops.one_hot(ops.cast(y_true, "int32"), self.classes, dtype="float32")
        pred = ops.one_hot(ops.cast(self._predicted(y_pred), "int32"), self.classes, dtype="float32")
        axes = tuple(range(len(true.shape) - 1))
        tp = ops.sum(true * pred, axis=axes)
        self.tally.assign_add(ops.stack([tp, ops.sum(pred, axis=axes) - tp, ops.sum(true, axis=axes) - tp]))

    def reset_state(self):
        self.tally.assign(ops.zeros((3, self.classes), dtype="float32"))

    def _scores(self, tp, fp, fn):
        raise NotImplementedError

    def result(self):
        tp, fp, fn = self.tally[0], self.tally[1], self.tally[2]
        present = (tp + fp + fn) > 0
        scores = ops.where(present, self._scores(tp, fp, fn), ops.ones_like(tp))  # absent: nothing to find
        if self.class_id is not None:
            return scores[self.class_id]
        counted = ops.cast(present[1:], "float32")
        found = ops.sum(counted)
        return ops.where(found > 0, ops.sum(scores[1:] * counted) / ops.maximum(found, 1.0), 1.0)


@keras.saving.register_keras_serializable(package="archgen")
class DiceScore(_OverlapScore):
    """Dice, 2 TP / (2 TP + FP + FN), of one class or the mean over the foreground classes."""

    def __init__(self, channels: int, name: str = "dice", **kwargs):
        super().__init__(channels, name=name, **kwargs)

    def _scores(self, tp, fp, fn):
        return 2.0 * tp / ops.maximum(2.0 * tp + fp + fn, 1.0)


@keras.saving.register_keras_serializable(package="archgen")
class IoUScore(_OverlapScore):
    """Intersection over union, TP / (TP + FP + FN), of one class or the mean over the foreground classes."""

    def __init__(self, channels: int, name: str = "iou", **kwargs):
        super().__init__(channels, name=name, **kwargs)

    def _scores(self, tp, fp, fn):
        return tp / ops.maximum(tp + fp + fn, 1.0)
