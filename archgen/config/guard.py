"""What a config file may ask of Hydra and OmegaConf: the model's keys, nothing else.

A config file comes from a stranger. Whatever reaches Hydra under ``hydra:`` is acted on
(callbacks are instantiated, log handlers open files, launchers start), so a file, and every
file its defaults list pulls in, may not touch Hydra at all: no ``hydra`` key, no Hydra config
group or package in a defaults list or ``# @package`` header, no defaults entry leaving the
config's folder. Interpolations are plain references (``${encoder.filters}``); their expansion
is measured before OmegaConf resolves anything, so a string bomb is refused, not computed.
Settings typed on the command line (``hydra/launcher=joblib``) are the user's own and pass.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

from archgen.errors import SpecError, dotted, printable
from archgen.config.read import read_config_file

HYDRA_HINT = "Hydra settings belong on the command line (e.g. hydra/launcher=joblib), never in a config file"
_PACKAGE = re.compile(r"^\s*#\s*@package\s+(\S+)", re.M)
_INTERP = re.compile(r"\$\{([^{}]*)\}")
_REF = re.compile(r"^\.*[A-Za-z_][\w-]*(?:(?:\.[A-Za-z_0-9][\w-]*)|\[\d+\])*$")
_ENV = "oc.env:"
ALLOW_ENV = "ARCHGEN_ALLOW_ENV"
MAX_EXPANDED = 1_000_000  # characters and values after interpolation


def check_mapping(data: dict[str, Any], root: Path | None = None) -> None:
    """The same rules for a mapping handed over directly (the Python API); the files its defaults
    list names are read and checked when ``root`` (the folder they are looked up in) is known."""
    _check_file(data, None, None if root is None else root.resolve(), group=(), seen=set(), header=None)


def check_group_override(root: Path, group: str) -> None:
    """A command-line ``group=option`` pulls in files of the config's folder: check each of them."""
    folder = (root / group)
    if not folder.is_dir():
        return
    for file in sorted(folder.glob("*.yaml")):
        _check_file(read_config_file(file, key=f"{group}/{file.stem}"), file, root.resolve(),
                    group=tuple(group.split("/")), seen={file.resolve()})


def _check_file(data: dict[str, Any], path: Path | None, root: Path | None, group: tuple[str, ...],
                seen: set[Path], header: str | None = "read") -> None:
    where = "config" if path is None or root is None else _where(path, root)
    if header == "read":
        header = path.read_text(encoding="utf-8", errors="replace")[:4096]
    if header is not None:
        for package in _PACKAGE.findall(header):
            if _names_hydra(package):
                raise SpecError(f"a '# @package' header may not place keys under hydra; {HYDRA_HINT}",
                                path=where, value=package)
    for key in data:
        if isinstance(key, str) and (key == "hydra" or key.startswith("hydra.")):
            raise SpecError(f"a config file may not set Hydra's own keys; {HYDRA_HINT}", path=_join(where, key))
    defaults = data.get("defaults")
    if defaults is None:
        return
    if not isinstance(defaults, list):
        raise SpecError("must be a list of config names", path=_join(where, "defaults"), value=defaults)
    for i, entry in enumerate(defaults):
        loc = f"{_join(where, 'defaults')}[{i}]"
        for file in _default_files(entry, loc, root or Path("."), group):
            if root is None or not file.exists():
                continue  # Hydra reports a missing config itself
            if file.resolve() in seen:  # Hydra would recurse until Python's limit
                raise SpecError(f"pulls in {printable(str(file.relative_to(root)), 120)}, which is already being "
                                f"read: the defaults lists form a loop", path=loc, value=entry)
            if not _inside(file, root):
                raise SpecError("names a file outside the config's folder (through a link)", path=loc,
                                value=str(file))
            child = read_config_file(file, key=loc)
            _check_file(child, file, root, group=tuple(file.relative_to(root).parts[:-1]),
                        seen=seen | {file.resolve()})


def _default_files(entry: Any, loc: str, root: Path, group: tuple[str, ...]) -> Iterator[Path]:
    """The files a defaults-list entry names, after refusing Hydra groups, packages and ``..``."""
    if isinstance(entry, str):
        if entry == "_self_":
            return
        name, _, package = entry.partition("@")
        _check_name(name, loc, entry)
        _check_package(package, loc, entry)
        yield _config_file(root, group, name)
        return
    if not isinstance(entry, dict) or len(entry) != 1:
        raise SpecError("must be a config name or one 'group: option' pair", path=loc, value=entry)
    (key, option), = entry.items()
    if not isinstance(key, str):
        raise SpecError("must be a config name or one 'group: option' pair", path=loc, value=entry)
    words = key.split()
    if len(words) == 2 and words[0] in ("override", "optional"):
        key = words[1]
    elif len(words) != 1:
        raise SpecError("must be 'group', 'override group' or 'optional group'", path=loc, value=key)
    name, _, package = key.partition("@")
    _check_name(name, loc, key)
    _check_package(package, loc, key)
    options = option if isinstance(option, list) else [option]
    for choice in options:
        if choice is None:
            continue
        if not isinstance(choice, str):
            raise SpecError("an option must be a config name", path=loc, value=choice)
        _check_name(choice, loc, choice, option=True)
        yield _config_file(root, group, f"{name}/{choice}")


def _check_name(name: str, loc: str, shown: Any, option: bool = False) -> None:
    parts = [p for p in name.split("/") if p]
    if "${" in name or not parts:
        raise SpecError("must be a plain config name", path=loc, value=shown)
    if option and name.startswith("/"):
        raise SpecError("an option is a file name in its group, not a path", path=loc, value=shown)
    if any(p in ("..", ".") for p in parts):
        raise SpecError("may name only configs inside the config's own folder (no '..')", path=loc, value=shown)
    if _names_hydra(name):
        raise SpecError(f"a config file may not select Hydra's config groups; {HYDRA_HINT}", path=loc, value=shown)


