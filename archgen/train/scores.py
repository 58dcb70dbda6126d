"""Dice and IoU from counts of true positives, false positives and false negatives (NumPy only).

Counts are summed over every pixel of every image scored, per class (nnU-Net's validation
"pseudo Dice" does the same), so a small structure in one image weighs as its pixels do.
A class absent from both the labels and the prediction has no score and is left out of the
mean; when every foreground class is absent the mean is 1 (nothing to find, nothing found).
"""

from __future__ import annotations

import numpy as np


def counts(pred: np.ndarray, true: np.ndarray, classes: int) -> np.ndarray:
    """``(3, classes)``: true positives, false positives and false negatives of each label value
    0..classes-1 of the integer maps ``pred`` and ``true`` (same shape)."""
    pred = np.asarray(pred).ravel().astype(np.int64)
    true = np.asarray(true).ravel().astype(np.int64)
    joint = np.bincount(true * classes + pred, minlength=classes * classes).reshape(classes, classes)
    tp = np.diag(joint)
    return np.stack([tp, joint.sum(axis=0) - tp, joint.sum(axis=1) - tp]).astype(np.float64)


def dice(tally: np.ndarray) -> np.ndarray:
    """Dice of each class, 2 TP / (2 TP + FP + FN); NaN where the class is absent from both."""
    tp, fp, fn = tally
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)


def iou(tally: np.ndarray) -> np.ndarray:
    """Intersection over union of each class, TP / (TP + FP + FN); NaN where absent from both."""
    tp, fp, fn = tally
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)


def mean_foreground(scores: np.ndarray) -> float:
    """The mean over classes 1.. that have a score; 1.0 where none has."""
    fg = scores[1:]
    fg = fg[~np.isnan(fg)]
    return float(fg.mean()) if fg.size else 1.0


def predicted_labels(output: np.ndarray, activation: str, from_logits: bool, threshold: float = 0.5) -> np.ndarray:
    """Integer labels from a head's output ``(..., K)``: the arg-max of a softmax head; for a
    sigmoid head the highest channel above ``threshold`` (label = channel + 1), else 0."""
    if activation == "softmax":
        return np.argmax(output, axis=-1)
    probs = 1 / (1 + np.exp(-output.astype(np.float64))) if from_logits else output
    above = probs > threshold
    best = np.argmax(np.where(above, probs, -np.inf), axis=-1) + 1
    return np.where(above.any(axis=-1), best, 0)
