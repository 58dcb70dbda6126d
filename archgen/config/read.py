"""Reading a config file from a stranger: bounded, safe YAML that means the same on every path.

Every file archgen reads (the config and each file its defaults list pulls in) goes through
``read_config_file``. It refuses what is not a regular file, what is over ``MAX_BYTES``,
Python tags, duplicate keys, nesting deeper than ``MAX_DEPTH`` and trees that expand (through
YAML aliases) to more than ``MAX_NODES`` values, before OmegaConf ever copies the tree.
Numbers are read as OmegaConf reads them (``1e-300`` is a float, as in YAML 1.2), so a file
gets the same verdict with and without overrides.
"""

from __future__ import annotations

import functools
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from archgen.errors import SpecError, dotted

MAX_BYTES = 1 << 20  # 1 MiB: a config is a few hundred bytes; a large file is a mistake or an attack
MAX_DEPTH = 32  # mappings and lists inside each other; the schema needs 5
MAX_NODES = 100_000  # values after aliases are expanded; the largest conf/ example has ~60
MAX_TEXT = 10_000  # characters of one string value


def read_config_file(path: Path, *, key: str = "config") -> dict[str, Any]:
    """The mapping in ``path``; ``SpecError`` naming ``key`` for anything but a sane YAML file."""
    raw = read_bounded_file(path, key=key)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("is not UTF-8 text", path=key, value=str(path)) from None
    return read_yaml_text(text, key=key, value=str(path))


