"""Reading a ``.keras`` file from a stranger: checked by archgen before Keras sees any of it.

Keras's ``safe_mode=True`` refuses lambdas, but a ``config.json`` may still name functions of
Keras's own modules (``"class_name": "function"``) or layers that read files, and Keras calls
them while it rebuilds the model. So archgen reads the archive itself first:

- the file: a regular file (opened without blocking, checked again once open), at most
  ``MAX_FILE_BYTES``;
- the zip: only the members Keras writes (``metadata.json``, ``config.json``,
  ``model.weights.h5``), each within its own size bound, stored the way Keras stores them
  (a member that inflates more than ``MAX_INFLATION`` times is a zip bomb);
- ``config.json``: strict JSON (no NaN, no duplicate keys, integers of at most 19 digits),
  nesting at most ``MAX_DEPTH`` deep and ``MAX_VALUES`` values; every object that names a class
  names one archgen writes (``ALLOWED``, with the module Keras records for it), so no function,
  lambda, array or other layer kind is ever deserialized; layer sizes (filters, units, heads, ...)
  at most ``MAX_WIDTH``, windows at most ``MAX_WINDOW``, a ``Resizing`` layer's height and width at
  most ``MAX_RESIZE`` (and one channel of its output within free memory);
- the input the model declares, against the memory this machine has free: a fixed input so
  large that one layer's output could not be held is refused before anything is allocated.

The model is then rebuilt from the checked config (``keras.saving.deserialize_keras_object``)
and its weights read from the archive (``load_weights``): Keras never parses the file's config on
its own. Compile settings in the file (optimizer, losses) are never read: a loaded model is for
prediction, and for ``compile`` with settings of one's own.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from archgen.errors import SpecError

MAX_FILE_BYTES = 16 * 2**30  # 2e9 float32 parameters (the build guard's limit) are 8 GB
MAX_CONFIG_BYTES = 16 * 2**20  # a depth-12 UNet++ writes about 2 MB
MAX_METADATA_BYTES = 64 * 2**10
MAX_WEIGHTS_BYTES = MAX_FILE_BYTES
MAX_INFLATION = 20  # Keras stores members uncompressed: inflation 1
MAX_DEPTH = 64  # a backbone nests a functional model in the functional model: about 12 deep
MAX_VALUES = 2_000_000
MAX_DIGITS = 19  # an int64 has 19 digits
MAX_WIDTH = 1 << 16  # filters, units, heads, ...: nnU-Net's widest level has 512, a ViT's MLP 3072
MAX_WINDOW = 1 << 12  # each entry of a kernel, pool, stride, crop or up-sampling size
MAX_RESIZE = 1 << 20  # a Resizing layer's height and width: a map's size (auto's image edges: 1,000,000)
MEMBERS = {"metadata.json": MAX_METADATA_BYTES, "config.json": MAX_CONFIG_BYTES, "model.weights.h5": MAX_WEIGHTS_BYTES}

_LAYERS = (
    [f"{kind}{n}D" for n in (1, 2, 3) for kind in ("Conv", "MaxPooling", "AveragePooling", "UpSampling", "Cropping",
                                                   "ZeroPadding", "GlobalAveragePooling")]
    + [f"Conv{n}DTranspose" for n in (1, 2, 3)]
    + ["InputLayer", "BatchNormalization", "GroupNormalization", "LayerNormalization", "Activation", "ReLU",
       "LeakyReLU", "PReLU", "Dropout", "Resizing", "Concatenate", "Add", "Multiply", "Identity", "Dense",
       "MultiHeadAttention", "Reshape",
       # inside keras.applications backbones
       "DepthwiseConv2D", "Normalization", "Rescaling",
       # depthwise convs (ConvNeXt blocks; in 3D a Conv3D of one group per channel)
       "DepthwiseConv1D"]
)
_INITIALIZERS = ["Constant", "GlorotUniform", "GlorotNormal", "HeNormal", "HeUniform", "LecunNormal", "LecunUniform",
                 "Ones", "Zeros", "RandomNormal", "RandomUniform", "TruncatedNormal", "VarianceScaling", "Orthogonal"]
# (module, class_name) -> the registered names Keras may record beside it.
ALLOWED: dict[tuple[str, str], tuple[str | None, ...]] = {
    **{("keras.layers", name): (None,) for name in _LAYERS},
    **{("keras.initializers", name): (None,) for name in _INITIALIZERS},
    ("keras", "DTypePolicy"): (None,),
    ("keras", "FloatDTypePolicy"): (None,),
    ("keras", "Sequential"): (None,),
    ("keras", "Functional"): (None, "Functional"),
    ("keras.src.models.functional", "Functional"): ("Functional",),
    ("keras.src.ops.numpy", "Add"): ("Add",),  # ConvNeXt's residuals
    ("keras.src.ops.numpy", "Multiply"): ("Multiply",),
    ("keras.src.applications.convnext", "LayerScale"): ("LayerScale",),
    ("archgen.emit.blocks", "PositionEmbedding"): ("archgen>PositionEmbedding",),  # the transformer bottleneck
    ("archgen.emit.blocks", "Bias"): ("archgen>Bias",),  # an attention's output bias without q, k, v biases
    ("archgen.emit.own_layers", "DepthwiseConvTranspose"): ("archgen>DepthwiseConvTranspose",),  # MedNeXt's up block
    ("archgen.emit.own_layers", "LinearUpSampling"): ("archgen>LinearUpSampling",),  # linear up-sampling, 1D/3D
    ("archgen.emit.own_layers", "WindowAttention"): ("archgen>WindowAttention",),  # Swin's window attention
    ("archgen.emit.own_layers", "PatchMerge"): ("archgen>PatchMerge",),  # Swin's patch merging
    ("archgen.emit.own_layers", "GlobalResponseNorm"): ("archgen>GlobalResponseNorm",),  # MedNeXt's GRN
}
TENSOR = "__keras_tensor__"  # a reference to another layer's output, in a layer's inbound nodes
_WIDTH_KEYS = ("filters", "units", "num_heads", "key_dim", "value_dim", "groups", "depth_multiplier", "output_dim",
               "input_dim")
_WINDOW_KEYS = ("kernel_size", "pool_size", "strides", "size", "dilation_rate", "cropping", "padding")
_RESIZE_KEYS = ("height", "width")  # Resizing's output size


@dataclass(frozen=True)
class ModelFile:
    """A checked ``.keras`` file: its config and what archgen reads from it without Keras."""

    path: Path
    config: dict[str, Any]
    input_shape: tuple[int | None, ...]  # batch axis first, as Keras records it
    outputs: list[str]


def check_model_file(path: str | os.PathLike, key: str = "model") -> ModelFile:
    """Read and check ``path``; ``SpecError`` naming ``key`` for anything archgen would not have written."""
    path = Path(path)
    shown = str(path)
    if path.suffix != ".keras":
        raise SpecError("expected a .keras file (as archgen build writes)", path=key, value=shown)
    with _open_regular(path, key) as handle:
        members = _check_zip(handle, key, shown)
        config = _read_json(members, key, shown)
    _check_tree(config, key, shown)
    input_shape, outputs = _signature(config, key, shown)
    _check_input_memory(config, input_shape, key, shown)
    _check_resize_memory(config, key, shown)
    return ModelFile(path, config, input_shape, outputs)


def load_model(path: str | os.PathLike, key: str = "model"):
    """The Keras model in ``path``, rebuilt from its checked config; its weights from the archive."""
    checked = check_model_file(path, key)
    from archgen.backend import import_keras

    keras = import_keras()
    import archgen.emit.blocks  # noqa: F401  registers archgen>PositionEmbedding, >Bias (transformers)
    import archgen.emit.own_layers  # noqa: F401  registers archgen>DepthwiseConvTranspose, >LinearUpSampling, ...

    config = {k: v for k, v in checked.config.items() if k != "compile_config"}
    try:
        with weights_loading(key, str(path)):
            model = keras.saving.deserialize_keras_object(config, safe_mode=True)
            model.load_weights(checked.path)
    except SpecError:
        raise
    except MemoryError:
        raise SpecError("is too large to load into the memory this machine has free", path=key,
                        value=str(path)) from None
    except Exception as exc:  # Keras raises many kinds for a bad file; the user needs one line
        raise SpecError(f"cannot load it: {' '.join(str(exc).split())[:300]}", path=key, value=str(path)) from None
    return model


@contextlib.contextmanager
def weights_loading(key: str, shown: str) -> Iterator[None]:
    """Keras warns once per layer it leaves without weights (hundreds of lines for a backbone) and
    then fails, or goes on with those layers freshly initialised: either way the user gets one
    line. Other warnings pass through."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield  # an exception leaves with the warnings dropped: the caller's error says what failed
    skipped = [w for w in caught if "freshly-initialized" in str(w.message)]
    if skipped:
        raise SpecError(f"cannot load it: the file has no weights for {len(skipped)} part(s) of the model "
                        f"(Keras: {' '.join(str(skipped[0].message).split())[:200]})", path=key, value=shown)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


