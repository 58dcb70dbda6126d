"""Config file + Hydra overrides -> validated ``ArchSpec``.

Pydantic's ``loc`` tuples become dotted config paths here and nowhere else.
"""

from __future__ import annotations

import itertools
import re
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence, get_args

from pydantic import BaseModel, ValidationError

from archgen.errors import SpecError, did_you_mean, dotted
from archgen.config.guard import ALLOW_ENV, check_group_override, check_interpolations, check_mapping
from archgen.config.model import ArchSpec
from archgen.config.read import check_regular_file, check_tree, read_config_file, read_yaml_text  # noqa: F401


MAX_OVERRIDES = 10_000  # a config has far fewer keys


def check_overrides(overrides: Any) -> list[str]:
    """``overrides`` as a list of strings (one string is one override), refused naming ``overrides``
    when it is anything else; an endless iterator is cut at ``MAX_OVERRIDES``."""
    if isinstance(overrides, str):  # one override, not a sequence of its characters
        overrides = [overrides]
    try:
        items = list(itertools.islice(overrides, MAX_OVERRIDES + 1))  # an endless iterator stops here
    except TypeError:
        raise SpecError("expected a list of strings such as 'encoder.depth=3'", path="overrides",
                        value=type(overrides).__name__) from None
    if len(items) > MAX_OVERRIDES:
        raise SpecError(f"holds more than {MAX_OVERRIDES:,} overrides", path="overrides",
                        value=type(overrides).__name__)
    for item in items:
        if not isinstance(item, str):
            raise SpecError("expected a list of strings such as 'encoder.depth=3'", path="overrides", value=item)
    return items


def load_spec(config: str | Path, overrides: Sequence[str] = ()) -> ArchSpec:
    """Read ``config``, apply Hydra ``overrides`` and validate it.

    >>> load_spec("conf/unet.yaml", ["encoder.depth=3"]).encoder.depth
    3
    """
    return validate(compose_config(config, overrides))


