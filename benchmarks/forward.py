"""Throughput of the archgen-built seed U-Net vs the same network written by hand in plain Keras
(tests/reference/seed_unet.py): same weights, same input.

Inference (images/s) and a training step (forward + backward + SGD update), alternated, on CPU
at 188x188 batch 2, and on a GPU (when present) at 572x572 with batch sizes 1/8/32.
Target ratio: 1.00 +- 0.03.
    python benchmarks/forward.py [--quick]
"""

from __future__ import annotations


import numpy as np

from common import ROOT, alternate, build_seed_unet, parse_args, report


def main() -> None:
    args = parse_args(__doc__)
    from archgen.emit import emit_model
    from archgen.backend import import_keras
    from archgen.planner import make_plan
    from archgen.config import load_spec

    keras = import_keras()
    import tensorflow as tf

    gpu = bool(tf.config.list_physical_devices("GPU"))
    settings = [(572, b) for b in (1, 8, 32)] if gpu else [(188, 2)]
    print(f"device: {'GPU ' + tf.config.list_physical_devices('GPU')[0].name if gpu else 'CPU'}")
    for size, batch in settings:
        seed = build_seed_unet((size, size, 1))
        ours = emit_model(make_plan(load_spec(ROOT / "conf" / "unet.yaml", [f"input.shape=[{size},{size},1]"])))
        ours.set_weights(seed.get_weights())
        x = tf.constant(np.random.default_rng(0).normal(size=(batch, size, size, 1)).astype("float32"))
        np.testing.assert_allclose(ours(x).numpy(), seed(x).numpy(), rtol=1e-4, atol=1e-4)
        cases = {}
        for name, model in (("seed, hand-written", seed), ("archgen", ours)):
            infer = tf.function(lambda x, m=model: m(x, training=False))
            step = train_step(model, tf)
            infer(x), step(x)  # trace and warm up
            cases[f"{name}: inference"] = lambda f=infer: f(x).numpy()
            cases[f"{name}: training step"] = lambda f=step: f(x).numpy()
        times = alternate(cases, reps=3 if args.quick else 20)
        med = report(f"seed U-Net {size}x{size}, batch {batch}", times, "seed, hand-written: inference")
        for kind in ("inference", "training step"):
            ratio = med[f"seed, hand-written: {kind}"] / med[f"archgen: {kind}"]
            print(f"  {kind}: archgen {batch / med[f'archgen: {kind}']:.2f} images/s, "
                  f"hand-written {batch / med[f'seed, hand-written: {kind}']:.2f} images/s, "
                  f"throughput ratio {ratio:.3f} (target 1.00 +- 0.03)")
        keras.backend.clear_session()


def train_step(model, tf):
    optimizer = tf.keras.optimizers.SGD(1e-3)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True)))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    return step


if __name__ == "__main__":
    main()