# --- the file and the archive -----------------------------------------------------------------

def check_weights_file(path: str | os.PathLike, key: str = "encoder.weights") -> None:
    """A backbone's weights file: a regular file within the size bound; a ``.keras`` file's archive
    checked as a model's is, an ``.h5`` file's signature checked (Keras reads only arrays from it)."""
    path = Path(path)
    with _open_regular(path, key, what="a weights file") as handle:
        if path.suffix == ".keras":
            _check_zip(handle, key, str(path))
        elif handle.read(8) != b"\x89HDF\r\n\x1a\n":
            raise SpecError("is not an HDF5 file; expected weights saved by Keras (.weights.h5)", path=key,
                            value=str(path))


def _open_regular(path: Path, key: str, what: str = "a .keras file") -> BinaryIO:
    shown = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the open
    except FileNotFoundError:
        raise SpecError("no such file", path=key, value=shown) from None
    except OSError as exc:
        raise SpecError(f"cannot be read: {exc.strerror}", path=key, value=shown) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        kind = "is a directory" if stat.S_ISDIR(info.st_mode) else "is not a regular file"
        raise SpecError(f"{kind}; expected {what}", path=key, value=shown)
    if info.st_size > MAX_FILE_BYTES:
        os.close(fd)
        raise SpecError(f"is {info.st_size:,} bytes; a model file may be at most {MAX_FILE_BYTES:,}", path=key,
                        value=shown)
    return os.fdopen(fd, "rb")


