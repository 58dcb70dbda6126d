"""Config file + Hydra overrides -> validated ``ArchSpec``.

Pydantic's ``loc`` tuples become dotted config paths here and nowhere else.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Iterable, Sequence, get_args

from pydantic import BaseModel, ValidationError

from archgen.errors import SpecError, did_you_mean, dotted
from archgen.spec.model import ArchSpec


def load_spec(config: str | Path, overrides: Sequence[str] = ()) -> ArchSpec:
    """Compose ``config`` with Hydra ``overrides`` and validate it.

    >>> load_spec("conf/unet.yaml", ["encoder.depth=3"]).encoder.depth
    3
    """
    data = compose_config(config, overrides)
    return validate(data)


def compose_config(config: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The config as plain data, after Hydra's override grammar (``k=v``, ``+k=v``, ``~k``)."""
    path = check_config_path(config)
    if not overrides:
        data = plain_yaml(path)
        if data is not None:
            return data
    return hydra_compose(path, overrides)


def check_config_path(config: str | Path) -> Path:
    """The config file's path, refused early when Hydra could not read it."""
    path = Path(config)
    if not path.exists():
        raise SpecError("no such file", path="config", value=str(config))
    if path.is_dir():
        raise SpecError("is a directory; expected a .yaml file", path="config", value=str(config))
    if path.suffix != ".yaml":
        raise SpecError("expected a file ending in .yaml (Hydra finds no other)", path="config", value=str(config))
    return path


ALLOW_ENV = "ARCHGEN_ALLOW_ENV"


def _refuse_env(*_args: Any) -> Any:
    raise ValueError(f"reading the environment (oc.env) is off for configs; set {ALLOW_ENV}=1 to allow it")


def guard_resolvers() -> None:
    """Unless ``ARCHGEN_ALLOW_ENV=1``, make ``${oc.env:...}`` an error in this process."""
    import os

    from omegaconf import OmegaConf

    if os.environ.get(ALLOW_ENV) != "1":
        OmegaConf.register_new_resolver("oc.env", _refuse_env, replace=True)


def hydra_compose(path: Path, overrides: Sequence[str]) -> dict[str, Any]:
    """Compose through Hydra's compose API: defaults lists, interpolation, override grammar.

    A config file may come from a stranger: ``${oc.env:...}`` would leak the environment into
    a saved model or a shared results table, so it only resolves when ``ARCHGEN_ALLOW_ENV=1``.
    """
    # Imported here: Hydra is only needed once a file is really loaded.
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    guard_resolvers()
    try:
        with initialize_config_dir(config_dir=str(path.parent.resolve()), version_base="1.3", job_name="archgen"):
            cfg = compose(config_name=path.stem, overrides=schema_overrides(overrides))
        if not isinstance(cfg, DictConfig):
            raise SpecError("the file must hold a mapping of keys", path="config", value=str(path))
        data = OmegaConf.to_container(cfg, resolve=True)
    except SpecError:
        raise
    except UnicodeDecodeError:  # before ValueError, its base class
        raise SpecError("is not UTF-8 text", path="config", value=str(path)) from None
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        raise _compose_error(exc, overrides) from None
    except RecursionError:
        raise SpecError("interpolations refer to each other in a loop", path="config", value=str(path)) from None
    except Exception as exc:  # yaml.YAMLError and friends surface as assorted types
        raise SpecError(f"cannot be read as YAML: {_first_line(exc)}", path="config", value=str(path)) from None
    return data


