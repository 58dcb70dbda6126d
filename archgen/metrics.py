"""Dice and IoU as Keras ``Metric`` objects (see ``archgen.train.metrics``).

::

    import archgen.metrics

    model.compile(..., metrics={"logits": [archgen.metrics.DiceScore(3), archgen.metrics.IoUScore(3, class_id=2)]})

Importing this module imports Keras (on ``$KERAS_BACKEND``, else TensorFlow).
"""

from archgen.train.metrics import DiceScore, IoUScore

__all__ = ["DiceScore", "IoUScore"]
