"""Dice and IoU metrics: the Keras metrics agree with the NumPy scores, which agree with hand counts."""

from __future__ import annotations

import numpy as np
import pytest

from archgen.train import scores


def test_counts_dice_and_iou_by_hand():
    true = np.array([[0, 1, 1], [2, 2, 0]])
    pred = np.array([[0, 1, 0], [2, 1, 1]])
    tally = scores.counts(pred, true, 3)
    # class 1: TP 1 (0,1), FP 2 ((1,1), (1,2)), FN 1 ((0,2)); class 2: TP 1, FP 0, FN 1
    assert tally[:, 1].tolist() == [1, 2, 1]
    assert tally[:, 2].tolist() == [1, 0, 1]
    assert scores.dice(tally)[1] == pytest.approx(2 / 5)
    assert scores.iou(tally)[2] == pytest.approx(1 / 2)
    assert scores.mean_foreground(scores.dice(tally)) == pytest.approx((2 / 5 + 2 / 3) / 2)


def test_absent_classes_are_left_out_and_nothing_at_all_scores_one():
    true = np.zeros((4, 4), int)
    tally = scores.counts(true, true, 3)
    assert np.isnan(scores.dice(tally)[1:]).all()
    assert scores.mean_foreground(scores.dice(tally)) == 1.0
    true[0, 0] = 2
    assert scores.mean_foreground(scores.dice(scores.counts(true, true, 3))) == 1.0  # class 1 absent: not a 0


def test_predicted_labels_of_softmax_and_sigmoid_heads():
    out = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    assert scores.predicted_labels(out, "softmax", False).tolist() == [1, 0]
    sig = np.array([[0.9, 0.6], [0.2, 0.4], [0.3, 0.8]])
    assert scores.predicted_labels(sig, "sigmoid", False).tolist() == [1, 0, 2]
    assert scores.predicted_labels(np.log(sig / (1 - sig)), "sigmoid", True).tolist() == [1, 0, 2]


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_keras_metrics_equal_the_numpy_scores_over_several_batches(activation):
    from archgen.train.metrics import DiceScore, IoUScore

    rng = np.random.default_rng(0)
    channels = 3
    classes = channels if activation == "softmax" else channels + 1
    dice, iou, dice2 = (DiceScore(channels, activation=activation), IoUScore(channels, activation=activation),
                        DiceScore(channels, activation=activation, class_id=2))
    tally = np.zeros((3, classes))
    for _ in range(3):
        logits = rng.normal(0, 2, (2, 9, 7, channels)).astype("float32")
        labels = rng.integers(0, classes, (2, 9, 7))
        for metric in (dice, iou, dice2):
            metric.update_state(labels, logits)
        tally += scores.counts(scores.predicted_labels(logits, activation, True), labels, classes)
    assert float(dice.result()) == pytest.approx(scores.mean_foreground(scores.dice(tally)), abs=1e-6)
    assert float(iou.result()) == pytest.approx(scores.mean_foreground(scores.iou(tally)), abs=1e-6)
    assert float(dice2.result()) == pytest.approx(scores.dice(tally)[2], abs=1e-6)
    dice.reset_state()
    assert float(dice.result()) == 1.0


def test_a_class_id_outside_the_labels_is_refused():
    from archgen.train.metrics import DiceScore

    with pytest.raises(ValueError, match="class_id must be a label value from 0 to 2"):
        DiceScore(3, class_id=3)
