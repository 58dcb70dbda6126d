"""archgen's config schema as a node in Hydra's ConfigStore, for use inside your own Hydra app.

::

    import archgen.hydra_conf
    archgen.hydra_conf.register()          # group "model", name "archgen"

A model config of the app (``conf/model/unet.yaml``, an archgen file) starts with::

    defaults:
      - archgen
      - _self_

so Hydra merges the file onto the node. The node holds every key the schema knows, with its
default, so the command line sets any of them without ``+`` (``model.encoder.block.norm=batch``).
Keys and values are checked by archgen, not by Hydra: the node is open (OmegaConf's struct flag
off), so a misspelt key, in a model file or on the command line, reaches
``archgen.build_model(cfg.model)``, which names it by its full key with a did-you-mean
(``model.encoder.detph=3: unknown key (did you mean 'depth'?)``) instead of Hydra's
``Key 'detph' not in ...``. The app's own keys beside the model stay as strict as Hydra makes them.

Two parts of the schema are choices between kinds (``type``) with different keys: the node of an
up-sampling, down-sampling, merge or block holds the keys of every kind, and ``from_node`` drops
those still at the node's default that the chosen kind does not have (or defaults differently).
``decoder.block`` defaults to null (the decoder reuses the encoder's block); its node holds every
block key as null, and null keys mean "not set": a decoder block with none set is no block.

Module named ``hydra_conf``, not ``hydra``: a script run from inside ``archgen/`` would otherwise
import it in place of the real ``hydra`` package.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, List, Optional, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from archgen.config.model import ArchSpec

MISSING = "???"  # OmegaConf's mark for a value the config must give
GROUP = "model"
NAME = "archgen"


def register(group: str | None = GROUP, name: str = NAME) -> None:
    """Store the schema node in Hydra's ConfigStore as ``group/name`` (``model/archgen``).

    Call it before ``@hydra.main`` runs (at import time of the app). ``group=None`` stores it at
    the top level, for an app whose whole config is the model.
    """
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group=group, name=name, node=schema_config())


def schema_node() -> type:
    """The dataclass Hydra reads as the node: nested dataclasses, leaves typed ``Any``.

    Leaves are untyped so that archgen, not OmegaConf, checks values and words the errors.
    """
    return _dataclass((ArchSpec,), ArchSpec.__name__ + "Node", unset=False)


def schema_config():
    """``schema_node()`` as an OmegaConf config with every part open (struct off), so that an
    unknown key is kept for archgen to refuse by its full key, with a did-you-mean.

    OmegaConf refuses a key a dataclass lacks unless that very node's struct flag is false (a
    parent's flag is not enough), so each part gets its own. List entries (``heads``, the
    stages) are plain mappings, which inherit the flag.
    """
    from omegaconf import DictConfig, OmegaConf

    cfg = OmegaConf.structured(schema_node())
    pending = [cfg]
    while pending:
        node = pending.pop()
        OmegaConf.set_struct(node, False)
        for key in node:
            if not OmegaConf.is_missing(node, key) and isinstance(node[key], DictConfig):
                pending.append(node[key])
    return cfg


def from_node(data: dict[str, Any]) -> dict[str, Any]:
    """Plain data of a composed node (``OmegaConf.to_container``) -> archgen's config data.

    Drops what the node adds to a config: keys of other kinds still at their node default, and
    the unset (null) keys of ``decoder.block``. Harmless on data that never met the node.
    """
    return _strip(data, ArchSpec)


def node_defaults(members: tuple[type[BaseModel], ...]) -> dict[str, Any]:
    """Keys and defaults of the node for a choice of ``members`` (the first is the default kind)."""
    out: dict[str, Any] = {}
    for model in members:
        for key, info in model.model_fields.items():
            if key not in out:
                out[key] = MISSING if info.default is PydanticUndefined and info.default_factory is None else (
                    info.get_default(call_default_factory=True))
    if "type" in out:  # the kind first, as the conf/ files write it
        out = {"type": out.pop("type"), **out}
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _is_list(annotation: Any) -> bool:
    while get_args(annotation) and get_origin(annotation) is not list:
        # Annotated[...] and Optional[...] wrap the list; a union of a number and a list
        # (filters, kernel_size) has no model inside and never reaches here.
        annotation = get_args(annotation)[0]
    return get_origin(annotation) is list


def _field_members(info: Any) -> tuple[type[BaseModel], ...]:
    """The field's models, its default kind first."""
    members = _models_in(info.annotation)
    default = info.default
    if isinstance(default, BaseModel) and type(default) in members:
        members.remove(type(default))
        members.insert(0, type(default))
    return tuple(members)