def compose_config(config: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The config file as plain data, after its defaults list and Hydra's override grammar."""
    path = check_config_path(config)
    data = read_config_file(path)
    return compose_data(data, overrides, root=path.parent)  # checks it and its defaults' files


def check_config_path(config: str | Path) -> Path:
    """The config file's path, refused early when it is not a readable ``.yaml`` file."""
    path = Path(config)
    check_regular_file(path)
    if path.suffix != ".yaml":
        raise SpecError("expected a file ending in .yaml", path="config", value=str(config))
    return path


def compose_data(data: dict[str, Any], overrides: Sequence[str] = (), origin: str = "config",
                 root: Path | None = None) -> dict[str, Any]:
    """Checked plain data: ``data`` with its defaults list composed, ``overrides`` applied and
    interpolations resolved. ``root`` is the folder the defaults list and config groups are
    looked up in (the config file's folder).

    Hydra never reads the config file itself: archgen reads it (``read_config_file``) and hands
    Hydra the checked mapping through its ConfigStore, so what Hydra composes is exactly what
    archgen checked.
    """
    if not isinstance(data, dict):
        raise SpecError("the config must be a mapping of keys", path=origin, value=type(data).__name__)
    check_tree(data)
    check_mapping(data, root)
    check_interpolations(data)  # before OmegaConf parses a single string
    overrides = list(overrides)
    check_override_depth(overrides)
    if root is not None:
        check_override_groups(root, overrides)
    if not overrides and "defaults" not in data:
        if not _has_interpolation(data):
            return data
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException

        try:
            cfg = OmegaConf.create(data)
        except (OmegaConfBaseException, ValueError) as exc:
            raise _compose_error(exc, ()) from None
        return resolve(cfg, origin)
    return resolve(hydra_compose(data, overrides, root), origin)


def check_override_depth(overrides: Sequence[str]) -> None:
    """Refuse an override whose value nests lists and mappings deeper than a config may, before
    Hydra's parser recurses through it (it would run out of stack, which reads as a loop)."""
    from archgen.config.read import MAX_DEPTH

    for override in overrides:
        depth, deepest, quote = 0, 0, None
        for char in override:
            if quote:
                quote = None if char == quote else quote
            elif char in "'\"":
                quote = char
            elif char in "[{(":
                depth += 1
                deepest = max(deepest, depth)
            elif char in "]})":
                depth -= 1
        if deepest > MAX_DEPTH:
            key, value = override.split("=", 1) if "=" in override else ("overrides", override)
            raise SpecError(f"nests deeper than {MAX_DEPTH} levels", path=key.lstrip("+~") or "overrides",
                            value=value if len(value) <= 60 else value[:57] + "...")


def check_override_groups(root: Path, overrides: Sequence[str]) -> None:
    """Config groups chosen on the command line pull in files of the config's folder: check them."""
    if (root / f"{CONFIG_NAME}.yaml").exists():  # it would shadow the checked config in Hydra's search path
        raise SpecError("a config folder may not hold a file of this name", path="config",
                        value=str(root / f"{CONFIG_NAME}.yaml"))
    for override in overrides:
        key = _GROUP.match(override)
        if key and not key.group(1).lower().startswith("hydra"):
            check_group_override(root, key.group(1))


def _has_interpolation(node: Any) -> bool:
    if isinstance(node, str):
        return "${" in node
    if isinstance(node, dict):
        return any(_has_interpolation(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_interpolation(v) for v in node)
    return False


CONFIG_NAME = "__archgen_config__"  # the checked config's name in Hydra's ConfigStore
_GROUP = re.compile(r"^[+~]{0,2}([A-Za-z_][\w/-]*)(?:@[\w.]*)?=")


def _refuse_env(*_args: Any) -> Any:
    raise ValueError(f"reading the environment (oc.env) is off for configs; set {ALLOW_ENV}=1 to allow it")


def guard_resolvers() -> None:
    """Unless ``ARCHGEN_ALLOW_ENV=1``, make ``${oc.env:...}`` an error in this process: for the
    command line's own process only (a sweep, whose jobs resolve configs inside Hydra). Library
    calls never change OmegaConf for their host; ``check_interpolations`` refuses ``oc.env`` there."""
    import os

    from omegaconf import OmegaConf

    if os.environ.get(ALLOW_ENV) != "1":
        OmegaConf.register_new_resolver("oc.env", _refuse_env, replace=True)


def store_config(data: dict[str, Any]) -> None:
    """Put the checked config into Hydra's ConfigStore, where Hydra composes it from."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=CONFIG_NAME, node=data)


def hydra_compose(data: dict[str, Any], overrides: Sequence[str], root: Path | None):
    """Compose ``data`` with Hydra's compose API: defaults list and override grammar. Unresolved."""
    from hydra import compose, initialize, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import DictConfig
    from omegaconf.errors import OmegaConfBaseException

    try:
        store_config(data)
        init = (initialize(version_base="1.3", config_path=None, job_name="archgen") if root is None else
                initialize_config_dir(config_dir=str(root.resolve()), version_base="1.3", job_name="archgen"))
        with init, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Hydra's advice on _self_ and schema matching is not for our users
            cfg = compose(config_name=CONFIG_NAME, overrides=schema_overrides(overrides))
    except SpecError:
        raise
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        raise _compose_error(exc, overrides) from None
    except RecursionError:
        raise SpecError("interpolations refer to each other in a loop", path="config") from None
    except Exception as exc:  # a group file Hydra could not read, and friends
        raise SpecError(f"cannot be composed: {_first_line(exc)}", path="config") from None
    if not isinstance(cfg, DictConfig):
        raise SpecError("the config must be a mapping of keys", path="config")
    return cfg


def resolve(cfg: Any, origin: str = "config") -> dict[str, Any]:
    """Plain data from a composed, unresolved OmegaConf config: interpolations are checked
    (plain references only, bounded expansion) before OmegaConf resolves them."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        raw = OmegaConf.to_container(cfg, resolve=False)
        if isinstance(raw, dict):
            raw.pop("hydra", None)
        check_tree(raw)
        check_interpolations(raw)
        data = OmegaConf.to_container(cfg, resolve=True)
    except SpecError:
        raise
    except RecursionError:
        raise SpecError("interpolations refer to each other in a loop", path=origin) from None
    except (OmegaConfBaseException, ValueError) as exc:
        raise _compose_error(exc, ()) from None
    if not isinstance(data, dict):
        raise SpecError("the config must be a mapping of keys", path=origin)
    data.pop("hydra", None)
    check_tree(data)
    return data


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
    # A sweep given without -m: Hydra says "Ambiguous value for argument" (a,b) or "requires --multirun".
    match = re.search(r"(?:Ambiguous value for argument|Sweep parameters) '([^']*)'", text)
    if match and "=" in match.group(1):
        key, value = match.group(1).split("=", 1)
        from archgen.config.sweep_value import SweepValueError

        return SweepValueError(key.lstrip("+~"), value, as_list=text.startswith("Ambiguous"))
    # An index past the end of a list: name the list and its length.
    if type(cause).__name__ == "ConfigIndexError" and isinstance(getattr(cause, "key", None), int):
        index = cause.key
        full = re.sub(r"\[(\d+)\]", r".\1", str(getattr(cause, "full_key", "") or ""))
        name = full[: -len(f".{index}")] if full.endswith(f".{index}") else full
        parent = getattr(cause, "parent_node", None)
        try:
            size = len(parent) if parent is not None else None
        except Exception:  # noqa: BLE001 - only the wording depends on it
            size = None
        override = next((o for o in overrides if re.match(rf"^[+~]*{re.escape(name)}\.{index}(\.|=)", o)), None)
        key, value = (override.lstrip("+~").split("=", 1) + [...])[:2] if override else (f"{name}.{index}", ...)
        if size is None:
            has = "is shorter"
        else:
            valid = "" if size == 0 else f" ({name}.0)" if size == 1 else f" ({name}.0 to {name}.{size - 1})"
            has = f"has {size} entr{'y' if size == 1 else 'ies'}{valid}"
        return SpecError(f"{name} {has}, so {name}.{index} does not exist; to add entries, set the whole list "
                         f"({name}=[...]) or add them in the config file", path=key, value=value)
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
    if all(e["type"].endswith("_type") and isinstance(e["input"], (list, dict)) for _, e in errs):
        # a list or mapping where one branch of a union wants a number: the other branch's finding inside
        # it (encoder.filters[2]) says what is wrong
        inner = [(p, e) for p, e in groups.items() if p.startswith((path + "[", path + "."))]
        if inner:
            path, errs = inner[0]
    loc, first = errs[0]
    stray = _misindented(data, (*loc, "type") if first["type"] == "union_tag_invalid" else loc)
    if stray is not None:
        return stray
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
        if _quoted_number(err["type"], err["input"]):
            msg += f", not the string {err['input']!r} (write it without quotes)"
        if msg not in messages:
            messages.append(msg)
    return SpecError("; or ".join(m[0].lower() + m[1:] for m in messages), path=path, value=first["input"])


def _quoted_number(kind: str, value: Any) -> bool:
    """A number or boolean written in quotes, where the schema wants the number itself."""
    if not isinstance(value, str) or kind not in ("int_type", "float_type", "bool_type"):
        return False
    if kind == "bool_type":
        return value.lower() in ("true", "false")
    return bool(re.fullmatch(r"[+-]?\d+" if kind == "int_type" else r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?",
                             value.strip()))


def _misindented(data: Any, loc: tuple) -> SpecError | None:
    """The error at ``loc`` as a mis-indented part: a key whose value holds keys (``block``) left
    empty (null), with keys of its own written below it at its level instead of under it::

        encoder:
          block:
          norm: batch      # meant under block

    ``loc`` is the empty key itself, or one of those keys (``type: residual`` reads as the
    encoder's type). None when the error is not that."""
    if not loc:
        return None
    parent = data
    for part in loc[:-1]:
        parent = parent[part]
    if not isinstance(parent, dict):
        return None
    keys = list(parent)
    at = keys.index(loc[-1]) if loc[-1] in keys else len(keys)
    for i in range(min(at, len(keys) - 1), -1, -1):  # the nearest empty key at or above the error
        key = keys[i]
        if parent[key] is not None or not isinstance(key, str):
            continue
        child = (*loc[:-1], key)
        own = {f for model in _models_at(child) for f in model.model_fields}
        if not own:
            continue
        strays = []
        for later in keys[i + 1:]:
            if later not in own:
                break
            strays.append(later)
        if loc[-1] != key and loc[-1] not in strays or not strays:
            return None
        if loc[-1] != key and loc[-1] in {f for model in _models_at(loc[:-1]) for f in model.model_fields}:
            # a key the parent has too: only a kind the empty part has (type: residual) says where it belongs
            tags = {str(m.model_fields["type"].default) for m in _models_at(child) if "type" in m.model_fields}
            if loc[-1] != "type" or parent[loc[-1]] not in tags:
                return None
        names = ", ".join(strays[:-1]) + (" and " if len(strays) > 1 else "") + strays[-1]
        some = "are keys" if len(strays) > 1 else "is a key"
        return SpecError(f"is empty, and {names} below it {some} of {key}: indent "
                         f"{'them' if len(strays) > 1 else 'it'} under {key}", path=dotted(child), value=None)
    return None


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
