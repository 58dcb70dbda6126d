"""Property: for random valid specs across every option, Keras builds exactly the plan.

1D/2D/3D, odd factors, non-square sizes, dynamic (null) sizes, every block, norm (instance,
affine, epsilon), activation (leaky_relu slope, prelu), down/up-sampling (strided first conv,
flooring pools), alignment, merge and head option, UNet++ and UNet 3+ decoders (valid padding
included, with their crops to the smallest input and deep supervision), and explicit stages with
per-stage filters, convs and blocks and per-axis kernels and strides; the PyTorch-style options
too (transposed convs with PyTorch's padding and a norm, skips joined before up-sampling, decoder
levels without convs, a plain last conv, heads without a conv, MONAI's residual unit and gate,
activation before norm); V-Net's (a repeated or first-conv or up-sampled shortcut, the sum
activated again, a stage's own add_at, a norm after the strided conv, a head's conv before its own,
per-level output_padding) and UNet 3+'s fusion norm; and tiny ViT (UNETR) and Swin (SwinUNETR)
encoders on the input. Invalid combinations must be refused by the planner with a dotted config path.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from archgen.errors import PlanError
from archgen.planner import make_plan
from archgen.planner.build import size_rules
from archgen.config import validate
from tests.emit.test_emit_plan_agree import assert_model_matches_plan
from tests.strategies import spec_dicts

keras = pytest.importorskip("keras")
from archgen.emit import emit_model  # noqa: E402

MAX_FIRST = {1: 2000, 2: 120, 3: 28}


@given(spec_dicts(), st.data())
def test_keras_model_equals_plan(config, data):
    check_keras_model_equals_plan(config, data)


@pytest.mark.slow
@settings(max_examples=100)
@given(spec_dicts(), st.data())
def test_keras_model_equals_plan_100_examples(config, data):
    """The same property over at least 100 drawn networks (CI runs the slow tests)."""
    check_keras_model_equals_plan(config, data)


def check_keras_model_equals_plan(config, data):
    spec = validate(config)
    note(str(config))
    try:
        rules = size_rules(spec)
    except PlanError as exc:  # e.g. group norm on a channel count it does not divide
        assert exc.path and exc.render().startswith(exc.path)
        assume(False)
    if all(rule is None for rule in rules):
        # flooring pools without padding back: legal sizes may be two progressions (n = 4k or 4k + 1);
        # so may a swin's patch merging, which pads an odd size (n = 8k or 8k + 6)
        assume(config["encoder"].get("downsample", {}).get("odd_sizes") != "floor")
        assume(config["encoder"].get("type") != "swin")
        with pytest.raises(PlanError) as info:
            make_plan(validate({**config, "input": {"shape": [64] * spec.ndim + config["input"]["shape"][-1:]}}))
        assert info.value.path == "input.shape"
        assume(False)
    assume(all(rule is not None and rule.first <= MAX_FIRST[spec.ndim] for rule in rules))

    steps = data.draw(st.lists(st.integers(0, 1 if spec.ndim < 3 else 0), min_size=spec.ndim, max_size=spec.ndim))
    sizes = [rule.first + rule.period * j for rule, j in zip(rules, steps)]
    channels = config["input"]["shape"][-1]
    plan = make_plan(validate({**config, "input": {"shape": [*sizes, channels]}}))
    model = emit_model(plan)
    assert_model_matches_plan(model, plan)

    x = np.random.default_rng(0).normal(size=(1, *sizes, channels)).astype("float32")
    ys = model(x)
    ys = ys if isinstance(ys, (list, tuple)) else [ys]
    for (head, shape), y in zip(plan.output_shapes.items(), ys):
        assert tuple(y.shape[1:]) == shape
        assert list(shape[:-1]) == [rule.output_size(head, n) for rule, n in zip(rules, sizes)]
        assert np.isfinite(np.asarray(y)).all()

    if data.draw(st.booleans(), label="dynamic"):
        try:
            open_plan = make_plan(spec)
        except PlanError as exc:  # a resize or a size-dependent crop needs fixed sizes
            assert exc.path.startswith("input.shape")
            return
        open_model = emit_model(open_plan)
        assert_model_matches_plan(open_model, open_plan)
        ys = open_model(x)
        ys = ys if isinstance(ys, (list, tuple)) else [ys]
        assert [tuple(y.shape[1:]) for y in ys] == list(plan.output_shapes.values())


# --- every registered layer kind is drawn ----------------------------------------------------------

# Backbones are keras.applications models: tests/backbones builds every row (too slow to draw here).
NOT_DRAWN = {"backbone", "tap"}


def concrete_plan(config: dict):
    """The plan of a drawn config at its smallest legal size, or None where the property test
    would have skipped it."""
    spec = validate(config)
    try:
        rules = size_rules(spec)
    except PlanError:
        return None
    if any(rule is None or rule.first > MAX_FIRST[spec.ndim] for rule in rules):
        return None
    sizes = [rule.first for rule in rules]
    return make_plan(validate({**config, "input": {"shape": [*sizes, config["input"]["shape"][-1]]}}))


def test_the_registry_and_the_drawn_kinds_name_the_same_backbone_kinds():
    from archgen.kinds import KINDS

    assert NOT_DRAWN <= set(KINDS)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(set(__import__("archgen.kinds", fromlist=["KINDS"]).KINDS) - NOT_DRAWN))
def test_every_registered_kind_is_drawn_and_built_as_planned(kind):
    """The strategy can draw every kind the registry knows (a kind it never draws fails here), and
    a drawn network holding it builds layer for layer as planned."""
    from hypothesis import find, settings

    def holds_kind(config: dict) -> bool:
        plan = concrete_plan(config)
        return plan is not None and any(layer.kind == kind for layer in plan.layers)

    config = find(spec_dicts(), holds_kind, settings=settings(max_examples=3000, database=None, deadline=None))
    plan = concrete_plan(config)
    assert_model_matches_plan(emit_model(plan), plan)
