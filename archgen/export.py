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


# What Keras's ``model.export`` can write on each back end. A format missing here is refused before
# anything is built, with the reason; ``BACKEND_NEEDS`` are the packages an export imports there.
CANNOT = {
    ("torch", "saved_model"): "Keras's SavedModel export fails on torch (torch.export refuses the input "
                              "signature Keras gives it, even for a one-layer model)",
    ("jax", "litert"): "Keras exports LiteRT only from the tensorflow and torch back ends",
}
BACKEND_NEEDS = {
    ("tensorflow", "onnx"): (("tf2onnx", "onnx"), "pip install 'archgen[onnx]'"),
    ("jax", "onnx"): (("jax2onnx",), "pip install jax2onnx"),
    ("jax", "saved_model"): (("tensorflow",), "pip install tensorflow"),
    ("torch", "litert"): (("litert_torch",), "pip install litert-torch"),
}
BACKENDS = ("tensorflow", "jax", "torch")


def check_formats(formats: list[str], backend: str | None = None) -> None:
    """Refuse, before any work, a format the back end cannot write or whose exporter is not
    installed. ``backend`` is the one the model will be built on (the command line's
    ``--backend``); by default the one ``archgen.backend.select_backend`` would choose: Keras's own
    where Keras is already imported, else ``$KERAS_BACKEND``, else tensorflow."""
    backend = backend or _current_backend()
    for fmt in formats:
        others = [b for b in BACKENDS if b != backend and (b, fmt) not in CANNOT]
        instead = f"use --backend {' or '.join(others)} (a .keras file loads on every back end)"
        why = CANNOT.get((backend, fmt))
        if why:
            able = [f for f in SUFFIXES if (backend, f) not in CANNOT and all(
                importlib.util.find_spec(pkg) is not None for pkg in BACKEND_NEEDS.get((backend, f), ((),))[0])]
            raise OutputError(f"the {backend} back end cannot write it: {why}; {instead}, or a format it "
                              f"writes: {', '.join(able)}", path="--format", value=fmt)
        packages, install = BACKEND_NEEDS.get((backend, fmt), ((), ""))
        missing = [pkg for pkg in packages if importlib.util.find_spec(pkg) is None]
        if missing and backend == "tensorflow":
            raise OutputError(f"needs {', '.join(missing)}: {install}", path="--format", value=fmt)
        if missing:
            raise OutputError(f"needs {', '.join(missing)} on the {backend} back end: {install}, or {instead}",
                              path="--format", value=fmt)


def _current_backend() -> str:
    import os
    import sys

    keras = sys.modules.get("keras")
    if keras is not None:
        return keras.backend.backend()
    return os.environ.get("KERAS_BACKEND") or "tensorflow"


def write_all(model: Any, targets: dict[str, Path], *, force: bool) -> None:
    """Write ``model`` in every format of ``targets``: all under temporary names first, then all
    put in place together, so a failing export leaves no partial set."""
    from archgen.output import Output, write_together

    check_formats(list(targets))  # the back end the model was built on: before any file is started
    write_together([Output(target, _writer(model, fmt), SUFFIXES[fmt], folder=fmt == "saved_model")
                    for fmt, target in targets.items()], force=force)


def _writer(model: Any, fmt: str):
    if fmt == "keras":
        return lambda tmp: model.save(tmp)
    if fmt == "saved_model":
        return lambda tmp: model.export(str(tmp), format="tf_saved_model", verbose=False)
    # Stated explicitly: Keras infers it only for a model that has been called once.
    import keras

    signature = [keras.InputSpec(shape=tuple(model.input.shape), dtype="float32", name="input")]

    def write(tmp) -> None:
        import logging
        import warnings

        # tf2onnx logs a line per op it cannot convert and carries on; check_onnx says it in one line
        tf2onnx_log = logging.getLogger("tf2onnx")
        level = tf2onnx_log.level
        tf2onnx_log.setLevel(logging.CRITICAL)
        try:
            with warnings.catch_warnings():  # tf2onnx's probe of np.object, a FutureWarning for the user to ignore
                warnings.simplefilter("ignore", FutureWarning)
                model.export(str(tmp), format=KERAS_FORMATS[fmt], verbose=False, input_signature=signature)
        finally:
            tf2onnx_log.setLevel(level)
        if fmt == "onnx":
            check_onnx(tmp)

    return write


def check_onnx(path: str | Path) -> None:
    """Refuse an ONNX file that ONNX itself or ONNX Runtime rejects: tf2onnx writes a model with the
    TensorFlow ops it could not convert left in as nodes (``Erfc`` of an exact GELU, the
    ``StatefulPartitionedCall`` of a nested function) and reports success. Checked with
    ``onnx.checker`` (full check) where onnx is installed and by loading it in ONNX Runtime (no
    graph optimisation, no run) where that is: milliseconds for a network that converted. A model
    ONNX Runtime loads but has no CPU kernel for is kept: another execution provider may run it."""
    problem = None
    if importlib.util.find_spec("onnx") is not None:
        import onnx

        try:
            onnx.checker.check_model(str(path), full_check=True)
        except Exception as exc:  # ValidationError, InferenceError: an invalid graph
            problem = _unknown_ops(path) or _first_line(exc)
    if problem is None and importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            if type(exc).__name__ != "NotImplemented":  # valid, but no CPU kernel for an op
                problem = f"ONNX Runtime cannot load it: {_first_line(exc)}"
    if problem is not None:
        raise OutputError(f"Keras's ONNX export wrote an invalid model: {problem}; this network cannot be "
                          "exported to ONNX here (nothing was written); --format keras, saved_model and litert "
                          "do not go through ONNX", path="--format", value="onnx")


def _unknown_ops(path: str | Path) -> str | None:
    """"operations ONNX does not define: Erfc (8)" for the nodes of ops outside ONNX's opsets,
    which is what a converter leaves behind; None if there are none."""
    import collections

    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return None
    counts: collections.Counter = collections.Counter()
    for node in model.graph.node:
        if node.domain in ("", "ai.onnx", "ai.onnx.ml") and not onnx.defs.has(node.op_type, node.domain):
            counts[node.op_type] += 1
    if not counts:
        return None
    shown = ", ".join(f"{op} ({n})" for op, n in counts.most_common(6))
    more = f" and {len(counts) - 6} more" if len(counts) > 6 else ""
    return f"it holds operations ONNX does not define (left unconverted): {shown}{more}"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return " ".join(text.split())[:300]