def read_bounded_file(path: Path | str, *, key: str, max_bytes: int = MAX_BYTES, expected: str = "a .yaml file",
                      noun: str = "a config") -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them; ``SpecError`` naming
    ``key`` otherwise (``expected`` and ``noun`` word the messages: "expected a .yaml file", "a
    config may be at most 1 MiB"). A FIFO, device or folder is refused before and after the open,
    which never blocks: the name may be swapped for a FIFO between the two."""
    shown = str(path)
    check_regular_file(path, key=key, max_bytes=max_bytes, expected=expected, noun=noun)
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise SpecError(f"is not a regular file; expected {expected}", path=key, value=shown)
            raw = _read_at_most(fh, info.st_size, max_bytes)
    except OSError as exc:
        raise SpecError(f"cannot be read: {exc.strerror}", path=key, value=shown) from None
    if len(raw) > max_bytes:  # it grew after the stat
        raise SpecError(f"is over {max_bytes:,} bytes; {noun} may be at most {_size(max_bytes)}", path=key,
                        value=shown)
    return raw


_CHUNK = 1 << 20  # what one read asks for beyond the size the file states


def _read_at_most(fh, size: int, max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes of ``fh`` (one more than allowed tells a file that grew).

    A read reserves the memory it asks for, so the first asks for the size the file states (capped at
    the bound), not the bound itself (4 GiB for a data file: every 16x16 .npy would reserve that).
    A file that grew since, or states no size (``/proc`` files say 0), is read on in 1 MiB chunks
    until its end or the bound."""
    parts = [fh.read(min(size, max_bytes) + 1)]
    total = len(parts[0])
    while parts[-1] and total <= max_bytes:
        part = fh.read(min(_CHUNK, max_bytes + 1 - total))
        if not part:
            break
        parts.append(part)
        total += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def check_regular_file(path: Path | str, *, key: str = "config", max_bytes: int = MAX_BYTES,
                       expected: str = "a .yaml file", noun: str = "a config") -> None:
    """Refuse a path that is missing, a folder, a device or FIFO (reading could never end) or too big."""
    shown = str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise SpecError("no such file", path=key, value=shown) from None
    except OSError as exc:
        raise SpecError(f"cannot be read: {exc.strerror}", path=key, value=shown) from None
    if stat.S_ISDIR(info.st_mode):
        raise SpecError(f"is a directory; expected {expected}", path=key, value=shown)
    if not stat.S_ISREG(info.st_mode):
        raise SpecError(f"is not a regular file; expected {expected}", path=key, value=shown)
    if info.st_size > max_bytes:
        raise SpecError(f"is {info.st_size:,} bytes; {noun} may be at most {max_bytes:,} bytes ({_size(max_bytes)})",
                        path=key, value=shown)


def _size(n: int) -> str:
    """1048576 -> "1 MiB"."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


def read_yaml_text(text: str, origin: str = "config", *, key: str | None = None, value: Any = ...) -> dict[str, Any]:
    """The mapping that YAML ``text`` holds, with the same limits as a file."""
    import yaml

    key = origin if key is None else key
    if len(text) > MAX_BYTES:
        raise SpecError(f"is over {MAX_BYTES:,} characters; a config may be at most 1 MiB", path=key)
    try:
        data = yaml.load(text, Loader=_loader())
    except yaml.YAMLError as exc:
        raise SpecError(f"cannot be read as YAML: {_first_line(exc)}", path=key, value=value) from None
    except RecursionError:
        raise SpecError(f"nests deeper than {MAX_DEPTH} levels", path=key, value=value) from None
    except ValueError as exc:  # an integer with more digits than Python converts
        why = "holds an integer of more than 4,300 digits" if "digits" in str(exc) else _first_line(exc)
        raise SpecError(f"cannot be read as YAML: {why}", path=key, value=value) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError("the file must hold a mapping of keys", path=key, value=value)
    check_tree(data)
    return data


def check_tree(data: Any) -> None:
    """Refuse trees that are too deep or too big once aliases are expanded, and numbers that are
    not finite. Shared sub-trees (YAML aliases) are counted once per use, without walking them
    again: an alias bomb is measured in linear time."""
    sizes: dict[int, int] = {}

    def size(node: Any, loc: tuple, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise SpecError(f"nests deeper than {MAX_DEPTH} levels", path=dotted(loc[:MAX_DEPTH]) or "config")
        if isinstance(node, float) and not math.isfinite(node):
            raise SpecError("is not a finite number", path=dotted(loc) or "config", value=node)
        if isinstance(node, str) and len(node) > MAX_TEXT:
            raise SpecError(f"is a string of {len(node):,} characters; at most {MAX_TEXT:,} are allowed",
                            path=dotted(loc) or "config")
        if not isinstance(node, (dict, list)):
            if not isinstance(node, (str, int, float, bool, type(None))):  # !!set, !!binary and the like
                raise SpecError(f"is a YAML {type(node).__name__}; a config holds only mappings, lists, strings, "
                                "numbers, booleans and null", path=dotted(loc) or "config")
            return 1
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = MAX_NODES + 1  # a node that contains itself is endless
        items = node.items() if isinstance(node, dict) else enumerate(node)
        total = 1
        for k, v in items:
            total += size(v, (*loc, k), depth + 1)
            if total > MAX_NODES:
                break
        sizes[id(node)] = total
        if total > MAX_NODES:
            raise SpecError(f"expands to more than {MAX_NODES:,} values (YAML aliases count once per use)",
                            path=dotted(loc) or "config")
        return total

    size(data, (), 0)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().replace(' in "<unicode string>",', " at") or type(exc).__name__
    return " ".join(text.split())[:300]


def _unique_mapping(loader, node, deep=False):
    import yaml

    loader.flatten_mapping(node)  # resolve "<<" merge keys first: a merged key may be overridden
    keys = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, (list, dict)):
            raise yaml.constructor.ConstructorError(None, None, "a key must be a plain value", key_node.start_mark)
        if key in keys:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        keys.add(key)
    return loader.construct_mapping(node, deep)


# OmegaConf's float rule (omegaconf/_utils.py get_yaml_loader), so that both read "1e-300" as a float.
_FLOAT = re.compile(
    r"""^(?:
     [-+]?[0-9]+(?:_[0-9]+)*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+)
    |\.[0-9]+(?:_[0-9]+)*(?:[eE][-+][0-9]+)?
    |[-+]?[0-9]+(?:_[0-9]+)*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


@functools.cache
def _loader():
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class ConfigLoader(base):
        """SafeLoader, numbers as OmegaConf reads them, no timestamps, duplicate keys refused."""

    ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
    ConfigLoader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in ConfigLoader.yaml_implicit_resolvers.items()
    }
    ConfigLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)
    return ConfigLoader
