"""``archgen predict MODEL.keras INPUT.npy -o OUT.npy``: overlap-tile prediction of an image of any size.

INPUT.npy holds ``(*spatial, C)`` or ``(B, *spatial, C)``, channels last. The output has the
same leading axes and spatial size with each head's channels (see ``archgen.tiling``). A model
with one output writes ``.npy``; a model with several writes ``.npz`` with one array per head,
named after the head (``--head NAME`` picks heads; with exactly one picked, ``.npy`` works too).

Everything that can be checked without TensorFlow is checked before it is imported: the output
target (exists without ``--force``, wrong suffix), the files, the image's rank and channels
against the input shape stored in the ``.keras`` file, and the config.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from archgen.errors import ArchgenError, OutputError, PlanError, SpecError, printable
from archgen.planner.ir import LARGEST_SIZE

OUTPUT_SUFFIXES = (".npy", ".npz")
MAX_HEADER_BYTES = 10_000  # numpy's own limit for a header read without allow_pickle


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``archgen predict``'s arguments to ``parser``."""
    parser.add_argument("model", type=Path, help="the model, a .keras file as archgen build writes it")
    parser.add_argument("input", type=Path, help="the image(s), .npy: (*spatial, C) or (batch, *spatial, C)")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help=".npy (one head) or .npz (one array per head, named after it)")
    parser.add_argument("--config", help="the YAML the model was built from; needed when the model takes any "
                                         "legal input size (it says which sizes are legal)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="a Hydra override the model was built with (repeat for several)")
    parser.add_argument("--batch-size", type=int, default=4, help="tiles per model call (default 4)")
    parser.add_argument("--tile-size", type=_tile_sizes, metavar="N[,N...]",
                        help="tile input size, one for all axes or one per axis, e.g. 204,252 (only where the "
                             "model's input size is free; default: the whole image if small enough)")
    parser.add_argument("--overlap", type=float, default=0.5,
                        help="for padding-same models: fraction of a tile its neighbour overlaps (default 0.5)")
    parser.add_argument("--head", action="append", dest="heads", metavar="NAME",
                        help="predict only this head (repeat for several; default all)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the line of text")


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict ``args.input`` with ``args.model`` tile by tile and write ``args.output``."""
    from archgen.model_file import check_model_file
    from archgen.output import check_target
    from archgen.tiling import check_finite, check_image, check_options

    target = check_target(args.output, force=args.force, suffix=_output_suffix(args.output),
                          inputs={"image": args.input, "model": args.model, "config": args.config})
    check_options(args.batch_size, args.overlap)
    tile_size = _tile_size(args)
    checked = check_model_file(args.model)
    image = _read_image(_existing_file(args.input, ".npy", "input"))
    input_shape = checked.input_shape
    check_image(image.shape, image.dtype, len(input_shape) - 2, input_shape[-1])
    check_finite(image)
    _check_output_kind(target, len(set(args.heads)) if args.heads else len(checked.outputs))
    plan = _plan(args, input_shape[1:]) if args.config else None
    from archgen.tiling import ApproximateTilingWarning, load_model, predict_tiled

    start = time.perf_counter()
    model = load_model(checked.path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ApproximateTilingWarning)
        try:
            result = predict_tiled(model, image, plan=plan, batch_size=args.batch_size, tile_size=tile_size,
                                   overlap=args.overlap, heads=args.heads)
        except PlanError as exc:
            raise _named(exc, args) from None
    for warning in caught:
        if issubclass(warning.category, ApproximateTilingWarning):
            print(f"warning: {printable(warning.message, 2000)}", file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    arrays = result if isinstance(result, dict) else {_only_head(model, plan): result}
    _check_output_kind(target, len(arrays))
    _write(target, arrays, force=args.force)
    if args.json:
        print(json.dumps(predict_json(args, image, model, arrays, target, time.perf_counter() - start), indent=2))
        return 0
    shapes = ", ".join(f"{name} {list(a.shape)}" for name, a in arrays.items())
    print(f"wrote {printable(target, 4000)}: {printable(shapes, 2000)}")
    return 0


def _named(exc: PlanError, args: argparse.Namespace) -> PlanError:
    """``exc`` naming what the user typed: the plan is ``--config``'s, the model ``MODEL``'s file."""
    if exc.path == "plan" and args.config is not None:
        return PlanError(exc.message.replace("the plan does not describe", "the config does not describe"),
                         path="--config", value=str(args.config), hint=exc.hint)
    if exc.path == "model" and exc.message.startswith("is too large to run here"):
        return PlanError(exc.message, path="model", value=str(args.model), hint=exc.hint)
    return exc


def predict_json(args: argparse.Namespace, image: np.ndarray, model, arrays: dict[str, np.ndarray], target: Path,
                 seconds: float) -> dict[str, Any]:
    """The ``--json`` answer, in the README's conventions: ``outputs`` is {head: shape} for one
    image, as ``summary`` gives it; ``arrays`` the shapes in the file, batch axis included."""
    spatial = len(model.inputs[0].shape) - 2
    batched = image.ndim == spatial + 2
    return {"command": "predict", "model": str(args.model), "image": str(args.input),
            "config": None if args.config is None else str(args.config), "image_shape": list(image.shape),
            "outputs": {name: list(a.shape[1:] if batched else a.shape) for name, a in arrays.items()},
            "arrays": {name: list(a.shape) for name, a in arrays.items()},
            "files": {target.suffix.lstrip("."): str(target)}, "predict_seconds": round(seconds, 3)}


def _output_suffix(path: Path) -> str:
    suffix = path.suffix
    if suffix not in OUTPUT_SUFFIXES:
        raise OutputError("must end in .npy (one head) or .npz (one array per head)", path="--output",
                          value=str(path))
    return suffix


def _check_output_kind(target: Path, count: int) -> None:
    if target.suffix == ".npy" and count != 1:
        raise OutputError(f"the prediction has {count} heads; write an .npz (one array per head) or pick one "
                          f"with --head", path="--output", value=str(target))


def _existing_file(path: Path, suffix: str, what: str) -> Path:
    if not path.exists():
        raise SpecError("no such file", path=what, value=str(path))
    if not path.is_file():
        raise SpecError("is not a file", path=what, value=str(path))
    if path.suffix != suffix:
        raise SpecError(f"expected a {suffix} file", path=what, value=str(path))
    return path


def _read_image(path: Path) -> np.ndarray:
    """The array in ``path``, memory-mapped (read when tiles are cut); pickled objects are refused,
    and so are a zip (``.npz``) and a header whose shape could not be mapped or held, before numpy
    maps anything."""
    shown = str(path)
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK"):  # numpy would take anything else for a pickle
        raise SpecError("is not a .npy array: it does not start with NumPy's header; save the image with numpy.save",
                        path="input", value=shown)
    header = _read_header(path)
    if header is not None:
        _check_shape(header[0], path)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError, OverflowError, MemoryError) as exc:
        raise SpecError(f"is not a readable .npy array: {' '.join(str(exc).split())[:200]}", path="input",
                        value=shown) from None
    if not isinstance(array, np.ndarray):  # numpy opened a zip as .npz after all
        getattr(array, "close", lambda: None)()
        raise SpecError("is a zip (.npz) archive, not a .npy array; save one array with numpy.save",
                        path="input", value=shown)
    _check_shape(array.shape, path)
    return array


def _read_header(path: Path) -> tuple[Any, np.dtype] | None:
    """``(shape, dtype)`` from a ``.npy`` header, read without mapping anything; None where the
    header is not one this reads (numpy's ``load`` then says what is wrong)."""
    import ast
    import struct

    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
            if head[:2] == b"PK":
                raise SpecError("is a zip (.npz) archive, not a .npy array; save one array with numpy.save",
                                path="input", value=str(path))
            if head[:6] != b"\x93NUMPY" or len(head) < 12 or head[6] not in (1, 2, 3):
                return None
            if head[6] == 1:
                length, start = struct.unpack("<H", head[8:10])[0], 10
            else:
                length, start = struct.unpack("<I", head[8:12])[0], 12
            if length > MAX_HEADER_BYTES:
                return None
            handle.seek(start)
            text = handle.read(length).decode("utf-8" if head[6] == 3 else "latin1")
        fields = ast.literal_eval(text)
        shape, dtype = fields["shape"], np.lib.format.descr_to_dtype(fields["descr"])
    except SpecError:
        raise
    except Exception:  # noqa: BLE001  any header this does not read is numpy's to judge
        return None
    return shape, dtype


def _check_shape(shape: Any, path: Path) -> None:
    """Each axis a whole number from 0 to ``LARGEST_SIZE``, and the whole within the memory guard
    (``_check_values``), computed with Python ints (no numpy overflow warning)."""
    shown = str(path)
    if not isinstance(shape, tuple) or len(shape) > 32:
        raise SpecError(f"its header gives the shape {printable(repr(shape), 120)}; expected a tuple of at most 32 "
                        "axes", path="input", value=shown)
    for axis, n in enumerate(shape):
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= LARGEST_SIZE:
            shown_n = (f"{n:,}" if abs(n) < 10**30 else f"an integer of {len(str(abs(n)))} digits") \
                if isinstance(n, int) and not isinstance(n, bool) else printable(repr(n), 40)
            raise SpecError(f"its header gives axis {axis} the size {shown_n}; each axis holds 0 to {LARGEST_SIZE:,} "
                            "values", path="input", value=shown)
    _check_values(math.prod(shape), shown)


def _check_values(size: int, shown: str) -> None:
    from archgen.model_file import available_memory

    need, free = int(size) * 4 * 2, available_memory()
    if need > free:
        raise SpecError(f"holds {size:,} values: as float32 with a prediction of its size that is "
                        f"{need / 2**30:,.1f} GiB, more than the {free / 2**30:,.1f} GiB this machine has free",
                        path="input", value=shown)


def _plan(args: argparse.Namespace, shape: tuple[int | None, ...]):
    from archgen.tiling import plan_for_shape

    return plan_for_shape(args.config, shape, args.override)


def _tile_sizes(text: str) -> list[int]:
    """``52`` or ``52,60``: positive whole numbers."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise ArchgenError("expected whole numbers separated by commas", path="--tile-size", value=text) from None
    if any(not 1 <= n <= LARGEST_SIZE for n in sizes):
        raise ArchgenError(f"must be from 1 to {LARGEST_SIZE:,}", path="--tile-size", value=text)
    return sizes


def _tile_size(args: argparse.Namespace) -> Any:
    sizes = args.tile_size
    return sizes if sizes is None or len(sizes) > 1 else sizes[0]


def _only_head(model, plan) -> str:
    if plan is not None:
        return next(iter(plan.outputs))
    from archgen.tiling import output_names

    return output_names(model)[0]


def _write(target: Path, arrays: dict[str, np.ndarray], *, force: bool) -> None:
    from archgen.output import write_atomic

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a file object: numpy appends no suffix of its own
            if target.suffix == ".npy":
                np.save(handle, next(iter(arrays.values())))
            else:
                np.savez(handle, **arrays)

    write_atomic(target, write, suffix=target.suffix, force=force)