def _check_zip(handle: BinaryIO, key: str, shown: str) -> dict[str, bytes]:
    """The small members' bytes, after every member is checked against its bound."""
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise SpecError(f"is not a .keras archive (a zip file): {' '.join(str(exc).split())[:120]}", path=key,
                        value=shown) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > len(MEMBERS) * 4:  # before looking at names: a million-member archive is refused fast
            raise SpecError(f"holds {len(infos):,} files; a .keras file archive writes holds {len(MEMBERS)}",
                            path=key, value=shown)
        names = [info.filename for info in infos]
        for info in infos:
            if info.filename not in MEMBERS or names.count(info.filename) > 1:
                raise SpecError(f"holds {info.filename!r}; a model file holds only {', '.join(MEMBERS)}, once each",
                                path=key, value=shown)
            limit = MEMBERS[info.filename]
            if info.file_size > limit:
                raise SpecError(f"its {info.filename} is {info.file_size:,} bytes; at most {limit:,} are allowed",
                                path=key, value=shown)
            if info.file_size > 2**20 and info.file_size > MAX_INFLATION * max(info.compress_size, 1):
                raise SpecError(f"its {info.filename} inflates from {info.compress_size:,} to {info.file_size:,} "
                                "bytes: refused as a zip bomb (Keras stores members uncompressed)", path=key,
                                value=shown)
        for required in ("config.json", "model.weights.h5"):
            if required not in names:
                raise SpecError(f"has no {required}; not a model file Keras wrote", path=key, value=shown)
        try:
            return {name: _read_member(archive, name) for name in ("config.json", "metadata.json") if name in names}
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as exc:
            raise SpecError(f"is a damaged archive: {' '.join(str(exc).split())[:120]}", path=key,
                            value=shown) from None


