"""The README's options table documents every key of the schema, with every value a closed list
allows (a part with a section of its own may keep its keys in a table of the same form there);
the command table every option; the figures beside them are what archgen computes."""

from __future__ import annotations

import re
from typing import Any, Literal, get_args, get_origin

import pytest
from pydantic import BaseModel

import archgen
from archgen.config.model import Activation, ArchSpec
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(title)
    return README[start:README.index("\n#", start + 1)]


OPTIONS = _section("### All the options")


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models(arg)]


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        return True
    return any(_is_list(arg) for arg in get_args(annotation) if not _models(arg) or get_origin(arg) is list)


def _literals(annotation: Any) -> set[str]:
    if get_origin(annotation) is Literal:
        return {str(v) for v in get_args(annotation)}
    return {v for arg in get_args(annotation) for v in _literals(arg)}


def schema_keys() -> dict[str, set[str]]:
    """Every dotted key (``heads[].name`` for a list's entries) -> the closed values it allows."""
    keys: dict[str, set[str]] = {}

    def walk(models: list[type[BaseModel]], prefix: str) -> None:
        for model in models:
            for name, field in model.model_fields.items():
                key = prefix + name
                values = _literals(field.annotation)
                if values == set(get_args(Activation)):
                    values = set()  # one list for every activation, below the table
                keys.setdefault(key, set()).update(values)
                sub = _models(field.annotation)
                if sub:
                    walk(sub, key + ("[]." if _is_list(field.annotation) else "."))

    walk([ArchSpec], "")
    return keys


def _code_words(text: str) -> set[str]:
    return {w for span in re.findall(r"`([^`]*)`", text) for w in re.findall(r"[\w+]+", span.replace("\\|", " "))}


def key_tables() -> str:
    """Every table of keys in the README: the options table, and any a section of its own keeps
    (a header row ``| key | ...``)."""
    return "\n".join(m.group(0) for m in re.finditer(r"^\| key \|.*\n(?:\|.*\n)*", README, re.M))


def table_rows() -> dict[str, str]:
    """The rows of the key tables by the keys of their first cell (``encoder.filters``,
    ``multiplier`` -> ``encoder.multiplier``) -> the whole row's text."""
    rows: dict[str, str] = {}
    for line in key_tables().splitlines():
        if not line.startswith("| `"):
            continue
        first = re.split(r"(?<!\\)\|", line)[1]
        parent = ""
        for span in re.findall(r"`([^`]*)`", first):
            key = re.split(r"[: ]", span)[0]
            if "." in key:
                parent = key.rsplit(".", 1)[0] + "."
            else:
                key = parent + key
            rows[key] = rows.get(key, "") + line
    return rows


ROWS = table_rows()


def _row_for(key: str) -> str | None:
    """The row of the longest key of the table that ``key`` starts with."""
    found = [k for k in ROWS if key == k or key.startswith(k + ".")]
    return max(found, key=len) if found else None


@pytest.mark.parametrize("key", sorted(schema_keys()))
def test_every_schema_key_is_in_the_options_table(key):
    row = _row_for(key)
    if row is None:  # a key that only holds others: documented by the rows below it
        assert any(k.startswith((key + ".", key + "[]")) for k in ROWS), f"{key} has no row in the README's table"
        return
    missing = [part for part in key[len(row):].strip(".").split(".") if part and part not in _code_words(ROWS[row])]
    assert not missing, f"{key}: the row of {row} does not name {missing}"


@pytest.mark.parametrize("key", sorted(k for k, v in schema_keys().items() if v))
def test_every_value_of_a_closed_list_is_in_its_row(key):
    row = _row_for(key) or key
    missing = sorted(schema_keys()[key] - _code_words(ROWS.get(row, "")))
    assert not missing, f"{key}: the row of {row} does not list {missing}"


def test_the_table_names_no_key_the_schema_lacks():
    keys = schema_keys()
    assert sorted(k for k in ROWS if k not in keys and not any(s.startswith(k + ".") for s in keys)) == []


def test_every_activation_is_listed():
    assert sorted(set(get_args(Activation)) - _code_words(OPTIONS)) == []


def test_prelu_adds_the_parameters_the_readme_says():
    prelu = archgen.plan(ROOT / "conf" / "unet.yaml", ["encoder.block.activation=prelu"]).total_params
    seed = archgen.plan(ROOT / "conf" / "unet.yaml").total_params
    assert f"`archgen summary conf/unet.yaml\nencoder.block.activation=prelu` counts {prelu:,} parameters, " \
           f"{prelu - seed} more" in OPTIONS


def test_the_corpus_count_is_current():
    count = len(list((ROOT / "tests" / "corpus").glob("*.yaml")))
    assert f"`tests/corpus/` holds {count} bad configs" in README


def cli_rows() -> dict[str, str]:
    table = _section("## The command line")
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `archgen (\w+)[^\n]*", table, re.M)}


def test_the_command_table_has_every_command_option_and_choice():
    from archgen.cli import COMMANDS, _parser

    rows = cli_rows()
    assert sorted(rows) == sorted(COMMANDS)
    for command in COMMANDS:
        usage = re.split(r"(?<!\\)\|", rows[command])[1]
        words = set(re.findall(r"[\w+-]+", usage.replace("\\|", " ")))
        for action in _parser(command)._actions:
            if not action.option_strings or action.dest == "help" or command == "schema":
                continue
            assert set(action.option_strings) & words, f"archgen {command}: {action.option_strings[-1]} is not in the table"
            missing = sorted(str(c) for c in action.choices or () if str(c) not in words)
            assert not missing, f"archgen {command} {action.option_strings[-1]}: {missing} not in the table"


def test_the_build_sweep_at_the_top_says_what_it_writes():
    """6 variants of the seed U-Net, each a .keras file of its float32 weights (and ~130 kB)."""
    line = next(line for line in README.splitlines() if line.startswith("archgen build") and " -m " in line)
    match = re.search(r"-m (encoder\.depth=\S+) (encoder\.filters=\S+) +# Hydra sweep: (\d+) models, (\d+) MiB$", line)
    assert match, line
    (dk, depths), (fk, filters) = (g.split("=") for g in match.groups()[:2])
    weights = sum(archgen.plan(ROOT / "conf" / "unet.yaml", [f"{dk}={d}", f"{fk}={f}"]).total_params * 4
                  for d in depths.split(",") for f in filters.split(","))
    assert int(match.group(3)) == len(depths.split(",")) * len(filters.split(","))
    assert abs(weights / 2**20 - int(match.group(4))) < 0.01 * weights / 2**20