@functools.cache
def _dataclass(members: tuple[type[BaseModel], ...], name: str, unset: bool) -> type:
    fields = []
    for key, default in node_defaults(members).items():
        info = next(m.model_fields[key] for m in members if key in m.model_fields)
        sub = _field_members(info)
        if not sub:  # a leaf
            value = None if unset else default
            if isinstance(value, (list, dict)):
                fields.append((key, Any, dataclasses.field(default_factory=functools.partial(_copy, value))))
            else:
                fields.append((key, Any, dataclasses.field(default=value)))
            continue
        sub_name = "Or".join(m.__name__ for m in sub) + "Node"
        if _is_list(info.annotation):  # heads, stages: plain mappings, open to keys archgen then checks
            if info.default is None:  # encoder.stages, decoder.stages: null means the short form
                fields.append((key, Optional[List[Any]], dataclasses.field(default=None)))
            else:
                fields.append((key, List[Any], dataclasses.field(default=MISSING)))
        elif info.default is None:  # decoder.block: null means "the encoder's"; its keys start unset
            node = _dataclass(sub, "Unset" + sub_name, unset=True)
            fields.append((key, Optional[node], dataclasses.field(default_factory=node)))
        else:
            node = _dataclass(sub, sub_name, unset=unset)
            fields.append((key, node, dataclasses.field(default_factory=node)))
    return dataclasses.make_dataclass(name, fields)


def _sub_node_default(members: tuple[type[BaseModel], ...], key: str) -> Any:
    """What the node holds at ``key`` (a model's field) before anything sets it."""
    info = next(m.model_fields[key] for m in members if key in m.model_fields)
    sub = _field_members(info)
    if not sub or _is_list(info.annotation) or info.default is None:
        return None
    return dataclasses.asdict(_dataclass(sub, "Or".join(m.__name__ for m in sub) + "Node", unset=False)())


def _copy(value: Any) -> Any:
    return [_copy(v) for v in value] if isinstance(value, list) else (
        {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else value)


def _same(a: Any, b: Any) -> bool:
    # type first: True == 1 and 1 == 1.0 in Python, but not in the schema
    return type(a) is type(b) and a == b


def _unset(value: Any) -> bool:
    """A key the node left unset: null, or a part whose keys are all unset (decoder.block.se)."""
    return value is None or (isinstance(value, dict) and all(_unset(v) for v in value.values()))


def _strip(data: Any, model: type[BaseModel]) -> Any:
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for key, value in data.items():
        info = model.model_fields.get(key) if isinstance(key, str) else None
        members = _field_members(info) if info is not None else ()
        if not members:
            continue
        if _is_list(info.annotation):
            if isinstance(value, list):
                out[key] = [_strip(item, members[0]) for item in value]
            continue
        if not isinstance(value, dict):
            continue
        if info.default is None:  # decoder.block's unset keys
            value = {k: v for k, v in value.items() if not _unset(v)}
            if not value:
                out[key] = None
                continue
        if len(members) == 1:
            out[key] = _strip(value, members[0])
            continue
        defaults = node_defaults(members)
        kinds = {m.model_fields["type"].default: m for m in members}
        chosen = kinds.get(value.get("type", members[0].model_fields["type"].default))
        if chosen is None:  # an unknown type: validation names it
            out[key] = value
            continue
        kept = {}
        for k, v in value.items():
            own = chosen.model_fields.get(k) if isinstance(k, str) else None
            # A null-default model (encoder.stem) stands in the node as its keys, all null; a model of
            # another kind (the U-Net encoder's block, under a backbone) as its node's defaults.
            unset = defaults.get(k) is None and isinstance(v, dict) and _unset(v)
            untouched = own is None and isinstance(v, dict) and v == _sub_node_default(members, k)
            filler = k in defaults and (unset or untouched or _same(v, defaults[k])) and (
                own is None or not _same(own.get_default(call_default_factory=True), defaults[k]))
            if k == "type" or not filler:
                kept[k] = v
        # The encoder's kinds hold models of their own (block, downsample), whose optional parts (a
        # block's se) may be unset too.
        out[key] = _strip(kept, chosen)
    return out
