"""A data folder read whole into memory, checked, normalised and split (NumPy only).

Everything is checked before training starts, so a bad file stops ``archgen train`` before it
writes anything: the pairs (``files.list_cases``), each file (``files.read_array``), that an
image's channels are the input's, that an image and its mask have one size, that the mask's
labels are ones every head takes, that no image is smaller than the network's output patch,
that the values are finite, and that the folder fits in the memory this machine has free.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from archgen.train.files import DECODED_COPIES, DataError, Pair, case_name, declared, list_cases, read_array

LOCATIONS_PER_CLASS = 10_000  # foreground pixels remembered per class and case (nnU-Net samples as many)
MEMORY_SHARE = 0.5  # at most this share of the free memory holds the data


@dataclass(frozen=True)
class Targets:
    """What the masks must hold: integer labels 0..classes-1 (``classes``), or regression maps of
    ``channels`` channels (``classes`` None). ``heads`` words the label error."""

    classes: int | None
    channels: int = 1
    heads: str = ""


@dataclass
class Case:
    """One image and its mask, in memory."""

    name: str
    image: np.ndarray  # float32 (*spatial, C), normalised
    target: np.ndarray  # labels (*spatial), unsigned integers; or float32 (*spatial, K) for regression
    locations: dict[int, np.ndarray] = field(default_factory=dict)  # class -> (n, ndim) pixel coordinates

    @property
    def spatial(self) -> tuple[int, ...]:
        return self.image.shape[:-1]


@dataclass
class Dataset:
    train: list[Case]
    validation: list[Case]
    normalization: dict  # what was applied: {"scheme": ..., and for ct the clip and scale per channel}


def load_dataset(folder: Path, key: str, *, ndim: int, channels: int, min_size: Sequence[int], targets: Targets,
                 validation: float | list[str], normalize: str, seed: int, images: str = "images",
                 masks: str = "masks", workers: int = 2) -> Dataset:
    """Read, check, normalise and split the cases of ``folder`` (see the module's docstring).

    ``min_size``: the smallest spatial size an image may have (the network's output patch).
    """
    from archgen.model_file import available_memory

    pairs = list_cases(folder, key, images, masks)
    budget = int(available_memory() * MEMORY_SHARE)
    sizes = [(_file_size(p.image, "data.images", images), _file_size(p.mask, "data.masks", masks)) for p in pairs]
    on_disk = sum(image + mask for image, mask in sizes)
    if on_disk > budget:
        raise DataError(f"holds {_bytes(on_disk)} of images and masks; archgen train keeps them in memory, "
                        f"and {_bytes(budget)} (half the memory free) is the most it takes", path=key,
                        value=str(folder))
    # what the headers declare, before anything is decoded: a few KB of zlib can declare gigabytes.
    # Held: each image as float32, each mask as labels (or float32 targets). And while a case is
    # read, beside what is held: a file's bytes and the decoder's copies of its array in the file's
    # own type, in each of the `workers` threads at once.
    label = 4 if targets.classes is None else 1 if targets.classes <= 256 else 2 if targets.classes <= 65536 else 4
    held, reading = 0, []
    for pair, (image_size, mask_size) in zip(pairs, sizes):
        (image_values, image_item), (mask_values, mask_item) = declared(pair.image), declared(pair.mask)
        held += image_values * 4 + mask_values * label
        reading.append(max(image_size + image_values * image_item * DECODED_COPIES[case_name(pair.image.name)[1]],
                           mask_size + mask_values * mask_item * DECODED_COPIES[case_name(pair.mask.name)[1]]))
    peak = held + sum(sorted(reading)[-max(1, workers):])
    if peak > budget:
        raise DataError(f"declares images and masks that take {_bytes(peak)} to decode and hold (from the files' "
                        f"headers); archgen train keeps them in memory, and {_bytes(budget)} (half the memory free) "
                        "is the most it takes", path=key, value=str(folder))
    val_names = _validation_names([p.name for p in pairs], validation, seed)
    reader = _Reader(folder, ndim, channels, min_size, targets, images, masks)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        cases = list(pool.map(reader.read, pairs))  # in order: the first bad file by name is the one reported
    held = sum(c.image.nbytes + c.target.nbytes for c in cases)
    if held > budget:
        raise DataError(f"decodes to {_bytes(held)}; archgen train keeps the data in memory, and "
                        f"{_bytes(budget)} (half the memory free) is the most it takes", path=key,
                        value=str(folder))
    train = [c for c in cases if c.name not in val_names]
    val = [c for c in cases if c.name in val_names]
    normalization = normalize_cases(train, val, normalize, targets.classes is not None, seed)
    rng = np.random.default_rng([seed, 1])
    if targets.classes is not None:
        for case in train:
            case.locations = foreground_locations(case.target, rng)
    return Dataset(train, val, normalization)


def _file_size(path: Path, key: str, sub: str) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:  # a link to nothing, a file gone since the listing
        raise DataError(f"cannot be read: {exc.strerror}", path=key, value=f"{sub}/{path.name}") from None


def _validation_names(names: list[str], validation: float | list[str], seed: int) -> set[str]:
    from archgen.errors import did_you_mean

    if isinstance(validation, list):
        chosen = set()
        for i, name in enumerate(validation):
            if name not in names:
                raise DataError(f"is not a case of the data folder{did_you_mean(name, names)}",
                                path=f"data.validation[{i}]", value=name)
            chosen.add(name)
        if len(chosen) == len(names):
            raise DataError(f"holds every one of the {len(names)} cases, which leaves none to train on",
                            path="data.validation", value=validation)
        return chosen
    count = round(validation * len(names))
    if count == 0:
        raise DataError(f"of {len(names)} case{'s' if len(names) != 1 else ''} is an empty validation split; "
                        "add cases, raise the fraction or list the validation cases", path="data.validation",
                        value=validation)
    if count >= len(names):
        raise DataError(f"of {len(names)} case{'s' if len(names) != 1 else ''} leaves none to train on; add cases "
                        "or list the validation cases", path="data.validation", value=validation)
    order = np.random.default_rng(seed).permutation(len(names))
    return {names[i] for i in order[:count]}


@dataclass(frozen=True)
class _Reader:
    folder: Path
    ndim: int
    channels: int
    min_size: Sequence[int]
    targets: Targets
    images: str
    masks: str

    def read(self, pair: Pair) -> Case:
        image_shown, mask_shown = f"{self.images}/{pair.image.name}", f"{self.masks}/{pair.mask.name}"
        image_key, mask_key = "data.images", "data.masks"  # the options' keys, whatever the folders are called
        image = self._image(read_array(pair.image, image_key, image_shown), image_key, image_shown)
        raw = read_array(pair.mask, mask_key, mask_shown)
        target = self._labels(raw, mask_key, mask_shown) if self.targets.classes is not None else \
            self._regression(raw, mask_key, mask_shown)
        if target.shape[:self.ndim] != image.shape[:-1]:
            raise DataError(f"is {_size(target.shape[:self.ndim])}, but its image {image_shown} is "
                            f"{_size(image.shape[:-1])}; an image and its mask must have one size", path=mask_key,
                            value=mask_shown)
        small = [n < m for n, m in zip(image.shape[:-1], self.min_size)]
        if any(small):
            raise DataError(f"is {_size(image.shape[:-1])}, smaller than the {_size(self.min_size)} patch the network "
                            "predicts at once; use larger images, or a smaller data.patch_size or input.shape",
                            path=image_key, value=image_shown)
        return Case(pair.name, image, target)

    def _spatial_rank(self, array: np.ndarray, key: str, shown: str, what: str) -> None:
        if array.ndim not in (self.ndim, self.ndim + 1):
            raise DataError(f"has {array.ndim} axes ({_size(array.shape)}); a {self.ndim}D {what} has {self.ndim}, "
                            f"or {self.ndim + 1} with channels last", path=key, value=shown)

    def _image(self, array: np.ndarray, key: str, shown: str) -> np.ndarray:
        self._spatial_rank(array, key, shown, "image")
        if array.ndim == self.ndim:
            array = array[..., None]
        if array.shape[-1] != self.channels:
            raise DataError(f"has {array.shape[-1]} channel{'s' if array.shape[-1] != 1 else ''}, but the network's "
                            f"input has {self.channels} (input.shape)", path=key, value=shown)
        return _float32(array, key, shown)

    def _labels(self, array: np.ndarray, key: str, shown: str) -> np.ndarray:
        self._spatial_rank(array, key, shown, "mask")
        if array.ndim == self.ndim + 1:
            if array.shape[-1] != 1:
                raise DataError(f"has {array.shape[-1]} channels; a mask holds one integer label per pixel",
                                path=key, value=shown)
            array = array[..., 0]
        if array.dtype.kind == "f" and (not _finite(array) or
                                        any((block != np.round(block)).any() for block in _blocks(array))):
            raise DataError("holds values that are not whole numbers; a mask holds integer labels", path=key,
                            value=shown)
        low, high = (array.min(), array.max()) if array.size else (0, 0)
        classes = self.targets.classes
        if low < 0 or high >= classes:
            bad = low if low < 0 else high
            # a float's digits bounded: 1e300 is 1e+300, not 301 digits
            bad = int(bad) if array.dtype.kind != "f" or abs(bad) < 1e15 else f"{bad:.6g}"
            raise DataError(f"holds label {bad}; {self.targets.heads} takes labels 0 to {classes - 1}", path=key,
                            value=shown)
        return array.astype(np.uint8 if classes <= 256 else np.uint16 if classes <= 65536 else np.int32)

    def _regression(self, array: np.ndarray, key: str, shown: str) -> np.ndarray:
        self._spatial_rank(array, key, shown, "target")
        if array.ndim == self.ndim:
            array = array[..., None]
        if array.shape[-1] != self.targets.channels:
            raise DataError(f"has {array.shape[-1]} channels; {self.targets.heads} has {self.targets.channels}",
                            path=key, value=shown)
        return _float32(array, key, shown)


def _float32(array: np.ndarray, key: str, shown: str) -> np.ndarray:
    """``array`` as a writable float32 array of finite values (a .npy is read as a read-only view of
    its file's bytes)."""
    with np.errstate(over="ignore"):  # a float64 beyond float32's range: refused below, not warned of
        out = np.asarray(array, dtype=np.float32)
    if not _finite(out):
        if _finite(array):
            raise DataError(f"holds values beyond float32's range (±{np.finfo(np.float32).max:.1e}); archgen "
                            "trains in float32: rescale them", path=key, value=shown)
        raise DataError("holds NaN or infinite values", path=key, value=shown)
    return out if out.flags.writeable else out.copy()


def _finite(array: np.ndarray) -> bool:
    """Whether every value is finite, read without a copy (NaN spreads to the minimum and maximum,
    and an infinity is one of them): ``np.isfinite`` would hold a boolean of every value."""
    return array.dtype.kind != "f" or not array.size or bool(np.isfinite(array.min()) and np.isfinite(array.max()))


def _bytes(n: int) -> str:
    if n >= 2**50:  # a damaged header's dims: a few digits, not a hundred
        return f"{n / 2**50:.3g} PiB"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,} bytes"


def _size(shape: Sequence[int]) -> str:
    return "x".join(str(int(n)) for n in shape)


def foreground_locations(labels: np.ndarray, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Up to ``LOCATIONS_PER_CLASS`` pixel coordinates of each foreground class present."""
    out = {}
    flat = labels.ravel()
    for c in np.unique(flat):
        if c == 0:
            continue
        where = np.flatnonzero(flat == c)
        if where.size > LOCATIONS_PER_CLASS:
            where = rng.choice(where, LOCATIONS_PER_CLASS, replace=False)
        out[int(c)] = np.stack(np.unravel_index(where, labels.shape), axis=1)
    return out


def normalize_cases(train: list[Case], val: list[Case], scheme: str, classes: bool, seed: int) -> dict:
    """Normalise every image in place; return what was done (for the run's record).

    zscore: each image and channel to mean 0 and standard deviation 1 (nnU-Net's
    ZScoreNormalization, std floored at 1e-8). ct: nnU-Net's CTNormalization: clip each channel
    to the 0.5 and 99.5 percentiles of the training set's foreground intensities (up to 10,000
    pixels drawn from each case's foreground), then subtract their mean and divide by their
    standard deviation."""
    if scheme == "none":
        return {"scheme": "none"}
    if scheme == "zscore":
        for case in train + val:
            axes, count = tuple(range(case.image.ndim - 1)), case.image.size // case.image.shape[-1]
            mean = sum(block.sum(axis=axes, dtype=np.float64) for block in _blocks(case.image)) / count
            var = sum(np.square(block - mean).sum(axis=axes) for block in _blocks(case.image)) / count
            _standardize(case.image, mean, np.sqrt(var))
        return {"scheme": "zscore"}
    rng = np.random.default_rng([seed, 2])
    samples = []
    for case in train:
        fg = (case.target > 0) if classes else np.ones(case.spatial, bool)
        values = case.image[fg]
        if len(values) > LOCATIONS_PER_CLASS:
            values = values[rng.choice(len(values), LOCATIONS_PER_CLASS, replace=False)]
        samples.append(values)
    # in float64: the percentiles' interpolation overflows float32 between values near ±3.4e38
    pooled = np.concatenate(samples).astype(np.float64) if samples else np.zeros((0, 1))
    if len(pooled) == 0:
        raise DataError("needs foreground intensities, and the training masks hold no foreground (label above 0)",
                        path="data.normalize", value="ct")
    low, high = np.percentile(pooled, 0.5, axis=0), np.percentile(pooled, 99.5, axis=0)
    mean, std = pooled.mean(axis=0, dtype=np.float64), pooled.std(axis=0, dtype=np.float64)
    for case in train + val:
        np.clip(case.image, low.astype(np.float32), high.astype(np.float32), out=case.image)
        _standardize(case.image, mean, std)
    return {"scheme": "ct", "clip": [low.tolist(), high.tolist()], "mean": mean.tolist(), "std": std.tolist()}


def _standardize(image: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
    """``image = (image - mean) / std`` in place (std floored at 1e-8), computed in float64: in
    float32 the difference overflows for finite values near ±3.4e38 (the result is at most the
    square root of the pixel count)."""
    for block in _blocks(image):
        block[...] = (block - mean) / np.maximum(std, 1e-8)


def _blocks(image: np.ndarray, values: int = 1 << 20) -> list[np.ndarray]:
    """Views of ``image`` along its first axis of about ``values`` values each: float64 work on one
    block at a time, never a float64 copy of the whole image."""
    step = max(1, values // max(1, image[0].size)) if len(image) else 1
    return [image[start:start + step] for start in range(0, len(image), step)]
