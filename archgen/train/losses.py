"""Segmentation losses as Keras ``Loss`` objects, for any back end and any ``compile``/``fit``.

Shapes, channels last: ``y_pred`` is ``(B, *spatial, K)``; ``y_true`` holds integer labels,
``(B, *spatial)`` or ``(B, *spatial, 1)``. How the K channels read (softmax or sigmoid, logits
or probabilities) is the head's business: ``activation`` and ``from_logits`` say it, and
``archgen.train.labels.head_mode`` derives both from the head's own activation.

Each loss returns one value per sample, which Keras averages over the batch. Definitions,
with p the predicted probabilities, g the one-hot labels, sums over the spatial axes (and the
batch too with ``batch=True``), s the smoothing term:

- ``Dice``: 1 - mean over classes of (2 sum(p g) + s) / (sum p + sum g + s): MONAI's
  ``DiceLoss(smooth_nr=s, smooth_dr=s)``. nnU-Net's ``MemoryEfficientSoftDiceLoss`` is the same
  Dice but reports -Dice, so its value is this one minus 1 (the gradients are equal).
- ``CrossEntropy``: mean over pixels of -log p of the true class (PyTorch's ``CrossEntropyLoss``),
  binary cross-entropy averaged over channels for a sigmoid head.
- ``DiceCE``: ``dice_weight`` * Dice + ``ce_weight`` * CrossEntropy, as MONAI's ``DiceCELoss``
  and nnU-Net's ``DC_and_CE_loss`` combine them (nnU-Net's value again 1 x dice_weight lower).
- ``Focal`` (Lin et al. 2017): -(1 - p_t)^gamma log p_t, optionally weighted by alpha (for
  the foreground) and 1 - alpha (background): summed over classes and averaged over pixels for
  softmax (MONAI's ``FocalLoss`` averages over classes too, so its value is this one / K);
  averaged over channels and pixels for sigmoid, as MONAI's.
- ``Tversky`` (Salehi et al. 2017): 1 - (TP + s) / (TP + alpha FP + beta FN + s), with soft TP,
  FP and FN, per class then averaged: MONAI's ``TverskyLoss``.

Regression heads take Keras's own ``MeanSquaredError``, ``MeanAbsoluteError`` and ``Huber``.
"""

from __future__ import annotations

from typing import Any

from archgen.backend import import_keras

keras = import_keras()
ops = keras.ops

EPSILON = 1e-7  # probabilities are clipped to [EPSILON, 1] before their log, as Keras's own losses do

__all__ = ["CrossEntropy", "Dice", "DiceCE", "Focal", "Tversky"]


class _SegmentationLoss(keras.losses.Loss):
    """What every class loss shares: reading labels and the head's channels."""

    def __init__(self, *, activation: str = "softmax", from_logits: bool = True, name: str | None = None,
                 reduction: str = "sum_over_batch_size", dtype: Any = None):
        if activation not in ("softmax", "sigmoid"):
            raise ValueError(f"activation must be softmax or sigmoid; received activation={activation!r}")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.activation = activation
        self.from_logits = from_logits

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": self.activation, "from_logits": self.from_logits}

    def _read(self, y_true, y_pred):
        """(probabilities, log-probabilities or None, one-hot labels), all float32 ``(B, *spatial, K)``."""
        y_pred = ops.cast(y_pred, "float32")
        if len(y_true.shape) == len(y_pred.shape):  # (B, *spatial, 1)
            y_true = ops.squeeze(y_true, axis=-1)
        labels = ops.cast(y_true, "int32")
        channels = y_pred.shape[-1]
        if self.activation == "softmax":
            onehot = ops.one_hot(labels, channels, dtype="float32")
            if self.from_logits:
                return ops.softmax(y_pred, axis=-1), ops.log_softmax(y_pred, axis=-1), onehot
            return y_pred, ops.log(ops.clip(y_pred, EPSILON, 1.0)), onehot
        onehot = ops.one_hot(labels, channels + 1, dtype="float32")[..., 1:]  # label 0 lights no channel
        return (ops.sigmoid(y_pred) if self.from_logits else y_pred), None, onehot

    def _cross_entropy(self, y_pred, probs, log_probs, onehot):
        """Per sample, ``(B,)``."""
        spatial = tuple(range(1, len(onehot.shape)))
        if self.activation == "softmax":
            return ops.mean(-ops.sum(onehot * log_probs, axis=-1), axis=spatial[:-1])
        if self.from_logits:
            elementwise = ops.binary_crossentropy(onehot, ops.cast(y_pred, "float32"), from_logits=True)
        else:
            p = ops.clip(probs, EPSILON, 1.0 - EPSILON)
            elementwise = -(onehot * ops.log(p) + (1.0 - onehot) * ops.log(1.0 - p))
        return ops.mean(elementwise, axis=spatial)


