"""The training sections in the rest of the tooling: the canonical form, the plan, the schema."""

from __future__ import annotations

import archgen
from archgen.config.resolve import resolved_yaml
from tests.conftest import CONF, ROOT

EXAMPLE = ROOT / "examples" / "train" / "shapes.yaml"


def test_the_canonical_form_keeps_the_sections_a_config_sets_and_adds_none():
    assert "train" not in resolved_yaml(archgen.load(CONF / "unet.yaml"))
    spec = archgen.load(EXAMPLE)
    again = archgen.load(resolved_yaml(spec))
    assert (again.train, again.data, again.augment) == (spec.train, spec.data, spec.augment)


def test_the_sections_change_nothing_in_the_network():
    with_sections = archgen.plan(EXAMPLE)
    without = archgen.plan(EXAMPLE, ["~train", "~data", "~augment"])
    assert with_sections.layers == without.layers


def test_a_loss_by_name_and_by_mapping_are_one():
    by_name = archgen.load(EXAMPLE, ["train.loss=dice"]).train.loss
    assert by_name == archgen.load(EXAMPLE, ["train.loss={type: dice}"]).train.loss
