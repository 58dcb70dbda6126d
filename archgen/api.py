"""The Python API: ``load``, ``plan`` and ``build_model`` from any form a config takes.

::

    import archgen

    model = archgen.build_model("conf/unet.yaml", ["encoder.depth=3", "padding=same"])
    model.compile(optimizer="adam", loss={"logits": "sparse_categorical_crossentropy"})

A config is one of:

- a path (``pathlib.Path``, or a ``str`` as below) to a ``.yaml`` file;
- a mapping of plain data (``dict``), as a file would hold it;
- YAML text (``str``);
- an omegaconf ``DictConfig``, e.g. ``cfg.model`` in your own Hydra app (see ``archgen.hydra_conf``);
  errors then name keys by their full key in your config (``model.encoder.depth``);
- an ``ArchSpec``: overrides then apply to the keys it was made with.

A ``str`` is YAML text when it holds a newline; a one-line ``str`` is a path when it names an
existing file, ends in ``.yaml``/``.yml`` or holds no colon; any other one-line ``str`` (a flow
mapping such as ``"{input: {shape: [64, 64, 1]}, heads: [{name: out, filters: 1}]}"``) is YAML
text. So a mistyped file name is reported as a missing file, not parsed as YAML.

Overrides use the command line's grammar: ``encoder.depth=3``, ``+key=value``, ``~key``.
Every error is an ``archgen.ArchgenError`` with the message the command line prints.
Importing this module imports neither TensorFlow nor Keras; ``build_model`` does.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence, Union

from archgen.errors import ArchgenError, PlanError, SpecError, dotted

if TYPE_CHECKING:
    import keras
    from omegaconf import DictConfig

    from archgen.planner.ir import Plan
    from archgen.config.model import ArchSpec

Config = Union[str, "os.PathLike[str]", Mapping[str, Any], "DictConfig", "ArchSpec"]

__all__ = ["build_model", "load", "plan"]


def load(config: Config, overrides: Sequence[str] = ()) -> ArchSpec:
    """The validated spec of ``config`` after ``overrides``.

    >>> load("conf/unet.yaml", ["encoder.depth=3"]).encoder.depth
    3
    """
    return _load(config, overrides)[0]


def plan(config: Config, overrides: Sequence[str] = ()) -> Plan:
    """The plan of ``config``: every layer's shape, crop, parameters and FLOPs. No TensorFlow import.

    >>> plan("conf/unet.yaml").output_shapes
    {'logits': (388, 388, 2)}
    """
    from archgen.planner import make_plan

    spec, prefix = _load(config, overrides)
    with _errors_under(prefix):
        return make_plan(spec)


def build_model(config: Config, overrides: Sequence[str] = (), *, backend: str | None = None,
                precision: str = "float32", guard: bool = True) -> keras.Model:
    """The Keras model of ``config``, one output per head, each output named after its head.

    ``backend`` (tensorflow, jax, torch; default ``$KERAS_BACKEND``, else tensorflow) is fixed
    before Keras is first imported; asking for another one later in the same process is an
    error. ``precision`` is a Keras dtype policy: ``float32``, ``mixed_bfloat16`` or
    ``mixed_float16``. ``guard`` refuses, as ``archgen build`` does, a model too large to
    build (over 2e9 parameters and the like) before anything is allocated.
    """
    from archgen.planner import make_plan

    spec, prefix = _load(config, overrides)
    with _errors_under(prefix):
        planned = make_plan(spec)
    if guard:
        _check_size(planned, prefix)
    from archgen.backend import select_backend

    with _errors_under(""):
        select_backend(backend)
        from archgen.emit import emit_model

        return emit_model(planned, precision)


def _load(config: Any, overrides: Sequence[str]) -> tuple[ArchSpec, str]:
    """The spec and the prefix its error paths get (a DictConfig's own key, else nothing)."""
    from archgen.config.load import check_overrides

    overrides = check_overrides(overrides)
    prefix = _full_key(config) if _is_dictconfig(config) else ""
    with _errors_under(prefix):
        return _spec(config, overrides), prefix


def _spec(config: Any, overrides: list[str]) -> ArchSpec:
    from archgen.config.load import load_spec, read_yaml_text, validate
    from archgen.config.model import ArchSpec

    if isinstance(config, ArchSpec):
        # Validated again: the caller may have changed it since, or made it without validation
        # (model_construct). Only the keys it was made with: a dump of every default would pin,
        # e.g., a transposed conv's bias and refuse an override to type=resize, which has no bias.
        try:
            data = config.model_dump(exclude_unset=True)
        except Exception as exc:  # noqa: BLE001 - a hand-made object pydantic cannot serialise
            raise SpecError(f"is an ArchSpec that cannot be read back ({type(exc).__name__}); make it with "
                            "archgen.load or ArchSpec.model_validate", path="config") from None
        return validate(_compose(data, overrides))
    if isinstance(config, os.PathLike) or (isinstance(config, str) and _is_path(config)):
        return load_spec(config, overrides)
    if isinstance(config, str):
        data = read_yaml_text(config, "config")
    elif _is_dictconfig(config):
        data = _dictconfig_data(config)
    elif isinstance(config, Mapping):
        data = _copy_data(config)  # never change the caller's object
    else:
        raise SpecError("expected a path, a mapping, YAML text, an omegaconf DictConfig or an ArchSpec",
                        path="config", value=type(config).__name__)
    return validate(_compose(data, overrides))


def _copy_data(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the caller's mapping, checked first by the config reader's rules (nesting at most
    ``MAX_DEPTH``, at most ``MAX_NODES`` values, only mappings, lists, strings, numbers, booleans and
    null): ``copy.deepcopy`` would recurse through any depth and refuse whatever cannot be pickled
    (a generator, a lock) with Python's own error. Shared sub-trees are copied once per use, as
    they are counted."""
    from archgen.config.read import check_tree

    try:
        data = dict(config)
    except Exception as exc:  # a Mapping whose keys or items fail
        raise SpecError(f"cannot be read as a mapping: its items raise {type(exc).__name__}", path="config",
                        value=type(config).__name__) from None
    check_tree(data)
    return _copy_tree(data)


def _copy_tree(node: Any) -> Any:
    """Dicts and lists copied, the rest shared (strings, numbers, booleans, None: immutable).
    Only for a tree ``check_tree`` passed: its depth is bounded and it holds no cycle."""
    if isinstance(node, dict):
        return {k: _copy_tree(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy_tree(v) for v in node]
    return node


def _check_no_hydra_keys(data: Any) -> None:
    """A config given as data has no folder for a defaults list to name files in, and Hydra's own
    settings are never part of a model: both are refused here, as they are in a config file."""
    if not isinstance(data, dict):
        return  # compose_data names it
    if "defaults" in data:
        raise SpecError("a defaults list names files in a config file's folder; load that file by its path",
                        path="defaults", value=data["defaults"])
    if "hydra" in data:
        raise SpecError("a config may not set Hydra's own keys; Hydra settings belong on the command line",
                        path="hydra")


def _compose(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    from archgen.config.load import compose_data

    _check_no_hydra_keys(data)
    # Inside a running Hydra app Hydra's global state is the app's; composing overrides needs
    # Hydra's compose API, which refuses to start while that state is set. Set it aside meanwhile.
    with _outside_hydra_app(bool(overrides)):
        return compose_data(data, overrides, "config")


@contextmanager
def _outside_hydra_app(needed: bool) -> Iterator[None]:
    if not needed or "hydra" not in sys.modules:
        yield
        return
    from archgen.compat.hydra import global_hydra_set_aside

    with global_hydra_set_aside():
        yield


def _is_path(text: str) -> bool:
    if "\n" in text:
        return False
    return Path(text).is_file() or text.endswith((".yaml", ".yml")) or ":" not in text


def _is_dictconfig(config: Any) -> bool:
    # omegaconf is imported only if the caller made a DictConfig, so this costs no import.
    module = sys.modules.get("omegaconf")
    return module is not None and isinstance(config, module.DictConfig)


def _full_key(node: Any) -> str:
    """``model.encoder``, ``runs[0].model``: the node's key in its root config ("" for the root).

    Built from the parent links: OmegaConf's own ``_get_full_key`` drops the brackets of list
    indices (``runs0``).
    """
    return dotted(_key_parts(node))


def _dictconfig_data(cfg: DictConfig) -> dict[str, Any]:
    """Plain data of the caller's DictConfig, interpolations resolved as in the caller's app.

    The same guard as a file's runs first, on the unresolved tree of the whole app config (the
    node may refer to keys outside it): no resolver but plain references (``oc.env`` only with
    ``ARCHGEN_ALLOW_ENV=1``) and a bounded expansion, before OmegaConf resolves anything.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from archgen.hydra_conf import from_node
    from archgen.config.guard import check_interpolations
    from archgen.config.read import check_tree

    own = _full_key(cfg)
    try:
        root = OmegaConf.to_container(cfg._get_root(), resolve=False, throw_on_missing=False)
        check_tree(OmegaConf.to_container(cfg, resolve=False, throw_on_missing=False))
        check_interpolations(root, at=_key_parts(cfg))
        data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except ArchgenError as exc:  # paths are the app config's; the node's own prefix is added later
        if not own or exc.path == own or exc.path.startswith((own + ".", own + "[")):
            path, message = exc.path[len(own):].lstrip(".") or "config", exc.message
        else:  # a key outside the node, reached through a reference
            path, message = "config", f"refers to {exc.path}, which {exc.message}"
        raise type(exc)(message, path=path, value=exc.value, hint=exc.hint) from None
    except RecursionError:
        raise SpecError("interpolations refer to each other in a loop", path="config") from None
    except OmegaConfBaseException as exc:
        # full_key is the key in the whole config; the prefix is added later, so strip it
        key = str(getattr(exc, "full_key", "") or "")
        if own and key.startswith(own):
            key = key[len(own):].lstrip(".")
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # later lines repeat the key
        raise SpecError(f"cannot be resolved: {first}", path=key or "config") from None
    return from_node(_drop_missing(data))


def _key_parts(node: Any) -> tuple:
    """The node's keys from its root config, outermost first."""
    parts = []
    while node._get_parent() is not None:
        parts.append(node._key())
        node = node._get_parent()
    return tuple(reversed(parts))


def _drop_missing(node: Any) -> Any:
    """Leave out values marked ``???`` (OmegaConf's "must be given"), so validation says "is required"."""
    if isinstance(node, dict):
        return {k: _drop_missing(v) for k, v in node.items() if v != "???"}
    if isinstance(node, list):
        return [_drop_missing(v) for v in node]
    return node


def _under(prefix: str, path: str) -> str:
    """``path`` as a key of the caller's config, below ``prefix``."""
    if not prefix or path.startswith("-") or path == "overrides":
        return path.lstrip("-")
    if path in ("", "config"):
        return prefix
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


@contextmanager
def _errors_under(prefix: str) -> Iterator[None]:
    """Re-raise archgen's errors with their paths as keys of the caller's config.

    The command line's ``--backend``/``--precision`` are keyword arguments here.
    """
    try:
        yield
    except ArchgenError as exc:
        path = _under(prefix, exc.path)
        if path == exc.path:
            raise
        raise type(exc)(exc.message, path=path, value=exc.value, hint=exc.hint) from None


def _check_size(planned: Plan, prefix: str) -> None:
    from archgen.planner.guard import check_size

    try:
        check_size(planned)
    except PlanError as exc:
        # The guard speaks to the command line (--max-params); here the switch is guard=False.
        message = exc.message.split("; pass --")[0] + "; pass guard=False to build it anyway"
        path = (prefix or exc.path) if exc.path == "model" else _under(prefix, exc.path)
        raise PlanError(message, path=path, value=exc.value, hint=exc.hint) from None
