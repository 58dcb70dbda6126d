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


def test_a_regression_metric_on_a_class_head_is_refused_where_it_is_set():
    import pytest

    from archgen.errors import SpecError

    with pytest.raises(SpecError) as refused:
        archgen.load(EXAMPLE, ["train.metrics=[dice,mae]"])
    assert refused.value.path == "train.metrics" and "mae and mse are for regression heads" in refused.value.message
    with pytest.raises(SpecError) as refused:
        archgen.load(EXAMPLE, ["+train.heads=[{name: logits, metrics: [mse]}]"])
    assert refused.value.path == "train.heads[0].metrics"
    assert archgen.load(EXAMPLE, ["train.metrics=[dice,iou_per_class]"]).train.metrics == ["dice", "iou_per_class"]


def test_a_loss_that_is_always_zero_and_a_run_past_the_step_bound_are_refused():
    import pytest

    from archgen.errors import SpecError

    with pytest.raises(SpecError, match="dice_weight and ce_weight are both 0"):
        archgen.load(EXAMPLE, ["train.loss={type: dice_ce, dice_weight: 0, ce_weight: 0}"])
    with pytest.raises(SpecError) as refused:
        archgen.load(EXAMPLE, ["~train.steps", "train.epochs=1000000", "train.steps_per_epoch=1000000"])
    assert refused.value.path == "train.epochs" and "a run has at most 1,000,000,000" in refused.value.message
    assert archgen.load(EXAMPLE, ["train.loss={type: dice_ce, dice_weight: 0}"]).train.loss.ce_weight == 1.0


def test_a_lone_heads_weight_scales_its_training_loss_as_its_validation_loss():
    import numpy as np
    import pytest

    from archgen.train.loop import build
    from archgen.train.setup import plan_training

    def loss_of(weight: float) -> float:
        spec = archgen.load(EXAMPLE, [f"+train.heads=[{{name: logits, weight: {weight}}}]"])
        model = build(plan_training(spec))
        x = np.random.default_rng(0).normal(size=(2, 64, 64, 1)).astype("float32")
        y = np.random.default_rng(1).integers(0, 3, size=(2, 64, 64)).astype("int32")
        return float(np.ravel(model.evaluate(x, y, verbose=0))[0])

    assert loss_of(2.0) == pytest.approx(2 * loss_of(1.0), rel=1e-5)