class _OverlapLoss(_SegmentationLoss):
    """Dice and Tversky: soft counts per class, optionally over the whole batch, background optional."""

    def __init__(self, *, include_background: bool = True, smooth: float = 1e-5, batch: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.include_background = include_background
        self.smooth = smooth
        self.batch = batch

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "include_background": self.include_background, "smooth": self.smooth,
                "batch": self.batch}

    def _counts(self, probs, onehot):
        """Soft TP, sum of p and sum of g per class: ``(B, K)``, or ``(K,)`` with ``batch``."""
        axes = tuple(range(0 if self.batch else 1, len(onehot.shape) - 1))
        return ops.sum(probs * onehot, axis=axes), ops.sum(probs, axis=axes), ops.sum(onehot, axis=axes)

    def _classes(self, score):
        """The mean over the classes counted (a softmax head's background only if asked)."""
        if self.activation == "softmax" and not self.include_background:
            score = score[..., 1:]
        return ops.mean(score, axis=-1)

    def _per_sample(self, value, onehot):
        """A batch-wide value repeated for each sample, so Keras's mean over the batch keeps it."""
        if not self.batch:
            return value
        return ops.zeros_like(ops.sum(onehot, axis=tuple(range(1, len(onehot.shape))))) + value

    def _dice(self, probs, onehot):
        tp, pred, true = self._counts(probs, onehot)
        score = (2.0 * tp + self.smooth) / (pred + true + self.smooth)
        return self._per_sample(1.0 - self._classes(score), onehot)


@keras.saving.register_keras_serializable(package="archgen")
class CrossEntropy(_SegmentationLoss):
    """Cross-entropy of integer labels against a softmax head (or binary, per channel, for sigmoid)."""

    def __init__(self, name: str = "cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        probs, log_probs, onehot = self._read(y_true, y_pred)
        return self._cross_entropy(y_pred, probs, log_probs, onehot)


@keras.saving.register_keras_serializable(package="archgen")
class Dice(_OverlapLoss):
    """Soft Dice loss, 1 - mean Dice over classes (MONAI's ``DiceLoss``)."""

    def __init__(self, name: str = "dice", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        probs, _, onehot = self._read(y_true, y_pred)
        return self._dice(probs, onehot)


@keras.saving.register_keras_serializable(package="archgen")
class DiceCE(_OverlapLoss):
    """``dice_weight`` x Dice + ``ce_weight`` x cross-entropy (MONAI's ``DiceCELoss``, nnU-Net's
    ``DC_and_CE_loss`` + dice_weight)."""

    def __init__(self, dice_weight: float = 1.0, ce_weight: float = 1.0, name: str = "dice_ce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dice_weight = dice_weight
        self.ce_weight = ce_weight

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dice_weight": self.dice_weight, "ce_weight": self.ce_weight}

    def call(self, y_true, y_pred):
        probs, log_probs, onehot = self._read(y_true, y_pred)
        return (self.dice_weight * self._dice(probs, onehot)
                + self.ce_weight * self._cross_entropy(y_pred, probs, log_probs, onehot))


@keras.saving.register_keras_serializable(package="archgen")
class Focal(_SegmentationLoss):
    """Focal loss (Lin et al. 2017): cross-entropy down-weighted where the prediction is already right."""

    def __init__(self, gamma: float = 2.0, alpha: float | None = None, name: str = "focal", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma = gamma
        self.alpha = alpha

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}

    def call(self, y_true, y_pred):
        probs, log_probs, onehot = self._read(y_true, y_pred)
        spatial = tuple(range(1, len(onehot.shape) - 1))
        if self.activation == "softmax":
            loss = -ops.power(1.0 - probs, self.gamma) * log_probs * onehot
            if self.alpha is not None:
                channels = onehot.shape[-1]
                loss = loss * ops.convert_to_tensor([1.0 - self.alpha] + [self.alpha] * (channels - 1))
            return ops.mean(ops.sum(loss, axis=-1), axis=spatial)
        p = ops.clip(probs, EPSILON, 1.0 - EPSILON)
        p_true = onehot * p + (1.0 - onehot) * (1.0 - p)
        if self.from_logits:
            bce = ops.binary_crossentropy(onehot, ops.cast(y_pred, "float32"), from_logits=True)
        else:
            bce = -ops.log(p_true)
        loss = ops.power(1.0 - p_true, self.gamma) * bce
        if self.alpha is not None:
            loss = loss * (onehot * self.alpha + (1.0 - onehot) * (1.0 - self.alpha))
        return ops.mean(loss, axis=(*spatial, len(onehot.shape) - 1))


@keras.saving.register_keras_serializable(package="archgen")
class Tversky(_OverlapLoss):
    """Tversky loss: Dice with false positives weighted ``alpha`` and false negatives ``beta``
    (0.5 and 0.5 is Dice)."""

    def __init__(self, alpha: float = 0.5, beta: float = 0.5, name: str = "tversky", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = alpha
        self.beta = beta

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta}

    def call(self, y_true, y_pred):
        probs, _, onehot = self._read(y_true, y_pred)
        tp, pred, true = self._counts(probs, onehot)
        fp, fn = pred - tp, true - tp
        score = (tp + self.smooth) / (tp + self.alpha * fp + self.beta * fn + self.smooth)
        return self._per_sample(1.0 - self._classes(score), onehot)
