"""What ``archgen auto`` plans from: nnU-Net's fingerprint and dataset.json, or figures on the command line.

Every bad value raises :class:`archgen.errors.SpecError` with a dotted path (``--spacing``,
``fingerprint.spacings[3]``, ``dataset.labels``) so the command line prints one line and exits 2.

Both JSON files come from strangers and are read as config files are (``archgen.config.read``): a
regular file only (checked again on the file once open, which never blocks), at most
``MAX_JSON_BYTES``, UTF-8, nested at most ``MAX_DEPTH`` deep, strict JSON (no NaN or Infinity,
no key twice in one object), and every figure the planner uses within the bounds below.
"""

from __future__ import annotations

import json
import math
import re
from itertools import chain
from typing import Any

from archgen.auto.nnunet import Dataset
from archgen.errors import SpecError, dotted
from archgen.config.read import MAX_DEPTH, read_bounded_file

SPACING_2D = 999.0  # the spacing nnU-Net's 2D readers give the missing axis (NaturalImage2DIO)
DEFAULT_CASES = 100

# nnU-Net writes its fingerprint with indent 4: ~185 bytes per training case, so 8 MiB holds
# ~45,000 cases (the largest public nnU-Net datasets have ~10,000); a dataset.json is a few KiB.
MAX_JSON_BYTES = 8 << 20
MAX_EDGE = 1_000_000  # voxels along one axis of one image (a whole-slide image is ~100,000)
MIN_SPACING, MAX_SPACING = 1e-6, 1e6  # mm per voxel: 1 nm to 1 km
MAX_CASES = 10_000_000  # training cases (--cases, numTraining)
MAX_CHANNELS = 1 << 16  # input channels and classes: archgen's limit for a conv's filters (heads[].filters)
MAX_FIT_BYTES = 10**12  # --fit: 1 TB, several times the largest accelerator's memory
_MAX_DIGITS = 20  # a JSON integer longer than this is out of every range above; Python would convert it slowly
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_gb(text: str, option: str = "--fit") -> float:
    """A memory size as nnU-Net's ``gpu_memory_target_in_gb``: bytes / 10^9 (8GB -> 8, 8GiB -> 8.59)."""
    match = re.fullmatch(r"\s*((?:[0-9]*\.)?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else ""
    if match and not unit and float(match.group(1)) > 0:
        raise SpecError(f"needs a unit, e.g. {match.group(1)}GB or {match.group(1)}GiB", path=option, value=text)
    if not match or unit not in _UNITS or float(match.group(1)) <= 0:
        raise SpecError("expected a memory size such as 8GB, 24GiB or 11000MB", path=option, value=text)
    size = float(match.group(1)) * _UNITS[unit]  # inf for 1e400GB
    if not 1 <= size <= MAX_FIT_BYTES:
        raise SpecError(f"must be between 1 byte and {MAX_FIT_BYTES:,} bytes (1 TB)", path=option, value=text)
    return size / 1e9


def _numbers(text: str, option: str, kind: type) -> list:
    parts = [p.strip() for p in str(text).replace("x", ",").split(",")]
    out = []
    for i, p in enumerate(parts):
        if kind is int and p.isdigit() and len(p) > _MAX_DIGITS:
            raise SpecError(f"axis {i} has {len(p):,} digits: an image edge is at most {MAX_EDGE:,} voxels",
                            path=option, value=text)
        try:
            v = kind(p)
        except ValueError:
            raise SpecError(f"expected {'integers' if kind is int else 'numbers'} separated by commas, "
                            "e.g. 128,128,128", path=option, value=text) from None
        out.append(v)
    if len(out) not in (2, 3):
        raise SpecError(f"needs 2 (a 2D dataset) or 3 values, got {len(out)}", path=option, value=text)
    return out


_SPACING_RULE = f"every spacing must be a number of mm per voxel from {MIN_SPACING:g} to {MAX_SPACING:g}"
_EDGE_RULE = f"an image edge is at most {MAX_EDGE:,} voxels"


class _Huge:
    """A JSON integer of more than ``_MAX_DIGITS`` digits, kept as text: out of every range here."""

    def __init__(self, text: str):
        self.digits = len(text.lstrip("-"))
        self.negative = text.startswith("-")

    def __str__(self) -> str:
        return f"an integer of {self.digits:,} digits"


def _is_number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float))


