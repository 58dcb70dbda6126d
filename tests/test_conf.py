"""Every example in conf/ is valid, points at the schema, and the schema file is current."""

from __future__ import annotations

import pytest

from archgen.planner import make_plan
from archgen.config import load_spec
from archgen.config.schema import SCHEMA_FILE, schema_json
from tests.conftest import CONF, ROOT

CONFIGS = sorted(CONF.glob("*.yaml"))


def test_there_are_examples():
    assert {"unet.yaml", "unet_same.yaml", "encoder_decoder.yaml"} <= {p.name for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_plans(path):
    plan = make_plan(load_spec(path))
    assert plan.total_params > 0
    assert path.read_text().startswith("# yaml-language-server: $schema=../" + SCHEMA_FILE)


def test_schema_file_is_current():
    assert (ROOT / SCHEMA_FILE).read_text() == schema_json(), "run: archgen schema > " + SCHEMA_FILE


def test_same_padding_example_keeps_size():
    plan = make_plan(load_spec(CONF / "unet_same.yaml"))
    assert plan.output_shapes["logits"][:2] == plan.input_shape[:2]


def test_encoder_decoder_example_has_no_skips_and_rgb_out():
    plan = make_plan(load_spec(CONF / "encoder_decoder.yaml"))
    assert not [layer for layer in plan.layers if layer.kind in ("crop", "concat")]
    assert plan.input_shape[-1] == 3
    assert plan.output_shapes == {"rgb": (*plan.input_shape[:2], 3)}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_archgen_reads_a_file_as_omegaconf_and_hydra_do(path):
    """archgen reads files itself; the data must be what OmegaConf reads and Hydra composes."""
    from omegaconf import OmegaConf

    from archgen.config.load import hydra_compose, read_config_file, resolve

    data = read_config_file(path)
    assert data == OmegaConf.to_container(OmegaConf.load(path))
    assert resolve(hydra_compose(data, [], path.parent)) == data
