"""Train an archgen model on synthetic data it makes itself: discs and squares on noise, to segment.

::

    python examples/train_synthetic.py                          # small U-Net, same padding
    python examples/train_synthetic.py --padding valid          # valid convs: labels cropped to the output
    python examples/train_synthetic.py --config conf/unet_same.yaml --size 128 encoder.filters=8

Class 0 is background, 1 a disc, 2 a square (a head with 2 filters segments shape / no shape).
Discs are a little brighter and squares a little darker than the background, by less than the
noise, so a pixel on its own is often misread: the network needs its neighbours.

With valid padding the model's output is smaller than its input: the plan says by how much, and
the labels are cropped to the output (``archgen.tiling.crop_to_output``). The input size is
snapped to the nearest size the network accepts (``plan.sizes``).

Prints steps, seconds, the loss before and after training and the Dice score of the shapes,
both on 32 held-out images. Needs only numpy and Keras.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Sequence

import numpy as np

import archgen
from archgen.tiling import crop_to_output

# A small U-Net: two down-sampling steps, 8 filters at full resolution, about 29k parameters.
SMALL_UNET = """
name: synthetic_unet
input:
  shape: [64, 64, 1]
padding: same
encoder:
  depth: 2
  filters: 8
heads:
  - name: logits
    filters: 3
"""


def make_batch(rng: np.random.Generator, count: int, size: int, channels: int, classes: int,
               noise: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """``count`` noisy images ``(count, size, size, channels)`` (float32) with 3 to 7 shapes each,
    and their labels ``(count, size, size)`` (int32): 0 background, 1 disc, 2 square (1 for both
    shapes when ``classes`` is 2)."""
    images = rng.normal(0.0, noise, (count, size, size, channels)).astype("float32")
    labels = np.zeros((count, size, size), dtype="int32")
    yy, xx = np.mgrid[:size, :size]
    for i in range(count):
        for _ in range(rng.integers(3, 8)):  # about a quarter of the pixels end up in a shape
            r = rng.uniform(size / 10, size / 5)
            cy, cx = rng.uniform(r, size - r, 2)
            if rng.random() < 0.5:
                mask, label = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r, 1
            else:
                mask, label = (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85), 2
            labels[i][mask] = label if classes >= 3 else 1
            images[i][mask] += 1.0 if label == 1 or classes < 3 else -1.0
    return images, labels


def dice(pred: np.ndarray, truth: np.ndarray, classes: int) -> float:
    """Mean Dice over the foreground classes present in ``truth`` or ``pred``."""
    scores = []
    for c in range(1, classes):
        p, t = pred == c, truth == c
        if p.any() or t.any():
            scores.append(2.0 * np.logical_and(p, t).sum() / (p.sum() + t.sum()))
    return float(np.mean(scores)) if scores else 1.0


def train(config: Any = SMALL_UNET, overrides: Sequence[str] = (), *, padding: str | None = None,
          size: int = 64, steps: int = 200, epochs: int = 1, batch: int = 8, learning_rate: float = 1e-2,
          seed: int = 0, backend: str | None = None, verbose: int = 0) -> dict[str, Any]:
    """Build ``config`` (after ``overrides``), train it on synthetic batches, return the figures."""
    spec = archgen.load(config, [*overrides, *([f"padding={padding}"] if padding else [])])
    if spec.ndim != 2:
        raise ValueError("this example makes 2D images; the config's input is not 2D")
    channels = spec.input.shape[-1]
    # Planned with open spatial sizes, the plan's size rule gives the legal input sizes.
    rule = archgen.plan(spec, [f"input.shape=[null,null,{channels}]"]).sizes
    legal = rule.nearest(size, 1)[0]
    spec = archgen.load(spec, [f"input.shape=[{legal},{legal},{channels}]"])
    plan = archgen.plan(spec)
    if len(plan.outputs) != 1:
        raise ValueError(f"this example trains one output; the config has {', '.join(plan.outputs)}")
    head, out_shape = next(iter(plan.output_shapes.items()))
    classes = out_shape[-1]
    if classes < 2:
        raise ValueError(f"the head {head} has {classes} filter; segmenting needs 2 or more")

    import keras

    keras.utils.set_random_seed(seed)
    model = archgen.build_model(spec, backend=backend)
    softmax = model.get_layer(head).get_config()["activation"] == "softmax"
    # A loss keyed by the head's name: the model's outputs are named after their heads. (With one
    # output, Keras 3 takes the labels as an array; with several, as a dict keyed the same way.)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss={head: keras.losses.SparseCategoricalCrossentropy(from_logits=not softmax)})

    data_classes = min(classes, 3)

    def batches(rng: np.random.Generator, count: int):
        while True:  # made as they are needed: a large config never holds the whole set in memory
            x, y = make_batch(rng, count, legal, channels, data_classes)
            # With valid padding the output is the centre of the input: cut the labels to it
            # (nothing is cut with same padding).
            yield x, crop_to_output(y, plan, channel_axis=False)

    x_val, y_val = next(batches(np.random.default_rng([seed, 1]), 32))
    first = _loss(model.evaluate(x_val, y_val, batch_size=batch, verbose=0))  # untrained
    start = time.perf_counter()
    # shuffle=False: every batch is new, and Keras warns that it cannot shuffle a generator
    model.fit(batches(np.random.default_rng(seed), batch), steps_per_epoch=steps, epochs=epochs, shuffle=False,
              verbose=verbose)
    seconds = time.perf_counter() - start
    final = _loss(model.evaluate(x_val, y_val, batch_size=batch, verbose=0))
    pred = np.argmax(model.predict(x_val, batch_size=batch, verbose=0), axis=-1)
    return {
        "config": plan.name, "padding": spec.padding,
        "input_shape": list(plan.input_shape), "output_shape": list(out_shape), "params": plan.total_params,
        "steps": steps * epochs, "seconds": round(seconds, 2),
        "first_loss": round(first, 4), "final_loss": round(final, 4),
        "dice": round(dice(pred, y_val, data_classes), 4),
    }


def _loss(result: Any) -> float:
    return float(result[0] if isinstance(result, (list, tuple)) else result)  # [total, per output...] or total


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("overrides", nargs="*", help="archgen overrides: key=value, +key=value, ~key")
    p.add_argument("--config", help="an archgen YAML file (default: a small 2D U-Net)")
    p.add_argument("--padding", choices=("valid", "same"), help="padding of every conv (default: the config's)")
    p.add_argument("--size", type=int, default=64, help="input height and width, snapped to a legal size")
    p.add_argument("--steps", type=int, default=200, help="training steps per epoch (default 200)")
    p.add_argument("--epochs", type=int, default=1, help="epochs (default 1)")
    p.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    p.add_argument("--lr", type=float, default=1e-2, help="Adam's learning rate (default 1e-2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=("tensorflow", "jax", "torch"), help="Keras back end")
    args = p.parse_args(argv)
    try:
        result = train(args.config or SMALL_UNET, args.overrides, padding=args.padding, size=args.size,
                       steps=args.steps, epochs=args.epochs, batch=args.batch, learning_rate=args.lr,
                       seed=args.seed, backend=args.backend, verbose=2)
    except (archgen.ArchgenError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{result['config']} ({result['padding']} padding, {result['params']:,} params): "
          f"input {result['input_shape']} -> output {result['output_shape']}")
    print(f"{result['steps']} steps in {result['seconds']:.1f} s; loss {result['first_loss']:.3f} -> "
          f"{result['final_loss']:.3f}; Dice {result['dice']:.3f} on 32 held-out images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
