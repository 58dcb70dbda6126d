"""What ``archgen auto`` plans from: nnU-Net's fingerprint and dataset.json, or figures on the command line.

Every bad value raises :class:`archgen.errors.SpecError` with a dotted path (``--spacing``,
``fingerprint.spacings[3]``, ``dataset.labels``) so the command line prints one line and exits 2.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from archgen.auto.nnunet import MIN_EDGE, Dataset
from archgen.errors import SpecError

SPACING_2D = 999.0  # the spacing nnU-Net's 2D readers give the missing axis (NaturalImage2DIO)
DEFAULT_CASES = 100
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_gb(text: str, option: str = "--fit") -> float:
    """A memory size as nnU-Net's ``gpu_memory_target_in_gb``: bytes / 10^9 (8GB -> 8, 8GiB -> 8.59)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else ""
    if match and not unit and float(match.group(1)) > 0:
        raise SpecError(f"needs a unit, e.g. {match.group(1)}GB or {match.group(1)}GiB", path=option, value=text)
    if not match or unit not in _UNITS or float(match.group(1)) <= 0:
        raise SpecError("expected a memory size such as 8GB, 24GiB or 11000MB", path=option, value=text)
    return float(match.group(1)) * _UNITS[unit] / 1e9


def _numbers(text: str, option: str, kind: type) -> list:
    parts = [p.strip() for p in str(text).replace("x", ",").split(",")]
    out = []
    for p in parts:
        try:
            v = kind(p)
        except ValueError:
            raise SpecError(f"expected {'integers' if kind is int else 'numbers'} separated by commas, "
                            "e.g. 128,128,128", path=option, value=text) from None
        out.append(v)
    if len(out) not in (2, 3):
        raise SpecError(f"needs 2 (a 2D dataset) or 3 values, got {len(out)}", path=option, value=text)
    return out


def _check_spacing(values: list, path: str) -> list[float]:
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise SpecError("every spacing must be a positive number (mm per voxel)",
                            path=f"{path}[{i}]", value=v)
    return [float(v) for v in values]


def _check_shape(values: list, path: str, two_d: bool) -> list[int]:
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v != int(v) or v < 1:
            raise SpecError("every size must be a positive whole number of voxels", path=f"{path}[{i}]", value=v)
        if v < MIN_EDGE and not (two_d and i == 0 and v == 1):
            raise SpecError(f"is smaller than the minimum feature-map edge ({MIN_EDGE} voxels): no network can be "
                            "planned on it", path=f"{path}[{i}]", value=int(v))
    return [int(v) for v in values]


def from_figures(shape: str, spacing: str, channels: int, classes: int, cases: int | None) -> Dataset:
    """One median case, as if every training case had this shape and spacing."""
    dims = _numbers(shape, "--shape", int)
    sp = _numbers(spacing, "--spacing", float)
    if len(sp) != len(dims):
        raise SpecError(f"has {len(sp)} values; --shape has {len(dims)}", path="--spacing", value=spacing)
    for i, v in enumerate(sp):
        if not math.isfinite(v) or v <= 0:
            raise SpecError(f"axis {i} is {v:g}: every spacing must be a positive number (mm per voxel)",
                            path="--spacing", value=spacing)
    for i, v in enumerate(dims):
        if v < MIN_EDGE:
            raise SpecError(f"axis {i} is {v}, smaller than the minimum feature-map edge ({MIN_EDGE} voxels): "
                            "no network can be planned on it", path="--shape", value=shape)
    _check_counts(channels, classes, cases)
    if len(dims) == 2:  # a 2D dataset, as nnU-Net stores one: a singleton first axis of spacing 999
        dims, sp = [1, *dims], [SPACING_2D, *sp]
    n = cases or DEFAULT_CASES
    notes = [] if cases else [f"--cases not given: {DEFAULT_CASES} training cases assumed (the batch-size cap)"]
    return Dataset([sp] * n, [dims] * n, channels, classes, n,
                   source=f"--shape {shape} --spacing {spacing} --channels {channels} --classes {classes} "
                          f"--cases {n}", notes=notes)