def _read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    with archive.open(name) as member:
        data = member.read(MEMBERS[name] + 1)  # the declared size can lie; the read cannot
    if len(data) > MEMBERS[name]:
        raise ValueError(f"{name} is larger than it declares")
    return data


def _read_json(members: dict[str, bytes], key: str, shown: str) -> dict[str, Any]:
    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a number JSON allows")

    def bounded_int(text: str) -> int:
        if len(text.lstrip("-")) > MAX_DIGITS:
            raise ValueError(f"an integer of {len(text):,} digits")
        return int(text)

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise ValueError(f"duplicate key {k[:40]!r}")
            out[k] = v
        return out

    try:
        text = members["config.json"].decode("utf-8")
        config = json.loads(text, parse_constant=no_constant, parse_int=bounded_int, object_pairs_hook=unique)
    except UnicodeDecodeError:
        raise SpecError("its config.json is not UTF-8 text", path=key, value=shown) from None
    except RecursionError:
        raise SpecError(f"its config.json nests deeper than {MAX_DEPTH} levels", path=key, value=shown) from None
    except ValueError as exc:
        raise SpecError(f"its config.json is not valid JSON: {' '.join(str(exc).split())[:160]}", path=key,
                        value=shown) from None
    if not isinstance(config, dict):
        raise SpecError("its config.json does not hold a model", path=key, value=shown)
    return config


# --- the config -------------------------------------------------------------------------------

