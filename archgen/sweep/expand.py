"""A sweep's overrides read with Hydra's parser: counted against the cap, expanded into one list of
overrides per variant, and the swept keys and values a results table shows."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any, Sequence

from archgen.compat.hydra import override_parser, split_sweep
from archgen.errors import SpecError, printable


def swept_keys(overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    """The keys the sweep varies (a column each) and the overrides every variant shares, as
    Hydra writes them into a job's overrides."""
    from archgen.config.load import schema_overrides

    swept, fixed = [], []
    for override in parse_overrides(schema_overrides(overrides)):
        if override.is_sweep_override():
            if override.key_or_group not in swept:
                swept.append(override.key_or_group)
        elif not override.key_or_group.startswith("hydra"):
            try:
                text = override.get_key_element()
                if not override.is_delete() or override.value() is not None:
                    text += "=" + override.get_value_element_as_str()
            except Exception:  # noqa: BLE001 - only the text shown above the table
                text = override.input_line or ""
            fixed.append(text.lstrip("+"))
    return swept, fixed


def swept_values(overrides: Sequence[str], keys: Sequence[str]) -> dict[str, Any]:
    """``{key: value}`` of the swept ``keys`` among a variant's overrides, values typed as Hydra
    reads them (``input.shape=[32,32,1]`` -> ``[32, 32, 1]``)."""
    out: dict[str, Any] = {}
    if not keys:
        return out
    for text in overrides:
        try:
            override = parsed_override(text)
        except Exception:  # noqa: BLE001 - a row never fails over how its values are shown
            continue
        if override.key_or_group in keys:
            try:
                value = override.value()
                json.dumps(value)
            except Exception:  # noqa: BLE001 - not plain data: the text Hydra would write
                value = override.get_value_element_as_str()
            out[override.key_or_group] = value
    return {key: out[key] for key in keys if key in out}


@functools.lru_cache(maxsize=65536)
def parsed_override(text: str):
    """Hydra's parse of one override; a sweep's variants repeat the same few strings, so each is
    parsed once (the grammar costs ~1 ms a string)."""
    return override_parser().parse_override(text)


def expand_variants(overrides: Sequence[str], root: Path, cap: int) -> list[list[str]] | None:
    """Each variant's overrides, as Hydra's basic sweeper makes them, after checking their number
    against ``cap`` without expanding them. None when another sweeper is chosen."""
    from archgen.config.load import schema_overrides

    parsed = parse_overrides(schema_overrides(overrides))
    total = 1
    for override, text in zip(parsed, overrides):  # one parse per override, in order
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise SpecError("interval() needs a sweeper that samples, e.g. hydra/sweeper=optuna; the basic "
                                "sweeper takes lists, range() and choice()", path="overrides",
                                value=printable(text))
            count = _count(override, root, printable(text))
            total *= count
            if count > cap:  # alone: an empty list elsewhere must not let a huge range be listed
                total = count
        if total > cap:
            raise SpecError(f"the sweep would run more than {cap:,} variants; pass --max-variants to allow more",
                            path="overrides", value=printable(" ".join(overrides)))
    if any(o.key_or_group == "hydra/sweeper" for o in parsed):
        return None
    return split_variants(parsed)


def split_variants(parsed) -> list[list[str]]:
    """Each variant's overrides, as Hydra's basic sweeper makes them of parsed overrides."""
    from hydra.errors import HydraException

    try:
        return split_sweep(parsed)
    except HydraException as exc:
        raise SpecError(f"bad override: {' '.join(str(exc).split())}", path="overrides") from None


def parse_overrides(overrides: Sequence[str]):
    from hydra.errors import HydraException

    try:
        return override_parser().parse_overrides(list(overrides))
    except HydraException as exc:
        raise SpecError(f"bad override: {printable(' '.join(str(exc).split()))}", path="overrides") from None


def _count(override, root: Path, shown: str) -> int:
    import fnmatch

    value = override.value()
    kind = type(value).__name__
    if kind == "ChoiceSweep":
        return len(value.list)
    if kind == "RangeSweep":
        return _range_count(value.start, value.stop, value.step, shown)
    if kind == "Glob":  # options of a config group in the config's folder
        if not (root / override.key_or_group).is_dir():
            raise SpecError("glob() picks options of a config group (a folder beside the config); "
                            f"there is no folder {override.key_or_group}/", path="overrides", value=shown)
        names = [p.stem for p in (root / override.key_or_group).glob("*.yaml")]
        return sum(any(fnmatch.fnmatch(n, i) for i in value.include)
                   and not any(fnmatch.fnmatch(n, e) for e in value.exclude) for n in names)
    return 1


def _range_count(start: Any, stop: Any, step: Any, shown: str) -> int:
    """How many values Hydra's ``range(start, stop, step)`` yields, counted exactly (never by listing
    them, never through a float that overflows): any numbers, however large, give a count or one
    ``SpecError``."""
    from fractions import Fraction

    numbers = (start, stop, step)
    if not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
        raise SpecError("range() takes numbers", path="overrides", value=shown)
    if not all(math.isfinite(n) for n in numbers if isinstance(n, float)):
        raise SpecError("range() takes finite numbers (not inf or nan)", path="overrides", value=shown)
    if step == 0:
        raise SpecError("range() needs a step other than 0", path="overrides", value=shown)
    # Hydra counts ints with range() and floats with exact decimals: a Fraction holds either exactly.
    span = Fraction(stop) - Fraction(start)
    count = max(0, math.ceil(span / Fraction(step)))
    if count == 0:
        raise SpecError("range() gives no values: it counts from start up to stop, stop excluded (down with a "
                        "negative step)", path="overrides", value=shown)
    return count
