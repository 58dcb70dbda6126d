"""Plan -> Keras model. Importing this package imports Keras (and TensorFlow)."""

from archgen.emit.keras_model import EMITTERS, emit_model

__all__ = ["EMITTERS", "emit_model"]
