"""Reading a data folder: formats, pairing, the split, normalisation, patches and batches."""

from __future__ import annotations

import numpy as np
import pytest

import archgen
from archgen.train.dataset import Targets, load_dataset
from archgen.train.files import DataError
from archgen.train.sampling import Window, cut, draw_batch
from archgen.train.setup import plan_training
from tests.train.helpers import TINY, shapes, volumes, write


def load(folder, *, ndim=2, channels=1, min_size=(32, 32), classes=3, validation=0.25, normalize="zscore", seed=0):
    return load_dataset(folder, "--data", ndim=ndim, channels=channels, min_size=min_size,
                        targets=Targets(classes, heads="head logits (softmax, 3 channels)"), validation=validation,
                        normalize=normalize, seed=seed)


def test_png_cases_pair_split_and_normalise(tmp_path):
    data = load(shapes(tmp_path, count=8))
    assert len(data.train) == 6 and len(data.validation) == 2  # 0.25 of 8
    assert {c.name for c in data.train + data.validation} == {f"case_{i:03d}" for i in range(8)}
    for case in data.train + data.validation:
        assert case.image.shape == (32, 32, 1) and case.image.dtype == np.float32
        assert abs(case.image.mean()) < 1e-5 and abs(case.image.std() - 1) < 1e-4
        assert case.target.dtype == np.uint8 and set(np.unique(case.target)) <= {0, 1, 2}
    again = load(tmp_path)
    assert [c.name for c in again.validation] == [c.name for c in data.validation]  # the seed fixes the split


def test_a_listed_validation_split(tmp_path):
    data = load(shapes(tmp_path, count=4), validation=["case_001", "case_003"])
    assert [c.name for c in data.validation] == ["case_001", "case_003"]
    with pytest.raises(DataError, match=r"data.validation\[0\]=case_01: is not a case of the data folder "
                                        r"\(did you mean 'case_001'\?\)"):
        load(tmp_path, validation=["case_01"])


@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_tiff_and_npy_images_with_channels(tmp_path, suffix):
    rng = np.random.default_rng(0)
    for i in range(4):
        write(tmp_path / "images" / f"c{i}{suffix}", rng.normal(size=(40, 36, 2)).astype(np.float32))
        write(tmp_path / "masks" / f"c{i}{suffix}", rng.integers(0, 3, (40, 36)).astype(np.uint16))
    data = load(tmp_path, channels=2)
    assert data.train[0].image.shape == (40, 36, 2)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".npy"])
def test_volumes(tmp_path, suffix):
    data = load(volumes(tmp_path, suffix=suffix), ndim=3, min_size=(8, 8, 8), classes=2)
    assert data.train[0].image.shape == (12, 16, 16, 1)
    assert set(data.train[0].locations) == {1}  # where foreground patches are centred
    coords = data.train[0].locations[1]
    assert (data.train[0].target[tuple(coords.T)] == 1).all()