def _shown(v: Any) -> Any:
    """A JSON value as an error shows it: a string quoted (``'1'`` is no number), a huge integer by its length."""
    return str(v) if isinstance(v, _Huge) else repr(v) if isinstance(v, str) else v


def _check_spacing(values: list, path: str) -> list[float]:
    for i, v in enumerate(values):
        if isinstance(v, _Huge) or not _is_number(v) or not MIN_SPACING <= v <= MAX_SPACING:  # NaN fails too
            raise SpecError(_SPACING_RULE, path=f"{path}[{i}]", value=_shown(v))
    return [float(v) for v in values]


def _check_shape(values: list, path: str) -> list[int]:
    for i, v in enumerate(values):
        if isinstance(v, _Huge) and not v.negative or _is_number(v) and v > MAX_EDGE:  # inf too
            raise SpecError(f"is too large: {_EDGE_RULE}", path=f"{path}[{i}]", value=str(v))
        if not _is_number(v) or not math.isfinite(v) or v != int(v) or v < 1:
            raise SpecError("every size must be a positive whole number of voxels", path=f"{path}[{i}]",
                            value=_shown(v))
    return [int(v) for v in values]


def from_figures(shape: str, spacing: str, channels: int, classes: int, cases: int | None) -> Dataset:
    """One median case, as if every training case had this shape and spacing."""
    dims = _numbers(shape, "--shape", int)
    sp = _numbers(spacing, "--spacing", float)
    if len(sp) != len(dims):
        raise SpecError(f"has {len(sp)} values; --shape has {len(dims)}", path="--spacing", value=spacing)
    for i, v in enumerate(sp):
        if not MIN_SPACING <= v <= MAX_SPACING:  # NaN and inf fail too
            raise SpecError(f"axis {i} is {v:g}: {_SPACING_RULE}", path="--spacing", value=spacing)
    for i, v in enumerate(dims):
        if v > MAX_EDGE:
            raise SpecError(f"axis {i} is {v:,}: {_EDGE_RULE}", path="--shape", value=shape)
        if v < 1:
            raise SpecError(f"axis {i} is {v}: every size must be a positive whole number of voxels", path="--shape",
                            value=shape)
    _check_counts(channels, classes, cases)
    if len(dims) == 2:  # a 2D dataset, as nnU-Net stores one: a singleton first axis of spacing 999
        dims, sp = [1, *dims], [SPACING_2D, *sp]
    n = cases or DEFAULT_CASES
    notes = [] if cases else [f"--cases not given: {DEFAULT_CASES} training cases assumed (the batch-size cap)"]
    # one case stands for all n: medians and percentiles of n equal cases are that case
    return Dataset([sp], [dims], channels, classes, n,
                   source=f"--shape {shape} --spacing {spacing} --channels {channels} --classes {classes} "
                          f"--cases {n}", notes=notes)


def _check_counts(channels: int | None, classes: int | None, cases: int | None) -> None:
    if channels is not None and not 1 <= channels <= MAX_CHANNELS:
        raise SpecError(f"must be from 1 to {MAX_CHANNELS:,} (archgen's limit for channels)", path="--channels",
                        value=channels)
    if classes is not None and not 2 <= classes <= MAX_CHANNELS:
        raise SpecError(f"counts the labels with the background (nnU-Net's len(labels)): from 2 to {MAX_CHANNELS:,} "
                        f"(heads[].filters allows 1 to {MAX_CHANNELS:,})", path="--classes", value=classes)
    if cases is not None and not 1 <= cases <= MAX_CASES:
        raise SpecError(f"must be from 1 to {MAX_CASES:,}", path="--cases", value=cases)


