"""Joint augmentation: masks keep their label values and move with their images, in 2D and 3D."""

from __future__ import annotations

import numpy as np
import pytest

from archgen.config.train import AugmentSpec
from archgen.train.augment import make_augment

SPATIAL = [("flip", True), ("rotate90", True), ("rotation", 30.0), ("zoom", 0.3), ("translation", 0.2),
           ("elastic", 1.0)]
INTENSITY = [("contrast", 0.5), ("brightness", 0.3), ("noise", 0.2)]
EXACT = {"flip", "rotate90"}  # whole-pixel moves: the image (nearest-free) lines up exactly


def blocks(ndim: int, size: int = 32, batch: int = 4):
    """Masks of labels 0, 1, 2 and 7 in blocks, and images equal to 10 x label: where a transform
    moves image and mask together, round(image / 10) is the mask again."""
    labels = np.zeros((batch, *(size,) * ndim), np.uint8)
    third = size // 3
    labels[(slice(None), *(slice(2, third),) * ndim)] = 1
    labels[(slice(None), *(slice(third, 2 * third + 3),) * ndim)] = 2
    labels[(slice(None), *(slice(2 * third + 3, size - 1),) * ndim)] = 7
    return (labels[..., None] * 10.0).astype(np.float32), labels


TRANSFORMS = [(ndim, key, value) for ndim in (2, 3) for key, value in SPATIAL + INTENSITY
              if ndim == 2 or key not in ("rotation", "zoom", "translation")]  # 2D only: the config refuses them in 3D


@pytest.mark.parametrize(("ndim", "key", "value"), TRANSFORMS, ids=[f"{k}-{n}d" for n, k, _ in TRANSFORMS])
def test_every_transform_keeps_the_label_set_and_the_mask_on_its_image(ndim, key, value):
    images, labels = blocks(ndim)
    augment = make_augment(AugmentSpec(**{key: value}), ndim)
    for seed in range(3):
        x, y = augment(images, labels, np.random.default_rng(seed))
        assert y.dtype == np.uint8 and y.shape == labels.shape and x.shape == images.shape
        assert set(np.unique(y)) <= {0, 1, 2, 7}  # no value between two classes, none new
        if (key, value) in INTENSITY:
            assert (y == labels).all() and not np.allclose(x, images)  # the image alone changed
            continue
        agree = (np.rint(x[..., 0] / 10) == y).mean()
        assert agree == 1.0 if key in EXACT else agree > 0.9, (key, agree)
        assert not (y == labels).all()  # it moved something (4 patches: some draw is not the identity)


@pytest.mark.parametrize("ndim", [2, 3])
def test_a_batch_is_the_same_for_the_same_generator(ndim):
    images, labels = blocks(ndim)
    spec = AugmentSpec(flip=True, elastic=0.5, contrast=0.2, noise=0.1, **({"rotation": 20.0} if ndim == 2 else {}))
    augment = make_augment(spec, ndim)
    first = augment(images, labels, np.random.default_rng(5))
    again = augment(images, labels, np.random.default_rng(5))
    other = augment(images, labels, np.random.default_rng(6))
    assert np.array_equal(first[1], again[1]) and np.allclose(first[0], again[0])
    assert not np.allclose(first[0], other[0])


def test_flips_of_the_two_axes_are_drawn_apart():
    images, labels = blocks(2, batch=64)
    x, _ = make_augment(AugmentSpec(flip=True), 2)(images, labels, np.random.default_rng(0))
    kinds = set()
    for before, after in zip(images[..., 0], x[..., 0]):
        kinds.add(next(k for k, f in (("none", before), ("h", before[:, ::-1]), ("v", before[::-1]),
                                      ("both", before[::-1, ::-1])) if np.array_equal(f, after)))
    assert kinds == {"none", "h", "v", "both"}


def test_regression_targets_move_with_the_image():
    images, labels = blocks(2)
    targets = labels[..., None].astype(np.float32) * 0.5
    x, y = make_augment(AugmentSpec(flip=True, rotate90=True), 2)(images, targets, np.random.default_rng(1))
    assert y.dtype == np.float32 and np.allclose(x / 20, y)


def test_nothing_asked_is_no_transform():
    assert make_augment(None, 2) is None
    assert make_augment(AugmentSpec(), 3) is None


def test_batches_of_the_pipeline_are_augmented(tmp_path):
    import archgen
    from archgen.train.dataset import Targets, load_dataset
    from archgen.train.pipeline import TrainBatches
    from archgen.train.setup import plan_training
    from tests.train.helpers import TINY, shapes

    setup = plan_training(archgen.load(TINY))
    data = load_dataset(shapes(tmp_path, count=4), "--data", ndim=2, channels=1, min_size=(32, 32),
                        targets=Targets(3), validation=0.25, normalize="zscore", seed=0)
    kwargs = {"batch_size": 4, "steps_per_epoch": 1, "seed": 0, "oversampling": 0.0, "ndim": 2}
    plain = TrainBatches(data.train, setup.window, setup.outputs, **kwargs)[0]
    moved = TrainBatches(data.train, setup.window, setup.outputs, augment=make_augment(AugmentSpec(flip=True), 2),
                         **kwargs)[0]
    assert not np.array_equal(plain[0], moved[0])
    assert set(np.unique(moved[1])) <= {0, 1, 2}


@pytest.mark.parametrize("key", ["rotation", "zoom", "translation"])
def test_a_3d_config_refuses_the_2d_only_transforms_by_their_key(key):
    from archgen.config import validate
    from archgen.errors import SpecError

    with pytest.raises(SpecError) as info:
        validate({"input": {"shape": [32, 32, 32, 1]}, "encoder": {"depth": 2, "filters": 4},
                  "heads": [{"name": "logits", "filters": 2}], "augment": {key: 0.1}})
    assert info.value.path == f"augment.{key}" and "applies to 2D inputs" in info.value.message
