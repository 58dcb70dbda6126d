"""Importing Keras quietly: TensorFlow's C++ start-up logging bypasses Python's stderr."""

from __future__ import annotations

import os
import sys


def import_keras():
    """``import keras`` with TensorFlow's start-up chatter (absl, "could not find cuda drivers")
    kept off the terminal. Errors still surface as Python exceptions."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "keras" in sys.modules:
        return sys.modules["keras"]
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return keras