class _Object(dict):
    """A JSON object; ``twice`` is the first key it held more than once."""

    twice: Any = None


def _object(pairs: list) -> _Object:
    obj = _Object()
    for key, value in pairs:
        if key in obj and obj.twice is None:
            obj.twice = key
        obj[key] = value
    return obj


class _Constant:
    """NaN, Infinity or -Infinity: Python's json reads them, JSON has no such numbers."""

    def __init__(self, text: str):
        self.text = text


_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_LONG_INTEGER = re.compile(r"[0-9]{%d}" % (_MAX_DIGITS + 1))


def read_json_file(path: str, what: str) -> Any:
    """The JSON value in ``path`` (``what``: "fingerprint" or "dataset", also its option's name),
    read with the limits of a config file; ``SpecError`` naming the option or the dotted key."""
    raw = read_bounded_file(path, key=f"--{what}", max_bytes=MAX_JSON_BYTES, expected="a .json file",
                            noun="an nnU-Net JSON file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start:,})", path=what,
                        value=path) from None
    text = text.removeprefix("\ufeff")  # a byte order mark, as some editors write
    # the text outside strings (each string blanked, same length): its brackets and digits
    bare = _STRING.sub(lambda m: '"' + " " * (len(m.group(0)) - 2) + '"', text)
    _check_depth(text, bare, what, path)
    flagged: list = []  # NaN/Infinity and objects with a key twice: looked for by key only if any

    def pairs(items: list) -> _Object:
        obj = _object(items)
        if obj.twice is not None:
            flagged.append(obj)
        return obj

    def constant(name: str) -> _Constant:
        flagged.append(name)
        return _Constant(name)

    hooks: dict[str, Any] = {"object_pairs_hook": pairs, "parse_constant": constant}
    if _LONG_INTEGER.search(bare):  # only then: the hook costs a call per integer
        hooks["parse_int"] = lambda t: int(t) if len(t.lstrip("-")) <= _MAX_DIGITS else _Huge(t)
    try:
        data = json.loads(text, **hooks)
    except json.JSONDecodeError as exc:
        raise SpecError(f"is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", path=what,
                        value=path) from None
    except RecursionError:  # not reached after _check_depth; kept for a stranger's file all the same
        raise SpecError(f"nests deeper than {MAX_DEPTH} levels", path=what, value=path) from None
    if flagged:
        _check_json_tree(data, what)
    return data


def _check_depth(text: str, bare: str, what: str, path: str) -> None:
    """Refuse brackets nested deeper than MAX_DEPTH before the parser recurses into them."""
    import numpy as np

    codes = np.frombuffer(bare.encode("utf-32-le"), dtype=np.uint32)
    opens, closes = (codes == ord("[")) | (codes == ord("{")), (codes == ord("]")) | (codes == ord("}"))
    where = np.flatnonzero(opens | closes)  # the brackets' places, and the depth after each
    depth = np.cumsum(opens[where].astype(np.int32) - closes[where], dtype=np.int32)
    if depth.size and depth.max() > MAX_DEPTH:
        at = int(where[np.argmax(depth > MAX_DEPTH)])
        line = text.count("\n", 0, at) + 1
        column = at - text.rfind("\n", 0, at)
        raise SpecError(f"nests deeper than {MAX_DEPTH} levels (line {line} column {column})", path=what, value=path)


_SCALARS = frozenset({int, float, str, bool, type(None), _Huge})


def _plain(node: Any) -> bool:
    """A value with nothing inside to look at: a scalar or a list of scalars (a case's shape)."""
    kind = type(node)
    return kind in _SCALARS or kind is list and _SCALARS.issuperset(map(type, node))


