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


def load(folder, *, ndim=2, channels=1, min_size=(32, 32), classes=3, validation=0.25, normalize="zscore", seed=0,
         images="images", masks="masks"):
    return load_dataset(folder, "--data", ndim=ndim, channels=channels, min_size=min_size,
                        targets=Targets(classes, heads="head logits (softmax, 3 channels)"), validation=validation,
                        normalize=normalize, seed=seed, images=images, masks=masks)


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


def test_a_huge_float_label_is_shown_in_a_few_digits(tmp_path):
    """int(1e300) is 301 digits: the message shows 1e+300."""
    for i in range(4):
        write(tmp_path / "images" / f"c{i}.npy", np.zeros((32, 32), np.float32))
        write(tmp_path / "masks" / f"c{i}.npy", np.zeros((32, 32), np.float64))
    write(tmp_path / "masks" / "c0.npy", np.full((32, 32), 1e300))
    with pytest.raises(DataError) as info:
        load(tmp_path)
    assert info.value.render() == "data.masks=masks/c0.npy: holds label 1e+300; head logits (softmax, 3 channels) " \
                                  "takes labels 0 to 2"


@pytest.mark.parametrize("normalize", ["zscore", "ct"])
def test_float32_images_near_their_range_normalise_without_overflow(tmp_path, normalize):
    """In float32, 3e38 - (-3e38) is infinite: a RuntimeWarning, then training on NaN. In float64 the
    normalised values are finite, and equal to NumPy's own mean and std (a block at a time: this
    image is two blocks)."""
    import warnings

    rng = np.random.default_rng(0)
    images = []
    for i in range(3):
        image = np.full((1100, 1000), 3.0e38, np.float32)  # the mean near 3e38 ...
        image[::50] = -3.0e38  # ... and 2% of the values (past ct's 0.5 percentile) 6e38 below it
        image[:, ::7] = rng.uniform(1e38, 3e38, (1100, 143))
        images.append(image)
        write(tmp_path / "images" / f"c{i}.npy", image)
        write(tmp_path / "masks" / f"c{i}.npy", (np.arange(1000) % 3 == 0)[None].repeat(1100, 0).astype(np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load(tmp_path, min_size=(16, 16), normalize=normalize, validation=0.34)
    for case in data.train + data.validation:
        assert np.isfinite(case.image).all()
    if normalize == "zscore":
        image = images[int(data.train[0].name[1:])].astype(np.float64)
        expected = (image - image.mean()) / image.std()
        assert np.allclose(data.train[0].image[..., 0], expected, atol=1e-5)


def test_a_float64_image_beyond_float32s_range_is_refused_without_a_warning(tmp_path):
    import warnings

    for i in range(4):
        write(tmp_path / "images" / f"c{i}.npy", np.zeros((32, 32)))
        write(tmp_path / "masks" / f"c{i}.npy", np.zeros((32, 32), np.uint8))
    write(tmp_path / "images" / "c1.npy", np.full((32, 32), 1e300))
    with warnings.catch_warnings(), pytest.raises(DataError) as info:
        warnings.simplefilter("error")
        load(tmp_path)
    assert info.value.render() == "data.images=images/c1.npy: holds values beyond float32's range (±3.4e+38); " \
                                  "archgen trains in float32: rescale them"
    write(tmp_path / "images" / "c1.npy", np.full((32, 32), np.inf))
    with pytest.raises(DataError, match="images/c1.npy: holds NaN or infinite values$"):
        load(tmp_path)


def test_errors_name_the_options_keys_whatever_the_folders_are_called(tmp_path):
    """data.images: imgs names the folder; the key is still data.images, not data.imgs."""
    import shutil

    def error(**kwargs):
        with pytest.raises(DataError) as info:
            load(tmp_path, images="imgs", masks="pics", **kwargs)
        return info.value.render()

    for i in range(4):
        write(tmp_path / "imgs" / f"c{i}.npy", np.zeros((32, 32), np.float32))
    assert error() == "data.masks=pics: no such folder"
    for i in range(3):
        write(tmp_path / "pics" / f"c{i}.npy", np.zeros((32, 32), np.uint8))
    assert error() == "data.images=imgs/c3.npy: has no mask: no pics/c3.* beside it"
    write(tmp_path / "pics" / "c3.npy", np.zeros((32, 30), np.uint8))
    assert error() == "data.masks=pics/c3.npy: is 32x30, but its image imgs/c3.npy is 32x32; an image and its mask " \
                      "must have one size"
    write(tmp_path / "imgs" / "c2.npy", np.full((32, 32), np.nan, np.float32))
    assert error() == "data.images=imgs/c2.npy: holds NaN or infinite values"
    (tmp_path / "pics" / "c0.jpg").write_bytes(b"")
    assert error() == "data.masks=pics/c0.jpg: is not a format archgen reads; expected .nii.gz, .png, .tif, .tiff, " \
                      ".npy, .nii"
    (tmp_path / "pics" / "c0.jpg").unlink()
    shutil.rmtree(tmp_path / "imgs")
    (tmp_path / "imgs").mkdir()
    assert error() == "data.images=imgs: holds no images (.nii.gz, .png, .tif, .tiff, .npy, .nii)"


def test_a_png_over_pillows_warning_size_loads_without_its_warning(tmp_path, monkeypatch):
    """Pillow warns of a "decompression bomb" past 89M pixels (here: 1,000); archgen checks the size
    itself, and its stderr is one line."""
    import warnings

    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the 32x32 shapes: 1,024 pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load(shapes(tmp_path, count=4))
    assert data.train[0].image.shape == (32, 32, 1)


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
