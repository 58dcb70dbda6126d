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

from archgen.train.files import DataError, Pair, declared_values, list_cases, read_array

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
    on_disk = sum(_file_size(p.image, folder, images) + _file_size(p.mask, folder, masks) for p in pairs)
    if on_disk > budget:
        raise DataError(f"holds {_bytes(on_disk)} of images and masks; archgen train keeps them in memory, "
                        f"and {_bytes(budget)} (half the memory free) is the most it takes", path=key,
                        value=str(folder))
    # what the headers declare, before anything is decoded: a few KB of zlib can declare gigabytes
    declared = sum(declared_values(p.image) * 4 + declared_values(p.mask) for p in pairs)  # float32, >= 1 byte
    if declared > budget:
        raise DataError(f"declares {_bytes(declared)} of images and masks in the files' headers; archgen train "
                        f"keeps them in memory, and {_bytes(budget)} (half the memory free) is the most it takes",
                        path=key, value=str(folder))
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


def _file_size(path: Path, folder: Path, sub: str) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:  # a link to nothing, a file gone since the listing
        raise DataError(f"cannot be read: {exc.strerror}", path=f"data.{sub}", value=f"{sub}/{path.name}") from None


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
        image_key, mask_key = f"data.{self.images}", f"data.{self.masks}"
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
        image = np.asarray(array, dtype=np.float32)
        if not np.isfinite(image).all():
            raise DataError("holds NaN or infinite values", path=key, value=shown)
        return image

    def _labels(self, array: np.ndarray, key: str, shown: str) -> np.ndarray:
        self._spatial_rank(array, key, shown, "mask")
        if array.ndim == self.ndim + 1:
            if array.shape[-1] != 1:
                raise DataError(f"has {array.shape[-1]} channels; a mask holds one integer label per pixel",
                                path=key, value=shown)
            array = array[..., 0]
        if array.dtype.kind == "f" and (not np.isfinite(array).all() or (array != np.round(array)).any()):
            raise DataError("holds values that are not whole numbers; a mask holds integer labels", path=key,
                            value=shown)
        low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
        classes = self.targets.classes
        if low < 0 or high >= classes:
            bad = low if low < 0 else high
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
        target = np.asarray(array, dtype=np.float32)
        if not np.isfinite(target).all():
            raise DataError("holds NaN or infinite values", path=key, value=shown)
        return target


def _bytes(n: int) -> str:
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
            mean = case.image.mean(axis=tuple(range(case.image.ndim - 1)), dtype=np.float64)
            std = case.image.std(axis=tuple(range(case.image.ndim - 1)), dtype=np.float64)
            case.image -= mean.astype(np.float32)
            case.image /= np.maximum(std, 1e-8).astype(np.float32)
        return {"scheme": "zscore"}
    rng = np.random.default_rng([seed, 2])
    samples = []
    for case in train:
        fg = (case.target > 0) if classes else np.ones(case.spatial, bool)
        values = case.image[fg]
        if len(values) > LOCATIONS_PER_CLASS:
            values = values[rng.choice(len(values), LOCATIONS_PER_CLASS, replace=False)]
        samples.append(values)
    pooled = np.concatenate(samples) if samples else np.zeros((0, 1), np.float32)
    if len(pooled) == 0:
        raise DataError("needs foreground intensities, and the training masks hold no foreground (label above 0)",
                        path="data.normalize", value="ct")
    low, high = np.percentile(pooled, 0.5, axis=0), np.percentile(pooled, 99.5, axis=0)
    mean, std = pooled.mean(axis=0, dtype=np.float64), pooled.std(axis=0, dtype=np.float64)
    for case in train + val:
        np.clip(case.image, low.astype(np.float32), high.astype(np.float32), out=case.image)
        case.image -= mean.astype(np.float32)
        case.image /= np.maximum(std, 1e-8).astype(np.float32)
    return {"scheme": "ct", "clip": [low.tolist(), high.tolist()], "mean": mean.tolist(), "std": std.tolist()}