def _check_tree(config: dict[str, Any], key: str, shown: str) -> None:
    """Depth, size, classes and layer sizes, walked without recursion."""
    stack: list[tuple[Any, str, int]] = [(config, "", 0)]
    count = 0
    while stack:
        node, where, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise SpecError(f"its config.json holds more than {MAX_VALUES:,} values", path=key, value=shown)
        if depth > MAX_DEPTH:
            raise SpecError(f"its config.json nests deeper than {MAX_DEPTH} levels (at {where})", path=key,
                            value=shown)
        if isinstance(node, float) and not math.isfinite(node):
            raise SpecError(f"its config.json holds {node} at {where}", path=key, value=shown)
        if isinstance(node, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        if "class_name" in node or "module" in node or "registered_name" in node:
            _check_class(node, where, key, shown)
        for k, v in node.items():
            if depth == 0 and k == "compile_config":
                continue  # never read: archgen loads without compiling
            _check_size_value(k, v, where, key, shown)
            stack.append((v, f"{where}.{k}" if where else k, depth + 1))


def _check_class(node: dict[str, Any], where: str, key: str, shown: str) -> None:
    module, name, registered = node.get("module"), node.get("class_name"), node.get("registered_name")
    at = where or "the top"
    if name == TENSOR and module is None and registered is None:
        return
    if name == "function" or (isinstance(name, str) and name.startswith("__")):
        raise SpecError(f"its config.json names a function or object ({name!r} from {module!r}) at {at}; archgen "
                        "loads only the layers it writes, never code a file names", path=key, value=shown)
    allowed = ALLOWED.get((module, name)) if isinstance(module, str) and isinstance(name, str) else None
    if allowed is None or registered not in allowed:
        raise SpecError(f"its config.json names {_shown(module)}.{_shown(name)} at {at}, which archgen never "
                        "writes; archgen loads only the layers it writes", path=key, value=shown)


def _shown(value: Any) -> str:
    text = str(value)[:60]
    return text if text.isprintable() else repr(text)


def _check_size_value(name: str, value: Any, where: str, key: str, shown: str) -> None:
    if name in _WIDTH_KEYS:
        limit = MAX_WIDTH
    elif name in _WINDOW_KEYS:
        limit = MAX_WINDOW
    elif name in _RESIZE_KEYS:
        limit = MAX_RESIZE
    else:
        return
    for v in _ints(value):
        if abs(v) > limit:
            raise SpecError(f"its config.json sets {name}={v:,} at {where or 'the top'}; archgen writes at most "
                            f"{limit:,}", path=key, value=shown)


def _ints(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [v for item in value[:64] for v in _ints(item)]
    return []


def _signature(config: dict[str, Any], key: str, shown: str) -> tuple[tuple[int | None, ...], list[str]]:
    """``(input batch shape, output names)`` of the functional model ``config`` describes."""
    try:
        body = config["config"]
        layers = {layer["name"]: layer for layer in body["layers"]}
        inputs, outputs = body["input_layers"], body["output_layers"]
        first = inputs[0] if isinstance(inputs[0], list) else inputs
        outputs = outputs if isinstance(outputs[0], list) else [outputs]
        shape = tuple(layers[first[0]]["config"]["batch_shape"])
        names = [str(out[0]) for out in outputs]
    except (KeyError, IndexError, TypeError) as exc:
        raise SpecError(f"its config.json does not describe a functional model (no {exc})", path=key,
                        value=shown) from None
    if len(shape) < 3 or not all(n is None or (isinstance(n, int) and not isinstance(n, bool) and n > 0)
                                 for n in shape):
        raise SpecError(f"declares the input shape {list(shape)}; expected (batch, *spatial, channels) of "
                        "positive sizes", path=key, value=shown)
    return shape, names


def _check_input_memory(config: dict[str, Any], shape: tuple[int | None, ...], key: str, shown: str) -> None:
    """A fixed input so large that the input and one output of its narrowest layer could not be
    held in free memory is refused: predicting runs the model on tiles of exactly that size. A
    lower bound: the heads of a segmentation network are at (nearly) the input's resolution."""
    spatial = shape[1:-1]
    if any(n is None for n in spatial):
        return
    narrowest = min(_width_values(config) or [1])
    need = math.prod(spatial) * ((shape[-1] or 1) + narrowest) * 4  # float32
    free = available_memory()
    if need > free:
        raise SpecError(f"declares a fixed input of {'x'.join(map(str, spatial))}x{shape[-1]}: the input and one "
                        f"{narrowest}-channel output of that size take {need / 2**30:,.1f} GiB, more than the "
                        f"{free / 2**30:,.1f} GiB this machine has free", path=key, value=shown)


def _check_resize_memory(config: dict[str, Any], key: str, shown: str) -> None:
    """A ``Resizing`` layer's output has its fixed height x width whatever the input: one channel of
    it that could not be held in free memory is refused (a lower bound, as for the input)."""
    free = available_memory()
    stack: list[Any] = [config.get("config")]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        inner = node.get("config")
        if node.get("class_name") == "Resizing" and isinstance(inner, dict):
            sizes = [inner.get("height"), inner.get("width")]
            if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes):
                raise SpecError(f"its config.json gives the Resizing layer {_shown(inner.get('name'))} the size "
                                f"{_shown(sizes)}; expected a positive height and width", path=key, value=shown)
            need = sizes[0] * sizes[1] * 4  # float32, one channel
            if need > free:
                raise SpecError(f"its Resizing layer {_shown(inner.get('name'))} makes {sizes[0]:,}x{sizes[1]:,} "
                                f"maps: one channel takes {need / 2**30:,.1f} GiB, more than the "
                                f"{free / 2**30:,.1f} GiB this machine has free", path=key, value=shown)
        stack.extend(v for v in node.values() if isinstance(v, (dict, list)))


def _width_values(config: dict[str, Any]) -> list[int]:
    out: list[int] = []
    stack: list[Any] = [config.get("config")]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("filters", "units") and isinstance(v, int) and not isinstance(v, bool):
                    out.append(v)
                elif isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(node, list):
            stack.extend(node)
    return out


def available_memory() -> int:
    """Bytes of memory free for a new allocation (MemAvailable), or 256 GiB where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 256 * 2**30
