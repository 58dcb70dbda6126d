"""Every entry point of the Python API runs the config file's guard before any resolver runs,
and archgen leaves OmegaConf as it found it for the host process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

import archgen
from archgen.errors import SpecError
from tests.conftest import ROOT

MODEL = {"input": {"shape": [32, 32, 1]}, "encoder": {"depth": 1, "filters": 4},
         "heads": [{"name": "logits", "filters": 2}]}


@pytest.fixture(autouse=True)
def no_env_permission(monkeypatch):
    monkeypatch.delenv("ARCHGEN_ALLOW_ENV", raising=False)
    monkeypatch.setenv("ARCHGEN_TEST_SECRET", "s3cr3t")


def secret_model() -> dict:
    return {**MODEL, "name": "${oc.env:ARCHGEN_TEST_SECRET}"}


def bomb(levels: int = 30) -> dict:
    """Each level doubles the one below: 2**levels copies of a 1,000-character string."""
    node = {"a0": "x" * 1000}
    for i in range(1, levels):
        node[f"a{i}"] = f"${{.a{i - 1}}}${{.a{i - 1}}}"
    return node


@pytest.mark.parametrize("form", ["dict", "yaml", "dictconfig", "nested_dictconfig"])
def test_the_environment_is_not_read_into_a_model(form):
    if form == "dict":
        config = secret_model()
    elif form == "yaml":
        config = OmegaConf.to_yaml(OmegaConf.create(secret_model()))
    elif form == "dictconfig":
        config = OmegaConf.create(secret_model())
    else:
        config = OmegaConf.create({"app": {"model": secret_model()}}).app.model
    with pytest.raises(SpecError, match=r"oc.env.*ARCHGEN_ALLOW_ENV") as caught:
        archgen.plan(config)
    assert "s3cr3t" not in str(caught.value)
    if form == "nested_dictconfig":
        assert caught.value.path == "app.model.name"


def test_the_environment_through_a_reference_outside_the_node_is_refused():
    cfg = OmegaConf.create({"token": "${oc.env:ARCHGEN_TEST_SECRET}", "model": {**MODEL, "name": "${token}"}})
    with pytest.raises(SpecError, match="refers to token.*oc.env"):
        archgen.plan(cfg.model)


def test_the_environment_is_read_when_the_user_allows_it(monkeypatch):
    monkeypatch.setenv("ARCHGEN_ALLOW_ENV", "1")
    assert archgen.plan(OmegaConf.create(secret_model())).name == "s3cr3t"
    assert archgen.plan(secret_model()).name == "s3cr3t"


@pytest.mark.parametrize("where", ["inside", "outside"])
def test_an_interpolation_bomb_in_a_dictconfig_is_refused_unexpanded(where):
    if where == "inside":
        cfg = OmegaConf.create({"model": {**MODEL, "v": bomb(), "name": "${.v.a29}"}})
    else:
        cfg = OmegaConf.create({"v": bomb(), "model": {**MODEL, "name": "${v.a29}"}})
    with pytest.raises(SpecError, match="expands to more than 1,000,000"):
        archgen.plan(cfg.model)


def test_other_resolvers_in_a_dictconfig_are_refused():
    calls = []
    OmegaConf.register_new_resolver("archgen_test_probe", lambda: calls.append(1) or "x", replace=True)
    cfg = OmegaConf.create({"model": {**MODEL, "name": "${archgen_test_probe:}"}})
    with pytest.raises(SpecError, match="resolvers other than oc.env are refused"):
        archgen.plan(cfg.model)
    assert calls == []


def test_plain_references_in_a_dictconfig_still_resolve():
    cfg = OmegaConf.create({"size": 48, "model": {**MODEL, "input": {"shape": ["${size}", "${size}", 1]}}})
    assert archgen.plan(cfg.model).input_shape[:2] == (48, 48)


def test_the_host_keeps_its_own_resolvers():
    """After archgen has loaded configs (and refused one), the host app's ${oc.env:...} still resolves."""
    archgen.load("conf/unet.yaml", ["encoder.depth=3"])
    archgen.load(MODEL, ["encoder.depth=2"])
    with pytest.raises(SpecError):
        archgen.plan(secret_model())
    assert OmegaConf.create({"home": "${oc.env:ARCHGEN_TEST_SECRET}"}).home == "s3cr3t"


def test_a_hydra_app_refuses_the_environment_in_its_model(tmp_path):
    """The README's app, with a model file naming an environment variable: one line, exit 2."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "ARCHGEN_TEST_SECRET": "s3cr3t"}
    env.pop("ARCHGEN_ALLOW_ENV", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "hydra_app" / "app.py"), f"hydra.run.dir={tmp_path}",
         "model.name=${oc.env:ARCHGEN_TEST_SECRET}"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "model.name" in result.stderr and "oc.env" in result.stderr and "s3cr3t" not in result.stderr


def test_an_endless_iterator_of_overrides_is_refused_not_read_for_ever():
    import itertools

    import pytest

    import archgen
    from tests.conftest import CONF

    with pytest.raises(archgen.ArchgenError, match=r"^overrides=.*: holds more than 10,000 overrides"):
        archgen.load(CONF / "unet.yaml", itertools.repeat("encoder.depth=3"))
