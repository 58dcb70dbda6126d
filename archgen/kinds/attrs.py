"""The base of every layer kind's attribute record (each kind's own record sits beside its facts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Attrs:
    """A kind's attribute record: a frozen dataclass, one typed field per attribute its layers carry.

    The facts of a kind read it by name (``a.kernel``) or, as they read any mapping, ``a["kernel"]``
    (a field it does not have is a ``KeyError``), ``a.get("floor", False)`` and ``"amounts" in a``
    (a field left ``None`` reads as absent), so the Keras-model side of tiling can hand them plain
    dicts of the same names."""

    # Membership reads the dataclass's own field table: these are read in the planner's inner loops.
    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(f"{type(self).__name__} has no attribute {key!r}")
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None) if key in self.__dataclass_fields__ else None
        return default if value is None else value

    def __contains__(self, key: object) -> bool:
        return key in self.__dataclass_fields__ and getattr(self, key) is not None

    def items(self) -> list[tuple[str, Any]]:
        """The fields that are set (not None), as ``(name, value)``."""
        return [(name, value) for name in self.__dataclass_fields__ if (value := getattr(self, name)) is not None]

    def values(self) -> list[Any]:
        return [value for _, value in self.items()]

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(cls.__dataclass_fields__)


@dataclass(frozen=True)
class NoAttrs(Attrs):
    """A kind whose layers carry no attributes (the input, merges, the SE pool, ...)."""
