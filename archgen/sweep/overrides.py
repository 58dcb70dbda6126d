"""One variant's config: the sweep's data with the variant's overrides applied, as Hydra applies them."""

from __future__ import annotations

import copy
from typing import Any, Sequence

from archgen.compat.hydra import apply_overrides
from archgen.errors import SpecError
from archgen.sweep.expand import parsed_override


def variant_config(data: dict, variant: Sequence[str]) -> dict[str, Any]:
    """``data`` with one variant's overrides applied, checked and resolved as any config is."""
    from archgen.config.load import _has_interpolation, resolve
    from archgen.config.read import check_tree

    config = _apply_plain(data, variant)
    if config is not None and not _has_interpolation(config):
        check_tree(config)
        return config
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    cfg = OmegaConf.create(data)
    try:
        apply_overrides([parsed_override(o) for o in variant], cfg)
    except (HydraException, OmegaConfBaseException) as exc:
        raise SpecError(" ".join(str(exc).split()), path="overrides") from None
    return resolve(cfg)


class _Unusual(Exception):
    """An override the plain path leaves to OmegaConf."""


def _apply_plain(data: dict, variant: Sequence[str]) -> dict | None:
    """``data`` with ``++key=value`` overrides applied, as ``OmegaConf.update(cfg, key, value,
    merge=True, force_add=True)`` does; None when an override takes another form."""
    config = copy.deepcopy(data)
    try:
        for text in variant:
            override = parsed_override(text)
            if not override.is_force_add():
                return None
            value = override.value()
            if _has_text(value, "${"):
                return None
            _force_add(config, override.key_or_group.split("."), copy.deepcopy(value))
    except _Unusual:
        return None
    return config


def _force_add(node: Any, parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        if isinstance(node, dict):
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise _Unusual()
        if not isinstance(node, (dict, list)):
            raise _Unusual()
    last = parts[-1]
    if isinstance(node, list):
        if not (last.isdigit() and int(last) < len(node)):
            raise _Unusual()
        node[int(last)] = value
    elif isinstance(value, dict) and isinstance(node.get(last), dict):
        _merge(node[last], value)
    else:
        node[last] = value


def _merge(into: dict, value: dict) -> None:
    """OmegaConf.merge of one mapping into another: mappings merge, everything else replaces."""
    for key, item in value.items():
        if isinstance(item, dict) and isinstance(into.get(key), dict):
            _merge(into[key], item)
        else:
            into[key] = item


def _has_text(value: Any, text: str) -> bool:
    if isinstance(value, str):
        return text in value
    if isinstance(value, dict):
        return any(_has_text(k, text) or _has_text(v, text) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_text(v, text) for v in value)
    return False
