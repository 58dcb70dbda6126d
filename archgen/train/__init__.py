"""Training an archgen network from its config: losses, metrics, data, augmentation, the loop.

``archgen.losses`` and ``archgen.metrics`` are the public faces of ``losses``/``metrics`` here;
``archgen train`` (``archgen.train.cli``) runs the rest. Importing this package imports nothing
heavy: each module imports Keras or NumPy as it needs them.
"""
