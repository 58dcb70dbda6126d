"""Segmentation losses as Keras ``Loss`` objects (see ``archgen.train.losses`` for the definitions).

::

    import archgen.losses

    model.compile(optimizer="adam", loss={"logits": archgen.losses.DiceCE(include_background=False)})

Importing this module imports Keras (on ``$KERAS_BACKEND``, else TensorFlow).
"""

from archgen.train.losses import CrossEntropy, Dice, DiceCE, Focal, Tversky
from archgen.train.outputs import deep_supervision_weights

__all__ = ["CrossEntropy", "Dice", "DiceCE", "Focal", "Tversky", "deep_supervision_weights"]