def _check_counts(channels: int | None, classes: int | None, cases: int | None) -> None:
    if channels is not None and channels < 1:
        raise SpecError("must be at least 1", path="--channels", value=channels)
    if classes is not None and classes < 2:
        raise SpecError("counts the labels with the background (nnU-Net's len(labels)): at least 2",
                        path="--classes", value=classes)
    if cases is not None and cases < 1:
        raise SpecError("must be at least 1", path="--cases", value=cases)


def _load_json(path: str, what: str) -> Any:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SpecError(f"cannot be read: {exc.strerror or exc}", path=f"--{what}", value=path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", path=what,
                        value=path) from None


def from_files(fingerprint_path: str, dataset_path: str | None, channels: int | None, classes: int | None,
               cases: int | None) -> Dataset:
    """nnU-Net's dataset_fingerprint.json (and dataset.json for channels, labels, numTraining)."""
    _check_counts(channels, classes, cases)
    fp = _load_json(fingerprint_path, "fingerprint")
    if not isinstance(fp, dict):
        raise SpecError("must be a JSON object with spacings and shapes_after_crop", path="fingerprint",
                        value=type(fp).__name__)
    for key in ("spacings", "shapes_after_crop"):
        if key not in fp:
            raise SpecError("is missing (is this nnU-Net's dataset_fingerprint.json?)", path=f"fingerprint.{key}")
        if not isinstance(fp[key], list) or not fp[key]:
            raise SpecError("must be a non-empty list, one entry per training case", path=f"fingerprint.{key}",
                            value=fp[key])
    spacings, shapes = fp["spacings"], fp["shapes_after_crop"]
    if len(spacings) != len(shapes):
        raise SpecError(f"has {len(spacings)} cases but shapes_after_crop has {len(shapes)}",
                        path="fingerprint.spacings", value=f"{len(spacings)} cases")
    two_d = all(isinstance(s, list) and len(s) == 3 and s[0] == 1 for s in shapes)
    for i, (sp, sh) in enumerate(zip(spacings, shapes)):
        for key, v in (("spacings", sp), ("shapes_after_crop", sh)):
            if not isinstance(v, list) or len(v) != 3:
                raise SpecError("must list 3 values (nnU-Net stores 2D images as 1 x H x W)",
                                path=f"fingerprint.{key}[{i}]", value=v)
        spacings[i] = _check_spacing(sp, f"fingerprint.spacings[{i}]")
        shapes[i] = _check_shape(sh, f"fingerprint.shapes_after_crop[{i}]", two_d)
    source = f"--fingerprint {fingerprint_path}"
    n_channels, n_classes, n_cases = channels, classes, cases
    if dataset_path is not None:
        dj = _load_json(dataset_path, "dataset")
        if not isinstance(dj, dict):
            raise SpecError("must be a JSON object (nnU-Net's dataset.json)", path="dataset", value=type(dj).__name__)
        names = dj.get("channel_names", dj.get("modality"))
        if not isinstance(names, dict) or not names:
            raise SpecError("is missing or empty: one entry per input channel", path="dataset.channel_names",
                            value=names if names is not None else ...)
        labels = dj.get("labels")
        if not isinstance(labels, dict) or len(labels) < 2:
            raise SpecError("must map at least the background and one label", path="dataset.labels",
                            value=labels if labels is not None else ...)
        num = dj.get("numTraining")
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise SpecError("must be a positive whole number", path="dataset.numTraining",
                            value=num if num is not None else ...)
        n_channels = channels or len(names)
        n_classes = classes or len(labels)
        n_cases = cases or num
        source += f" --dataset {dataset_path}"
    notes = []
    if n_channels is None:
        n_channels = 1
        notes.append("no dataset.json and no --channels: 1 input channel assumed")
    if n_classes is None:
        raise SpecError("give --dataset (nnU-Net's dataset.json) or --classes: the planner needs the number of "
                        "labels", path="--classes")
    if n_cases is None:
        n_cases = len(spacings)
        notes.append(f"no dataset.json and no --cases: the fingerprint's {n_cases} cases used as numTraining")
    return Dataset(spacings, shapes, n_channels, n_classes, n_cases, source=source, notes=notes)