def test_ct_normalisation_clips_to_foreground_percentiles(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(5):
        image = rng.normal(0, 100, (32, 32)).astype(np.float32)
        mask = np.zeros((32, 32), np.uint8)
        mask[8:24, 8:24] = 1
        image[mask == 1] = rng.normal(40, 10, 256)
        image[0, 0] = 3000.0  # bone, far outside the foreground's range
        write(tmp_path / "images" / f"c{i}.npy", image)
        write(tmp_path / "masks" / f"c{i}.npy", mask)
    data = load(tmp_path, normalize="ct", classes=2, validation=0.2)
    assert data.normalization["scheme"] == "ct"
    assert data.normalization["mean"][0] == pytest.approx(40, abs=3)
    top = (data.normalization["clip"][1][0] - data.normalization["mean"][0]) / data.normalization["std"][0]
    assert data.train[0].image.max() == pytest.approx(top, rel=1e-4)  # 3000 clipped to the 99.5 percentile


def test_ct_needs_foreground(tmp_path):
    for i in range(3):
        write(tmp_path / "images" / f"c{i}.npy", np.ones((32, 32), np.float32))
        write(tmp_path / "masks" / f"c{i}.npy", np.zeros((32, 32), np.uint8))
    with pytest.raises(DataError, match="data.normalize=ct: needs foreground intensities"):
        load(tmp_path, normalize="ct", validation=0.34)


def test_float_masks_of_whole_numbers_are_labels(tmp_path):
    for i in range(4):
        write(tmp_path / "images" / f"c{i}.npy", np.zeros((32, 32), np.float32))
        write(tmp_path / "masks" / f"c{i}.npy", np.full((32, 32), 2.0, np.float64))
    assert load(tmp_path).train[0].target.max() == 2


# --- patches ------------------------------------------------------------------------------------

def test_a_window_inside_the_image_is_a_plain_slice_and_mirrors_past_the_border():
    from archgen.tiling import mirror_pad

    image = np.arange(20 * 30, dtype=np.float32).reshape(20, 30, 1)
    window = Window.of((16, 16), (8, 8))  # a valid-padding network: 4 pixels of context each side
    assert window.before == (4, 4)
    assert (cut(image, (6, 10), window) == image[2:18, 6:22]).all()
    padded = mirror_pad(image, [(4, 4), (4, 4)])  # predict_tiled's mirroring
    for start in [(0, 0), (12, 22), (0, 22)]:
        assert (cut(image, start, window) == padded[start[0]:start[0] + 16, start[1]:start[1] + 16]).all()


def test_foreground_oversampling_centres_the_last_third_on_foreground(tmp_path):
    data = load(volumes(tmp_path, count=3, size=(24, 24, 24), suffix=".npy"), ndim=3, min_size=(8, 8, 8), classes=2,
                validation=0.34)
    window = Window.of((8, 8, 8), (8, 8, 8))
    rng = np.random.default_rng(0)
    for _ in range(20):
        images, labels = draw_batch(data.train, window, 6, rng, oversampling=1 / 3)
        assert images.shape == (6, 8, 8, 8, 1) and labels.shape == (6, 8, 8, 8)
        assert (labels[4:].reshape(2, -1).max(axis=1) == 1).all()  # the last round(6/3) patches hold a ball


def test_plan_training_crops_valid_padding_labels_to_the_output():
    spec = archgen.load(TINY, ["padding=valid", "input.shape=[44,44,1]"])
    setup = plan_training(spec)
    assert setup.window.patch == (44, 44) and setup.window.out == (4, 4)
    assert setup.targets.classes == 3
    spec = archgen.load(TINY, ["padding=valid", "input.shape=[null,null,1]", "+data.patch_size=[60,60]"])
    assert plan_training(spec).window.out == (20, 20)


def test_open_sizes_need_a_patch():
    spec = archgen.load(TINY, ["input.shape=[null,null,1]"])
    with pytest.raises(archgen.ArchgenError, match="training needs a fixed patch: set data.patch_size"):
        plan_training(spec)
    spec = archgen.load(TINY, ["input.shape=[null,null,1]", "+data.patch_size=[30,30]"])
    with pytest.raises(archgen.ArchgenError) as info:
        plan_training(spec)
    assert info.value.path == "data.patch_size"


def test_batches_carry_labels_for_every_output(tmp_path):
    from archgen.train.pipeline import TrainBatches

    spec = archgen.load(TINY, ["heads.0.deep_supervision=[2]"])
    setup = plan_training(spec)
    data = load(shapes(tmp_path, count=4))
    batches = TrainBatches(data.train, setup.window, setup.outputs, batch_size=3, steps_per_epoch=2, seed=0,
                           oversampling=0.33, ndim=2)
    x, y = batches[0]
    assert x.shape == (3, 32, 32, 1)
    assert y["logits"].shape == (3, 32, 32) and y["logits_dec2"].shape == (3, 16, 16)
    again_x, _ = batches[0]
    assert (again_x == x).all()  # batch i of an epoch is the same however often it is drawn
    batches.on_epoch_end()
    assert not (batches[0][0] == x).all()
