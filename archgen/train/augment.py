"""Random transforms of a training batch, images and masks together (``augment:`` in the config).

2D batches go through Keras's own preprocessing layers, whose ``segmentation_masks`` path
samples a mask with nearest interpolation, so a mask keeps its label values: RandomFlip (one
layer per axis), RandomRotation, RandomZoom and RandomTranslation move image and mask alike,
mirroring at the border; RandomContrast and RandomBrightness, and Gaussian noise from
``keras.random.normal``, change the image only. Each layer draws its transformation from a
``SeedGenerator`` seeded from the batch's own generator, so a batch is the same whatever worker
thread makes it, and each thread has layers of its own (a layer's ``value_range`` is set per
batch: the intensities are normalised, not 0-255).

The elastic deformation is archgen's, in 2D as in 3D: Keras's RandomElasticTransform blurs a
per-pixel noise field with a Gaussian of 6 sigma taps, about 6 s for a batch of 8 at 256x256
on 2 CPU cores; here a smooth random field is drawn on a 4-point grid per axis and interpolated
(about 30 ms an image at 256x256), the image sampled linearly and the mask at the nearest pixel.

3D volumes (and 1D signals) go through the NumPy transforms below: flips, 90-degree rotations
in planes of equal sides, the elastic deformation, contrast, brightness and noise.

The masks that come back hold exactly the label values that went in, as the integer type they
came as (``tests/train/test_augment.py`` checks the label set after every transform).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from archgen.config.train import AugmentSpec

Augment = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def make_augment(spec: AugmentSpec | None, ndim: int) -> Augment | None:
    """The batch transform ``spec`` asks for (None when it asks for none)."""
    if spec is None or not any(getattr(spec, key) for key in AugmentSpec.model_fields):
        return None
    if ndim == 2:
        return KerasAugment(spec)
    return NumpyAugment(spec)


# --- 2D: Keras's preprocessing layers ------------------------------------------------------------

class KerasAugment:
    """2D batches ``(B, H, W, C)`` with masks ``(B, H, W)`` (or regression targets ``(B, H, W, K)``)."""

    SPATIAL = ("RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation")

    def __init__(self, spec: AugmentSpec):
        self.spec = spec
        self.local = threading.local()

    def _layers(self) -> list:
        """This thread's layers: spatial ones first (image and mask), then intensity ones (image)."""
        if getattr(self.local, "layers", None) is None:
            from archgen.backend import import_keras

            layers = import_keras().layers
            s = self.spec
            made = []
            if s.flip:  # two layers: "horizontal_and_vertical" flips both axes on one coin
                made += [layers.RandomFlip("horizontal"), layers.RandomFlip("vertical")]
            if s.rotation:
                made.append(layers.RandomRotation(s.rotation / 360.0, fill_mode="reflect"))
            if s.zoom:
                made.append(layers.RandomZoom((-s.zoom, s.zoom), fill_mode="reflect"))
            if s.translation:
                made.append(layers.RandomTranslation((-s.translation, s.translation),
                                                     (-s.translation, s.translation), fill_mode="reflect"))
            if s.contrast:
                made.append(layers.RandomContrast(s.contrast))
            if s.brightness:
                made.append(layers.RandomBrightness(s.brightness))
            self.local.layers = made
        return self.local.layers

    def __call__(self, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        from archgen.backend import import_keras

        keras = import_keras()
        ops = keras.ops
        if self.spec.rotate90 and images.shape[1] == images.shape[2]:
            images, labels = _rot90_2d(images, labels, rng)
        classes = labels.dtype.kind in "iub"
        layers = self._layers()
        spatial = [layer for layer in layers if type(layer).__name__ in self.SPATIAL]
        if spatial:
            x = ops.convert_to_tensor(images, dtype="float32")
            m = ops.convert_to_tensor((labels[..., None] if classes else labels).astype(np.float32))
            for layer in spatial:
                transform = layer.get_random_transformation({"images": x, "segmentation_masks": m}, training=True,
                                                            seed=self._seed(keras, rng))
                x = layer.transform_images(x, transform, training=True)
                m = layer.transform_segmentation_masks(m, transform, training=True)  # nearest
            images = np.asarray(ops.convert_to_numpy(x), dtype=np.float32)
            masks = np.asarray(ops.convert_to_numpy(m))
            labels = np.rint(masks[..., 0]).astype(labels.dtype) if classes else masks.astype(np.float32)
        if self.spec.elastic:
            moved = [elastic(a, b, self.spec.elastic, rng) for a, b in zip(images, labels)]
            images, labels = np.stack([a for a, _ in moved]), np.stack([b for _, b in moved])
        intensity = [layer for layer in layers if layer not in spatial]
        if intensity or self.spec.noise:
            low, high = float(images.min()), float(images.max())
            x = ops.convert_to_tensor(images, dtype="float32")
            for layer in intensity:
                layer.value_range = (low, high if high > low else low + 1.0)  # normalised, not 0-255
                transform = layer.get_random_transformation(x, training=True, seed=self._seed(keras, rng))
                x = layer.transform_images(x, transform, training=True)
            if self.spec.noise:
                x = x + keras.random.normal(ops.shape(x), stddev=self.spec.noise, seed=self._seed(keras, rng))
            images = np.asarray(ops.convert_to_numpy(x), dtype=np.float32)
        return images, labels

    @staticmethod
    def _seed(keras, rng: np.random.Generator):
        # A generator of its own per batch and layer: an integer seed would give every draw of a
        # layer the same number (RandomTranslation's two axes would move together).
        return keras.random.SeedGenerator(int(rng.integers(0, 2**31 - 1)))


def _rot90_2d(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    turns = rng.integers(0, 4, len(images))
    return (np.stack([np.rot90(x, k, axes=(0, 1)) for x, k in zip(images, turns)]),
            np.stack([np.rot90(y, k, axes=(0, 1)) for y, k in zip(labels, turns)]))


# --- 3D (and 1D): NumPy ---------------------------------------------------------------------------

class NumpyAugment:
    """Volumes ``(B, *spatial, C)`` with masks ``(B, *spatial)`` (or targets ``(B, *spatial, K)``)."""

    def __init__(self, spec: AugmentSpec):
        self.spec = spec

    def __call__(self, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        images, labels = images.copy(), labels.copy()
        out_images, out_labels = [], []
        for x, y in zip(images, labels):
            x, y = self.one(x, y, rng)
            out_images.append(x)
            out_labels.append(y)
        return np.stack(out_images).astype(np.float32), np.stack(out_labels)

    def one(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One image ``(*spatial, C)`` and its mask."""
        s = self.spec
        ndim = x.ndim - 1
        if s.flip:
            for axis in range(ndim):
                if rng.random() < 0.5:
                    x, y = np.flip(x, axis), np.flip(y, axis)
        if s.rotate90:
            planes = [(a, b) for a in range(ndim) for b in range(a + 1, ndim) if x.shape[a] == x.shape[b]]
            if planes:
                plane = planes[rng.integers(len(planes))]
                k = int(rng.integers(0, 4))
                x, y = np.rot90(x, k, axes=plane), np.rot90(y, k, axes=plane)
        if s.elastic and ndim >= 2:
            x, y = elastic(x, y, s.elastic, rng)
        if s.contrast:
            mean = x.mean(axis=tuple(range(ndim)), keepdims=True)
            x = (x - mean) * rng.uniform(1 - s.contrast, 1 + s.contrast) + mean
        if s.brightness:
            x = x + rng.uniform(-s.brightness, s.brightness) * float(x.max() - x.min())
        if s.noise:
            x = x + rng.normal(0.0, s.noise, x.shape)
        return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y)


GRID = 4  # control points of the elastic displacement per axis


def elastic(x: np.ndarray, y: np.ndarray, strength: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random displacement: on a ``GRID``-point grid per axis, normal with a standard
    deviation of ``strength`` x a tenth of the axis, interpolated linearly to every pixel. The
    image is sampled linearly, the mask at the nearest pixel; both mirror at the border."""
    spatial = x.shape[:-1]
    coords = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in spatial], indexing="ij")
    moved = []
    for axis, n in enumerate(spatial):
        coarse = rng.normal(0.0, strength * n / 10, (GRID,) * len(spatial)).astype(np.float32)
        moved.append(coords[axis] + _upsample(coarse, spatial))
    mirrored = [_mirror(c, n) for c, n in zip(moved, spatial)]
    return _linear(x, mirrored), _nearest(y, mirrored)


def _upsample(coarse: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Separable linear interpolation of a small grid to ``shape``."""
    out = coarse
    for axis, n in enumerate(shape):
        src = np.linspace(0, out.shape[axis] - 1, n)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, out.shape[axis] - 1)
        w = (src - lo).reshape([-1 if a == axis else 1 for a in range(out.ndim)])
        out = np.take(out, lo, axis=axis) * (1 - w) + np.take(out, hi, axis=axis) * w
    return out.astype(np.float32)


def _mirror(c: np.ndarray, n: int) -> np.ndarray:
    """Coordinates folded back into [0, n - 1] by mirroring (NumPy's reflect, no repeated edge)."""
    if n == 1:
        return np.zeros_like(c)
    period = 2 * (n - 1)
    c = np.mod(c, period)
    return np.where(c <= n - 1, c, period - c)


def _nearest(y: np.ndarray, coords: list[np.ndarray]) -> np.ndarray:
    index = tuple(np.clip(np.rint(c).astype(int), 0, n - 1) for c, n in zip(coords, y.shape))
    return y[index]


def _linear(x: np.ndarray, coords: list[np.ndarray]) -> np.ndarray:
    """Multilinear sampling of ``x`` (``(*spatial, C)``) at ``coords`` (one array per axis)."""
    lows = [np.clip(np.floor(c).astype(int), 0, n - 1) for c, n in zip(coords, x.shape)]
    highs = [np.minimum(lo + 1, n - 1) for lo, n in zip(lows, x.shape)]
    weights = [c - lo for c, lo in zip(coords, lows)]
    out = np.zeros(coords[0].shape + x.shape[-1:], np.float32)
    for corner in range(2 ** len(coords)):
        index, w = [], 1.0
        for axis in range(len(coords)):
            if corner >> axis & 1:
                index.append(highs[axis])
                w = w * weights[axis]
            else:
                index.append(lows[axis])
                w = w * (1 - weights[axis])
        out += x[tuple(index)] * w[..., None]
    return out