def plain_yaml(path: Path) -> dict[str, Any] | None:
    """The file's mapping when it needs no composition (no interpolation, no defaults list), else None.

    Hydra and OmegaConf cost ~0.2 s to import; a plain file read this way gives the same data,
    which keeps ``summary`` quick. Duplicate keys are refused, as OmegaConf does.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError("is not UTF-8 text", path="config", value=str(path)) from None
    if "${" in text:
        return None
    import yaml

    try:
        data = yaml.load(text, Loader=_loader())
    except yaml.YAMLError as exc:
        raise SpecError(f"cannot be read as YAML: {_first_line(exc)}", path="config", value=str(path)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError("the file must hold a mapping of keys", path="config", value=str(path))
    return None if "defaults" in data else data


def _unique_mapping(loader, node, deep=False):
    import yaml

    loader.flatten_mapping(node)  # resolve "<<" merge keys first: a merged key may be overridden
    keys = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in keys:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        keys.add(key)
    return loader.construct_mapping(node, deep)


@functools.cache
def _loader():
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)
    return UniqueKeyLoader


_PLAIN = re.compile(r"^([A-Za-z_][\w.]*)=")


def schema_overrides(overrides: Sequence[str]) -> list[str]:
    """Let ``key=value`` set any key the schema knows, even one the file leaves at its default.

    Hydra refuses a plain override of a key absent from the file (it wants ``+key``); a config
    states only what differs from the defaults, so known keys are passed as ``++key`` (add or
    override). Unknown keys stay plain, so Hydra refuses them and the error names them.
    """
    out = []
    for override in overrides:
        match = _PLAIN.match(override)
        if match:
            parts = match.group(1).split(".")
            if parts[-1] in known_keys(parts):
                override = "++" + override
        out.append(override)
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())[:300]


def _compose_error(exc: BaseException, overrides: Sequence[str]) -> SpecError:
    text = _first_line(exc)
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause).strip() and str(cause).strip() not in text:
        text += f" ({_first_line(cause)})"
    if "oc.env" in text and ALLOW_ENV in text:
        return SpecError(f"reading the environment (oc.env) is off for configs; set {ALLOW_ENV}=1 to allow it",
                         path="config")
    if not overrides or "Error parsing override" not in text and "override" not in text.lower():
        return SpecError(f"cannot be composed: {text}", path="config")
    match = re.search(r"Could not override '([^']+)'", text)
    if match:
        key = match.group(1)
        parts = key.split(".")
        hint = did_you_mean(parts[-1], known_keys(parts))
        value = next((o.split("=", 1)[1] for o in overrides if o.startswith(key + "=")), ...)
        known = parts[-1] in known_keys(parts)
        shown = "..." if value is ... else value
        why = (f"is not in the file; add it with +{key}={shown}" if known else "no such key" + hint)
        return SpecError(why, path=key, value=value)
    return SpecError(f"bad override: {text}", path="overrides")


def validate(data: Any) -> ArchSpec:
    """Validate plain data against ``ArchSpec``; one ``SpecError`` naming the first problem."""
    if not isinstance(data, dict):
        raise SpecError("the file must hold a mapping of keys", path="config", value=type(data).__name__)
    try:
        return ArchSpec.model_validate(data)
    except ValidationError as exc:
        raise _spec_error(exc, data) from None


def _spec_error(exc: ValidationError, data: Any) -> SpecError:
    """Group pydantic's errors by real config path and word the first group."""
    groups: dict[str, list[tuple[tuple, dict]]] = {}
    for err in exc.errors(include_url=False):
        loc = _real_loc(err["loc"], data, err["type"])
        groups.setdefault(dotted(loc), []).append((loc, err))
    path, errs = next(iter(groups.items()))
    loc, first = errs[0]
    kind = first["type"]
    if kind == "extra_forbidden":
        if str(loc[-1]).startswith("_") and str(loc[-1]).endswith("_"):
            return SpecError("instantiation keys are refused: archgen never imports or calls code named in a "
                             "config; blocks, layers and heads are chosen by name from closed lists",
                             path=path, value=first["input"])
        if str(loc[-1]) in known_keys(loc):  # a key of a sibling type, e.g. activation on a maxpool
            return SpecError(f"does not apply to type={_type_at(data, loc)}", path=path, value=first["input"])
        return SpecError("unknown key" + did_you_mean(str(loc[-1]), known_keys(loc)), path=path, value=first["input"])
    if kind == "missing":
        return SpecError("is required" + _field_doc(loc), path=path)
    if kind == "union_tag_invalid":
        ctx = first.get("ctx", {})
        tags = ctx.get("expected_tags", "")
        tag = ctx.get("tag", "")
        return SpecError(
            f"unknown type; expected one of {tags}{did_you_mean(tag, re.findall(r'[a-z_]+', tags))}",
            path=path + ".type", value=tag)
    if kind == "union_tag_not_found":
        return SpecError("needs a 'type' key" + _field_doc(loc), path=path)
    messages = []
    for _, err in errs:
        msg = err["msg"].removeprefix("Value error, ")
        if msg not in messages:
            messages.append(msg)
    return SpecError("; or ".join(m[0].lower() + m[1:] for m in messages), path=path, value=first["input"])


def _type_at(data: Any, loc: Sequence[Any]) -> str:
    node = data
    for part in loc[:-1]:
        node = node[part]
    return str(node.get("type", "(the default)")) if isinstance(node, dict) else "?"


def _real_loc(loc: tuple, data: Any, kind: str) -> tuple:
    """Drop the parts of ``loc`` that name union members rather than keys of the data."""
    out: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and part in node:
            node = node[part]
            out.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            out.append(part)
        elif last and kind == "missing":
            out.append(part)
    return tuple(out)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _models_at(loc: Iterable[Any]) -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = [ArchSpec]
    for part in loc:
        if isinstance(part, int) or str(part).isdigit():  # a list index, from pydantic or an override
            continue
        nxt = [m2 for m in models if part in m.model_fields for m2 in _models_in(m.model_fields[part].annotation)]
        models = nxt
        if not models:
            break
    return models


def known_keys(loc: Sequence[Any]) -> list[str]:
    """The keys the schema allows beside ``loc[-1]``."""
    return sorted({f for m in _models_at(list(loc)[:-1]) for f in m.model_fields})


def _field_doc(loc: Sequence[Any]) -> str:
    for model in _models_at(list(loc)[:-1]):
        field = model.model_fields.get(str(loc[-1]))
        if field and field.description:
            doc = field.description.splitlines()[0]
            return f" ({doc[0].lower()}{doc[1:].rstrip('.')})"
    return ""
