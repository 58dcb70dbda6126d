"""Validation on whole images: each validation case predicted as ``archgen predict`` would,
with ``predict_tiled`` (overlap-tile and mirroring for valid padding), then scored.

``val_dice`` is the mean, over the class heads, of each head's mean foreground Dice from TP, FP
and FN counted over every validation pixel (``archgen.train.scores``); ``val_loss`` the heads'
losses on each whole image, weighted as in training and averaged over the cases. Deep
supervision copies are not validated: they are training aids.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archgen.train import scores
from archgen.train.dataset import Case
from archgen.train.setup import Setup


@dataclass
class Validation:
    loss: float
    dice: float | None  # None: no class head
    per_class: dict[str, dict[int, float | None]] = field(default_factory=dict)  # head -> class -> Dice
    mae: dict[str, float] = field(default_factory=dict)  # regression head -> mean absolute error

    def logs(self) -> dict[str, float]:
        """The figures as Keras log entries (``val_loss``, ``val_dice``, ``val_dice_1``, ...)."""
        out = {"val_loss": self.loss}
        if self.dice is not None:
            out["val_dice"] = self.dice
        several = len(self.per_class) > 1
        for head, classes in self.per_class.items():
            for c, value in classes.items():
                if value is not None:
                    out[f"val_{head}_dice_{c}" if several else f"val_dice_{c}"] = value
        for head, value in self.mae.items():
            out[f"val_{head}_mae" if len(self.mae) > 1 else "val_mae"] = value
        return out


def heads_to_predict(setup: Setup) -> list[str]:
    return [o.name for o in setup.outputs if o.name == o.head]


def predict_case(model, setup: Setup, case: Case) -> dict[str, np.ndarray]:
    """Each head's output over the whole image ``case.image`` (``(*spatial, K)``)."""
    from archgen.tiling import ApproximateTilingWarning, predict_tiled

    heads = heads_to_predict(setup)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ApproximateTilingWarning)  # validation of a same-padding net: blended tiles
        result = predict_tiled(model, case.image, plan=setup.plan, heads=heads, batch_size=4)
    return result if isinstance(result, dict) else {heads[0]: result}


def validate(model, setup: Setup, cases: list[Case], losses: dict[str, Any], weights: dict[str, float]) -> Validation:
    """Predict and score every validation case (see the module's docstring)."""
    from archgen.backend import import_keras

    ops = import_keras().ops
    targets = {o.name: o for o in setup.outputs}
    tallies: dict[str, np.ndarray] = {}
    errors: dict[str, list[float]] = {}
    total = 0.0
    for case in cases:
        predicted = predict_case(model, setup, case)
        for head, output in predicted.items():
            target = targets[head]
            truth = case.target
            loss = losses[head](truth[None], output[None].astype(np.float32))
            total += weights.get(head, 1.0) * float(ops.convert_to_numpy(loss))
            if target.mode is None:
                errors.setdefault(head, []).append(float(np.abs(output - truth).mean()))
                continue
            labels = scores.predicted_labels(output, target.mode.activation, target.mode.from_logits)
            tally = scores.counts(labels, truth, target.mode.classes)
            tallies[head] = tally if head not in tallies else tallies[head] + tally
    per_class, fg = {}, []
    for head, tally in tallies.items():
        dice = scores.dice(tally)
        per_class[head] = {c: None if np.isnan(dice[c]) else float(dice[c]) for c in range(1, len(dice))}
        fg.append(scores.mean_foreground(dice))
    return Validation(loss=total / max(len(cases), 1), dice=float(np.mean(fg)) if fg else None, per_class=per_class,
                      mae={head: float(np.mean(v)) for head, v in errors.items()})
