"""Choosing the Keras back end and importing Keras quietly.

The back end is fixed when Keras is first imported, so it is chosen here, before that.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from archgen.errors import ArchgenError

BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}  # back end -> package it needs


def select_backend(name: str | None = None) -> str:
    """Fix Keras's back end: ``name``, else ``KERAS_BACKEND``, else tensorflow.

    Refuses a back end that is not installed (with the pip command that installs it), or one
    that differs from the back end Keras was already imported with in this process.
    """
    name = name or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if name not in BACKENDS:
        raise ArchgenError(f"unknown back end; expected one of {', '.join(BACKENDS)}", path="--backend", value=name)
    if importlib.util.find_spec(BACKENDS[name]) is None:
        raise ArchgenError(f"the {name} back end is not installed: pip install 'archgen[{name}]'",
                           path="--backend", value=name)
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != name:
        raise ArchgenError(f"Keras is already running on {sys.modules['keras'].backend.backend()} in this "
                           f"process; the back end is fixed when Keras is first imported", path="--backend", value=name)
    os.environ["KERAS_BACKEND"] = name
    return name


def _keep_keras_out_of_home() -> None:
    """Keras writes ``~/.keras/keras.json`` on its first import where there is none. Where it
    exists, Keras reads it and writes nothing; elsewhere Keras's folder is a temporary one of this
    process, removed at exit. ``KERAS_HOME`` set by the user always wins: set it to keep
    downloaded weights between runs."""
    if "KERAS_HOME" in os.environ or os.path.isfile(os.path.join(os.path.expanduser("~"), ".keras", "keras.json")):
        return
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="archgen-keras-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["KERAS_HOME"] = folder


def import_keras():
    """``import keras`` with TensorFlow's start-up chatter (absl, "could not find cuda drivers")
    kept off the terminal: it is written by C++ straight to file descriptor 2. Errors still
    surface as Python exceptions."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "keras" in sys.modules:
        return sys.modules["keras"]
    _keep_keras_out_of_home()
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