def _check_json_tree(data: Any, what: str) -> None:
    """Find what the parser flagged -- NaN/Infinity, a key twice in one object -- and name it by its
    key. Lists of lists of scalars (a fingerprint's ~100,000 cases) are passed over a list at a time."""
    stack = [(data, (what,))]
    while stack:
        node, loc = stack.pop()
        if isinstance(node, _Constant):
            raise SpecError("is not a JSON number (NaN and Infinity are not JSON): expected a finite number",
                            path=dotted(loc), value=node.text)
        if isinstance(node, _Object):
            if node.twice is not None:
                raise SpecError("is given twice in one object: a JSON object's keys must be unique",
                                path=dotted((*loc, node.twice)))
            items = node.items()
        elif isinstance(node, list):
            if set(map(type, node)) == {list} and _SCALARS.issuperset(map(type, chain.from_iterable(node))):
                continue
            items = enumerate(node)
        else:
            continue
        # reversed onto the stack: the first offender in the file is the one named
        stack.extend(reversed([(v, (*loc, k)) for k, v in items if not _plain(v)]))


def _checked(rows: list[list], key: str, check, shapes: bool = False):
    """``[check(row, f"{key}[i]") for each row]``, with numpy where every value is a plain number in
    range (the common case: a fingerprint may list ~100,000 cases); ``shapes``: whole numbers of
    voxels, else spacings. A case may be thinner than a feature map's least edge: nnU-Net plans from
    the medians."""
    import numpy as np

    if set(map(type, chain.from_iterable(rows))) <= {int, float}:
        arr = np.array(rows, dtype=np.float64)
        if shapes:
            ok = (arr >= 1) & (arr <= MAX_EDGE) & (arr == np.floor(arr))
        else:
            ok = (arr >= MIN_SPACING) & (arr <= MAX_SPACING)
        if ok.all():  # arrays: the planner reads them as numpy arrays
            return arr.astype(np.int64) if shapes else arr
    for i, row in enumerate(rows):  # the first row that is not: its message
        check(row, f"{key}[{i}]")
    raise AssertionError("a row out of range passed its check")  # pragma: no cover


def check_labels(labels: dict) -> None:
    """nnU-Net's label format: ``{name: value}`` with the background at 0 and the values 0, 1, 2, ...
    (``auto`` writes a softmax head of one channel a label). Region-based training (a list of
    values for a name, sigmoid outputs) is another head and is refused, as are other values."""
    for name, value in labels.items():
        if isinstance(value, list):
            raise SpecError("is a region (a list of labels): nnU-Net's region-based training needs one sigmoid "
                            "output a region, and auto writes a softmax head over plain labels; give "
                            "each label one whole number, or write the head yourself", path=f"dataset.labels.{name}",
                            value=_shown(value))
        if isinstance(value, bool) or not isinstance(value, int) or isinstance(value, _Huge):
            raise SpecError("must be a whole number (the label's value in the masks)", path=f"dataset.labels.{name}",
                            value=_shown(value))
    values = sorted(labels.values())
    if values != list(range(len(labels))):
        raise SpecError(f"must be the whole numbers 0 to {len(labels) - 1}, one a label (nnU-Net's labels are "
                        "consecutive, the background 0)",
                        path="dataset.labels", value=_shown(values))
    if labels.get("background", 0) != 0:
        raise SpecError("must be 0", path="dataset.labels.background", value=_shown(labels["background"]))


