"""The internals of other packages that archgen calls, fenced here and nowhere else.

Each module names the releases it was written for (``WRITTEN_FOR``, the same range that
pyproject.toml pins) and imports the package only when one of its functions is called, so
importing this package costs nothing. tests/test_compat.py exercises every function against the
installed release.

``hydra``: Hydra's sweep expansion, its override application and its global-state backup.
``keras``: the sampling functions of Keras's JAX back end.
``joblib``: the function loky calls to kill a pool's workers.
"""
