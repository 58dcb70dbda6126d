"""Writing a built model in the formats people deploy, each atomically.

``keras`` is Keras's own file; ``saved_model``, ``onnx`` and ``litert`` go through Keras's
``model.export``. Importing this module imports nothing heavy; the writers import Keras.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from archgen.errors import OutputError

SUFFIXES = {"keras": ".keras", "saved_model": "_saved_model", "onnx": ".onnx", "litert": ".tflite"}
KERAS_FORMATS = {"saved_model": "tf_saved_model", "onnx": "onnx", "litert": "litert"}
NEEDS = {"onnx": ("tf2onnx", "onnx")}  # packages the export imports, all in archgen[onnx]


def targets(output: Path | None, name: str, formats: list[str]) -> dict[str, Path]:
    """One path per format from ``-o`` (its suffix, if any, is replaced) or the model's name."""
    stem = Path(name) if output is None else output
    if stem.name in ("", ".", "..") or str(output or "").endswith("/"):
        raise OutputError("names a folder; expected a file name such as unet.keras", path="--output",
                          value=str(output))
    if stem.suffix in (".keras", ".onnx", ".tflite"):
        stem = stem.with_suffix("")
    elif stem.suffix:
        raise OutputError("must end in .keras, .onnx or .tflite, or name no suffix at all", path="--output",
                          value=str(output))
    return {fmt: stem.with_name(stem.name + SUFFIXES[fmt]) for fmt in formats}


def check_formats(formats: list[str]) -> None:
    """Refuse, before any work, a format whose exporter is not installed."""
    for fmt in formats:
        missing = [pkg for pkg in NEEDS.get(fmt, ()) if importlib.util.find_spec(pkg) is None]
        if missing:
            raise OutputError(f"needs {', '.join(missing)}: pip install 'archgen[{fmt}]'", path="--format", value=fmt)


def write_all(model: Any, targets: dict[str, Path], *, force: bool) -> None:
    """Write ``model`` in every format of ``targets``: all under temporary names first, then all
    put in place together, so a failing export leaves no partial set."""
    from archgen.output import commit, stage

    staged = []
    try:
        for fmt, target in targets.items():
            staged.append(stage(target, _writer(model, fmt), suffix=SUFFIXES[fmt], folder=fmt == "saved_model"))
    except BaseException:
        for item in staged:
            item.discard()
        raise
    commit(staged, force=force)


def _writer(model: Any, fmt: str):
    if fmt == "keras":
        return lambda tmp: model.save(tmp)
    if fmt == "saved_model":
        return lambda tmp: model.export(str(tmp), format="tf_saved_model", verbose=False)
    # Stated explicitly: Keras infers it only for a model that has been called once.
    import keras

    signature = [keras.InputSpec(shape=tuple(model.input.shape), dtype="float32", name="input")]

    def write(tmp) -> None:
        import warnings

        with warnings.catch_warnings():  # tf2onnx's probe of np.object, a FutureWarning for the user to ignore
            warnings.simplefilter("ignore", FutureWarning)
            model.export(str(tmp), format=KERAS_FORMATS[fmt], verbose=False, input_signature=signature)

    return write
