"""Fuzzing: mutated configs and raw bytes never crash archgen: exit 0, or 2 with one message.

CI runs a few hundred cases; ``ARCHGEN_FUZZ_EXAMPLES=10000 pytest tests/test_fuzz.py`` runs more.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archgen.config.load import read_config_file
from tests.conftest import CONF

EXAMPLES = int(os.environ.get("ARCHGEN_FUZZ_EXAMPLES", "300"))
BASES = [read_config_file(p) for p in sorted(CONF.glob("*.yaml"))]

hostile = st.one_of(
    st.integers(-(10**6), 10**6), st.sampled_from([0, -1, 2**63, 10**30]), st.floats(allow_nan=True),
    st.none(), st.booleans(), st.text(max_size=30), st.text(min_size=500, max_size=2000),
    st.sampled_from(["", "relu", "valid", "same", "crop", "${oc.env:HOME}", "${nope}", "!!python/name:os.system",
                     "_target_", "ünïcödé", "\x00"]),
    st.lists(st.integers(-3, 600), max_size=6), st.builds(list), st.builds(dict),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
    st.recursive(st.integers(), lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                 max_leaves=20),
)


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*prefix, i))


@st.composite
def mutated(draw):
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(list(paths(data))))
        action = draw(st.sampled_from(["set", "set", "delete", "add"]))
        if not target:
            if action == "add":
                data[draw(st.text(min_size=1, max_size=12))] = draw(hostile)
            continue
        parent = data
        for part in target[:-1]:
            parent = parent[part]
        key = target[-1]
        if action == "delete":
            del parent[key]
        elif action == "add" and isinstance(parent[key], dict):
            parent[key][draw(st.sampled_from(["dept", "filter", "type", "_target_", "extra", "level"]))] = draw(hostile)
        else:
            parent[key] = draw(hostile)
    return data


def run(cli, tmp_path, text: bytes, *extra: str):
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(text)
    code, out, err = cli("validate", path, *extra)
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith("error: ") and out == ""
    return code


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutated())
def test_mutated_configs(cli, tmp_path_factory, data):
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode("utf-8")
    run(cli, tmp_path_factory.mktemp("fuzz"), text)


@settings(max_examples=max(EXAMPLES // 3, 10), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8")),
                     st.sampled_from([b"", b"\xff\xfe", b"a: &x [*x]\n", b"a: 1\na: 2\n", b"<<: {a: 1}\n",
                                      b"- " * 500, b"{" * 200, b"a: !!binary aGVsbG8=\n"])))
def test_raw_bytes(cli, tmp_path_factory, raw):
    run(cli, tmp_path_factory.mktemp("raw"), raw)


@settings(max_examples=max(EXAMPLES // 3, 10), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(override=st.one_of(st.text(max_size=40), st.sampled_from(
    ["encoder.depth=", "=3", "encoder..depth=3", "+encoder=3", "~input", "heads.0=5", "input.shape=[", "a=${b}",
     "encoder.depth=${oc.env:HOME}", "hydra.run.dir=/", "encoder.depth=range(1,3)"])))
def test_hostile_overrides(cli, tmp_path_factory, override):
    text = (CONF / "unet_same.yaml").read_bytes()
    run(cli, tmp_path_factory.mktemp("ov"), text, override)


# Configs that try to reach Hydra, climb out of their folder, or blow up: never more than exit 2.
reach = st.one_of(
    st.fixed_dictionaries({"hydra": st.sampled_from([
        {"callbacks": {"a": {"_target_": "pathlib.Path.touch", "_args_": ["PWNED"]}}},
        {"output_subdir": "/tmp"}, {"job_logging": {"handlers": {"f": {"class": "logging.FileHandler",
                                                                       "filename": "PWNED", "mode": "w"}}}},
        {"sweeper": {"params": {"encoder.depth": "range(0,1000000000)"}}}, None, 1, []])}),
    st.fixed_dictionaries({"defaults": st.lists(st.one_of(
        st.sampled_from(["_self_", "/../x", "../x", "hydra/launcher/joblib", "x@hydra.callbacks", "${a}",
                         "a/../../b", "./x", "/hydra/help/default", "x@_global_.hydra"]),
        st.dictionaries(st.sampled_from(["override hydra/launcher", "hydra/job_logging", "/../x@hydra.job.env_set",
                                         "g@hydra", "optional hydra/x", "x y z", "g"]),
                        st.one_of(st.none(), st.sampled_from(["joblib", "../x", "${a}", "hydra"]),
                                  st.lists(st.sampled_from(["a", "..", "hydra"]), max_size=2)),
                        min_size=1, max_size=1),
        st.integers(), st.none()), max_size=4)}),
    st.fixed_dictionaries({"name": st.sampled_from(["${hydra:runtime.cwd}", "${oc.decode:'[1]'}", "${now:%H}",
                                                    "${${a}}", "\\${x}", "${oc.create:{}}", "\x1b[2J[red]x",
                                                    "${name}", "${.name}", "${..x}"])}),
)


@settings(max_examples=max(EXAMPLES // 3, 10), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.sampled_from(BASES), extra=reach)
def test_configs_that_reach_for_hydra(cli, tmp_path_factory, base, extra):
    folder = tmp_path_factory.mktemp("reach")
    text = yaml.safe_dump({**base, **extra}, allow_unicode=True, sort_keys=False).encode("utf-8")
    for command in (("validate",), ("summary", "-m", "-q", "encoder.depth=1,2", f"hydra.sweep.dir={folder / 's'}")):
        path = folder / "fuzz.yaml"
        path.write_bytes(text)
        code, out, err = cli(command[0], path, *command[1:])
        assert code in (0, 1, 2), err
        assert "Traceback" not in err and "\x1b" not in out + err
        if code == 2:
            assert err.startswith("error: ") and err.count("\nerror: ") == 0
        if "hydra" in extra or any("hydra" in str(e) or ".." in str(e) for e in extra.get("defaults", []) or []):
            assert code == 2, (extra, out, err)
    assert not list(folder.rglob("PWNED")) and not list(Path.cwd().glob("PWNED"))
