"""segmentation_models' own Unet, run apart: ``python tests/peers/smp_peer.py BACKBONE OUT.npz H W [H W ...]``.

segmentation_models 1.0.1 runs on Keras 2 (tf_keras, ``SM_FRAMEWORK=tf.keras``,
``TF_USE_LEGACY_KERAS=1``), which cannot share a process with the Keras 3 the tests use; this script
is that other process. It builds ``Unet(BACKBONE, classes=1, activation='sigmoid',
encoder_weights=None, input_shape=(None, None, 3))`` and writes to OUT.npz:

- ``trainable``, ``total``: its parameter counts (Keras 2's ``count_params()`` for the total);
- ``shape_{H}x{W}``: its output's shape for an input of each size;
- ``x``, ``y``: two images of the first size (0..255) and its outputs for them;
- ``weights/{layer}/{i}``: every layer's weights, after the batch norms' scales and shifts were
  drawn at random and their moving statistics set to the batch statistics of 16 images of that
  size (one pass in training mode with momentum 0), so that the network neither saturates nor
  explodes and a misplaced norm would show in ``y``.

It imports nothing of archgen.
"""

from __future__ import annotations

import os
import sys

os.environ["SM_FRAMEWORK"] = "tf.keras"
os.environ["TF_USE_LEGACY_KERAS"] = "1"

import numpy as np  # noqa: E402


def main(backbone: str, out: str, sizes: list[tuple[int, int]]) -> None:
    import segmentation_models as sm
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = sm.Unet(backbone, classes=1, activation="sigmoid", encoder_weights=None, input_shape=(None, None, 3))
    rng = np.random.default_rng(0)
    result = {"trainable": np.int64(sum(int(np.prod(w.shape)) for w in model.trainable_weights)),
              "total": np.int64(model.count_params())}
    for h, w in sizes:
        result[f"shape_{h}x{w}"] = np.array(model(np.zeros((1, h, w, 3), "float32")).shape[1:])
    h, w = sizes[0]
    norms = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.BatchNormalization)]
    for layer in norms:
        layer.set_weights([rng.uniform(0.5, 1.5, v.shape).astype("float32") if v.name.split("/")[-1].startswith("gamma")
                           else rng.normal(0, 0.1, v.shape).astype("float32") if v.name.split("/")[-1].startswith("beta")
                           else v.numpy() for v in layer.weights])
        layer.momentum = 0.0
    model(rng.uniform(0, 255, (16, h, w, 3)).astype("float32"), training=True)
    x = rng.uniform(0, 255, (2, h, w, 3)).astype("float32")
    result["x"], result["y"] = x, model.predict(x, verbose=0)
    for layer in model.layers:
        for i, value in enumerate(layer.get_weights()):
            result[f"weights/{layer.name}/{i}"] = value
    np.savez(out, **result)


if __name__ == "__main__":
    backbone, out, *numbers = sys.argv[1:]
    main(backbone, out, [(int(a), int(b)) for a, b in zip(numbers[::2], numbers[1::2])])