def _check_package(package: str, loc: str, shown: Any) -> None:
    if package and _names_hydra(package):
        raise SpecError(f"a config file may not place keys under hydra; {HYDRA_HINT}", path=loc, value=shown)


def _names_hydra(name: str) -> bool:
    return any(part.strip().lower() in ("hydra", "_global_.hydra") or part.strip().lower().startswith("hydra")
               for part in re.split(r"[/.@]", name.strip()) if part)


def _config_file(root: Path, group: tuple[str, ...], name: str) -> Path:
    if name.startswith("/"):
        return root.joinpath(*name.strip("/").split("/")).with_suffix(".yaml")
    return root.joinpath(*group, *name.split("/")).with_suffix(".yaml")


def _inside(file: Path, root: Path) -> bool:
    try:
        file.resolve().relative_to(root)
        return True
    except ValueError:
        return False


def _where(path: Path, root: Path) -> str:
    try:
        rel = path.resolve().relative_to(root)
    except ValueError:
        return "config"
    return "config" if len(rel.parts) == 1 else "/".join(rel.with_suffix("").parts)


def _join(where: str, key: str) -> str:
    return key if where == "config" else f"{where}:{key}"


# --- interpolations ---------------------------------------------------------------------------

def check_interpolations(data: Any, at: tuple = ()) -> None:
    """Refuse resolvers, ``oc.env`` (unless ``ARCHGEN_ALLOW_ENV=1``) and interpolations that would
    expand past ``MAX_EXPANDED``; all checked on the unresolved tree, before OmegaConf resolves it.

    ``at`` is where the config sits in ``data`` (a DictConfig inside an app's config): only that
    sub-tree and what it refers to are measured.
    """
    expansion = _Expansion(data)
    node = expansion.lookup(".".join(str(p) for p in at), ()) if at else (data, ())
    if node is not None:
        expansion.size(*node)


def env_allowed() -> bool:
    """``${oc.env:...}`` in a config is the user's choice, made with ``ARCHGEN_ALLOW_ENV=1``."""
    import os

    return os.environ.get(ALLOW_ENV) == "1"


class _Expansion:
    """Sizes of the resolved tree, computed from the unresolved one by following references."""

    def __init__(self, data: Any):
        self.data = data
        self.memo: dict[tuple, int] = {}
        self.active: set[tuple] = set()

    def size(self, node: Any, loc: tuple) -> int:
        if isinstance(node, str):
            return self.string_size(node, loc)
        if not isinstance(node, (dict, list)):
            return 1
        total = 1
        for k, v in (node.items() if isinstance(node, dict) else enumerate(node)):
            total += self.size(v, (*loc, k))
            self.limit(total, (*loc, k))
        return total

    def string_size(self, text: str, loc: tuple) -> int:
        if "${" not in text:
            return max(len(text), 1)
        refs = _INTERP.findall(text)
        leftover = _INTERP.sub("", text)
        if "${" in leftover or "\\${" in text:
            raise SpecError("only plain references such as ${encoder.filters} may be interpolated",
                            path=dotted(loc) or "config", value=text)
        if loc in self.memo:
            return self.memo[loc]
        if loc in self.active:
            raise SpecError("interpolations refer to each other in a loop", path=dotted(loc) or "config")
        self.active.add(loc)
        total = len(leftover)
        for ref in refs:
            ref = ref.strip()
            if ref.startswith(_ENV):
                if not env_allowed():
                    raise SpecError(f"reading the environment (oc.env) is off for configs; set {ALLOW_ENV}=1 "
                                    "to allow it", path=dotted(loc) or "config", value=text)
                total += 1_000  # an environment variable: counted as a long string
                continue
            if ":" in ref or not _REF.match(ref):
                raise SpecError("only plain references such as ${encoder.filters} may be interpolated; "
                                "resolvers other than oc.env are refused", path=dotted(loc) or "config",
                                value=text)
            target = self.lookup(ref, loc)
            total += 0 if target is None else self.size(*target)
            self.limit(total, loc)
        self.active.discard(loc)
        self.memo[loc] = total
        return total

    def lookup(self, ref: str, loc: tuple) -> tuple[Any, tuple] | None:
        """The node ``ref`` points at, from ``loc`` (a relative ``${.x}`` starts at the parent)."""
        dots = len(ref) - len(ref.lstrip("."))
        base = loc[: max(len(loc) - dots, 0)] if dots else ()
        parts = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", ref)]
        node, here = self.data, ()
        for step in range(len(base)):
            node, here = self.child(node, base[step], here)
        for part in parts:
            found = self.child(node, part, here)
            if found is None:
                return None
            node, here = found
        return node, here

    def child(self, node: Any, part: Any, here: tuple):
        if isinstance(node, str) and node.startswith("${") and node.endswith("}") and node.count("${") == 1:
            ref = node[2:-1].strip()
            if ":" in ref or not _REF.match(ref) or here in self.active:
                return None
            self.active.add(here)
            target = self.lookup(ref, here)
            self.active.discard(here)
            if target is None:
                return None
            node, here = target
        if isinstance(node, dict) and part in node:
            return node[part], (*here, part)
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            return node[part], (*here, part)
        return None

    def limit(self, total: int, loc: tuple) -> None:
        if total > MAX_EXPANDED:
            raise SpecError(f"expands to more than {MAX_EXPANDED:,} characters or values through "
                            "interpolation", path=dotted(loc) or "config")