def from_files(fingerprint_path: str, dataset_path: str | None, channels: int | None, classes: int | None,
               cases: int | None) -> Dataset:
    """nnU-Net's dataset_fingerprint.json (and dataset.json for channels, labels, numTraining)."""
    _check_counts(channels, classes, cases)
    fp = read_json_file(fingerprint_path, "fingerprint")
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
    for key, values in (("spacings", spacings), ("shapes_after_crop", shapes)):
        for i, v in enumerate(values):
            if type(v) is not list or len(v) != 3:
                raise SpecError("must list 3 values (nnU-Net stores 2D images as 1 x H x W)",
                                path=f"fingerprint.{key}[{i}]", value=v)
    spacings = _checked(spacings, "fingerprint.spacings", _check_spacing)
    shapes = _checked(shapes, "fingerprint.shapes_after_crop", _check_shape, shapes=True)
    source = f"--fingerprint {fingerprint_path}"
    n_channels, n_classes, n_cases = channels, classes, cases
    normalize, why = None, None
    if dataset_path is not None:
        dj = read_json_file(dataset_path, "dataset")
        if not isinstance(dj, dict):
            raise SpecError("must be a JSON object (nnU-Net's dataset.json)", path="dataset", value=type(dj).__name__)
        names = dj.get("channel_names", dj.get("modality"))
        key = "channel_names" if "channel_names" in dj or "modality" not in dj else "modality"
        if not isinstance(names, dict) or not names:
            raise SpecError("is missing or empty: one entry per input channel", path=f"dataset.{key}",
                            value=names if names is not None else ...)
        if len(names) > MAX_CHANNELS:
            raise SpecError(f"has {len(names):,} channels; at most {MAX_CHANNELS:,} (archgen's limit for channels)",
                            path=f"dataset.{key}")
        labels = dj.get("labels")
        if not isinstance(labels, dict) or len(labels) < 2:
            raise SpecError("must map at least the background and one label", path="dataset.labels",
                            value=labels if labels is not None else ...)
        if len(labels) > MAX_CHANNELS:
            raise SpecError(f"has {len(labels):,} labels; at most {MAX_CHANNELS:,} (heads[].filters allows 1 to "
                            f"{MAX_CHANNELS:,})", path="dataset.labels")
        check_labels(labels)
        num = dj.get("numTraining")
        if isinstance(num, _Huge) or isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= MAX_CASES:
            raise SpecError(f"must be a whole number from 1 to {MAX_CASES:,}", path="dataset.numTraining",
                            value=_shown(num) if num is not None else ...)
        n_channels = channels or len(names)
        n_classes = classes or len(labels)
        n_cases = cases or num
        source += f" --dataset {dataset_path}"
        normalize, why = normalization(names, n_channels)
    notes = [why] if why else []
    if n_channels is None:
        n_channels = 1
        notes.append("no dataset.json and no --channels: 1 input channel assumed")
    if n_classes is None:
        raise SpecError("give --dataset (nnU-Net's dataset.json) or --classes: the planner needs the number of "
                        "labels", path="--classes")
    if n_cases is None:
        n_cases = len(spacings)
        notes.append(f"no dataset.json and no --cases: the fingerprint's {n_cases} cases used as numTraining")
    return Dataset(spacings, shapes, n_channels, n_classes, n_cases, source=source, notes=notes,
                   keys=("fingerprint.shapes_after_crop", "fingerprint.spacings"),
                   normalize=normalize)


# nnU-Net's scheme per channel name (nnunetv2's get_normalization_scheme, by casefold); any other
# name is z-score, archgen's default
SCHEMES = {"ct": "ct", "nonorm": "none"}


def normalization(names: dict, channels: int) -> tuple[str | None, str | None]:
    """(data.normalize for nnU-Net's channel names, or None for the default; a note where the
    channels ask for different schemes, which archgen applies to every channel alike)."""
    schemes = {SCHEMES.get(str(name).casefold(), "zscore") for name in names.values()}
    if len(names) != channels:  # --channels replaced dataset.json's
        return None, None
    if len(schemes) > 1:
        return None, (f"channels ask for different normalizations ({', '.join(sorted(schemes))}); archgen "
                      "normalizes every channel alike: zscore (data.normalize)")
    scheme = schemes.pop()
    return (None if scheme == "zscore" else scheme), None
