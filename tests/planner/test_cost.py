"""Memory, FLOPs per batch and the memory-budget solver, planned without Keras."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest

from archgen.kinds import attrs_of
from archgen.errors import ArchgenError
from archgen.planner import make_plan
from archgen.planner.cost import (RUNTIME_BYTES, inference_peak_elements, layer_elements, parse_bytes, plan_cost,
                                  train_peak_elements)
from archgen.planner.ir import LayerPlan, Plan
from archgen.planner.profiles import CALIBRATED, DEFAULT, MemoryProfile
from archgen.planner.fit import max_batch, max_size
from archgen.config import load_spec
from tests.conftest import CONF
from tests.reference.seed_unet_counts import seed_unet_flops, seed_unet_params

UNET = CONF / "unet.yaml"

# The simulation with the kinds' own memory facts (a conv's two copies, a norm's kept copy and three
# temporaries), a conv at inference holding a copy of its input and (same-padded) of its output, every
# scale 1 and 200 MiB of runtime: what the counts by hand below follow. The calibrated profiles only
# choose among these facts and scale them (tests/planner/test_profiles.py).
BY_HAND = MemoryProfile("tensorflow", "cpu", CALIBRATED, inference_input_copies=Fraction(1),
                        inference_same_output_copies=Fraction(1))


@pytest.fixture(scope="module")
def unet():
    return make_plan(load_spec(UNET))


def test_memory_terms_follow_their_definitions(unet):
    for profile in (BY_HAND, DEFAULT):
        one, eight = plan_cost(unet, 1, profile=profile), plan_cost(unet, 8, "bfloat16", profile=profile)
        peak = train_peak_elements(unet, layer_elements(unet), profile)
        assert one.activation_bytes == int(peak * 4 * profile.activation_scale)
        # per sample, in the compute dtype, with the 16-bit scale
        assert eight.activation_bytes == int(peak * 2 * profile.activation_scale * profile.half_scale) * 8
        assert one.weight_bytes == eight.weight_bytes == seed_unet_params() * 4  # float32 variables either way
        # weights, grads, 2 Adam moments, the update's buffers, the runtime constant, the batch's share
        state = (4 + profile.update_buffers) * one.weight_bytes
        assert one.training_bytes == state + profile.runtime_bytes + one.activation_bytes
        sgd = plan_cost(unet, 1, optimizer="sgd", profile=profile)
        assert sgd.training_bytes == state - 2 * one.weight_bytes + profile.runtime_bytes + one.activation_bytes
        assert eight.flops == 8 * one.flops
    assert DEFAULT.runtime_bytes == RUNTIME_BYTES


def _tiny_plan():
    """input 4x4x1 -> 3x3 conv + relu to 4x4x2 (20 params) -> 2x2 max pool -> 1x1 conv head to 2x2x3 (9)."""
    conv = {"kernel": 3, "stride": 1, "dilation": 1, "padding": "same", "use_bias": True}
    layers = (
        LayerPlan("input", "input", (), (4, 4, 1), 0, 0, "input", attrs_of("input", {})),
        LayerPlan("c1", "conv", ("input",), (4, 4, 2), 20, 0, "encoder",
                  attrs_of("conv", {**conv, "filters": 2, "activation": "relu"})),
        LayerPlan("pool", "maxpool", ("c1",), (2, 2, 2), 0, 0, "encoder", attrs_of("maxpool", {"factor": 2})),
        LayerPlan("head", "conv", ("pool",), (2, 2, 3), 9, 0, "head",
                  attrs_of("conv", {**conv, "kernel": 1, "filters": 3, "activation": "linear"})),
    )
    return Plan(name="tiny", ndim=2, input_shape=(4, 4, 1), layers=layers, outputs={"logits": "head"},
                sizes=None, depth=1)


def test_memory_model_on_a_tiny_network_by_hand():
    """Elements: input 16, c1 32, pool 8, head 12 (one sample).

    Training, forward: the batch (16) stays; c1 (32) is kept (the pool and c1's ReLU read it),
    pool (8) is kept (the pool and the head's filter gradient read it), the head (12) plus the
    loss's two tensors (24): 92. Backward, head: labels go (80), pool's gradient (8) is made,
    and the conv's two copies (12 + 8) -> 88 + 20 = 108. Pool: c1's gradient (32): the head's
    gradient and output went (64), 64 + 32 = 96. c1: pool's gradient and pool went (80); the
    ReLU's gradient (32) and the copies (32 + 16): 80 + 80 = 160, the peak. No gradient for
    the input. Inference: c1 runs with the input alive, plus its copies: 16 + 32 + 48 = 96.
    """
    plan = _tiny_plan()
    elements = layer_elements(plan)
    assert train_peak_elements(plan, elements, BY_HAND) == 160
    assert inference_peak_elements(plan, elements) == 48  # nothing held while running: input + c1
    assert inference_peak_elements(plan, elements, profile=BY_HAND) == 96
    cost = plan_cost(plan, 3, profile=BY_HAND)
    assert cost.activation_bytes == 160 * 4 * 3
    assert cost.training_bytes == 29 * 4 * 4 + 200 * 2**20 + 160 * 4 * 3
    assert cost.inference_peak_bytes == 29 * 4 + 96 * 4 * 3
    assert plan_cost(plan, 3, "bfloat16", profile=BY_HAND).activation_bytes == 160 * 2 * 3


def test_inference_peak_of_the_seed_unet(unet):
    """Build order keeps enc1's 568x568x64 skip alive until dec1: the peak is at enc1_conv2 or later."""
    elements = layer_elements(unet)
    peak = inference_peak_elements(unet, elements) * 4
    skip = 568 * 568 * 64 * 4
    assert skip + 284 * 284 * 64 * 4 <= peak < sum(elements.values()) * 4
    # with a copy of a conv's input (valid padding: none of its output), the peak is at enc1_conv2:
    # enc1_conv1's output twice and its own
    with_copies = plan_cost(unet, profile=BY_HAND).inference_peak_bytes - plan_cost(unet).weight_bytes
    assert with_copies == (2 * 570 * 570 * 64 + 568 * 568 * 64) * 4


def test_max_batch_is_the_largest_that_fits(unet):
    budget = parse_bytes("24GiB")
    batch = max_batch(unet, budget)
    assert plan_cost(unet, batch).training_bytes <= budget < plan_cost(unet, batch + 1).training_bytes
    assert max_batch(unet, budget, "bfloat16") > batch


def test_max_size_is_the_largest_legal_size_that_fits():
    spec = load_spec(UNET)
    budget = parse_bytes("8GiB")
    best = max_size(spec, budget, batch=2)
    n = best.input_shape[0]
    assert best.sizes.is_legal(n)
    assert plan_cost(best, 2).training_bytes <= budget
    bigger = make_plan(load_spec(UNET, [f"input.shape=[{n + 16},{n + 16},1]"]))
    assert plan_cost(bigger, 2).training_bytes > budget
    assert max_size(spec, 1000, batch=1) is None


@pytest.mark.parametrize("text, value", [("24GiB", 24 * 2**30), ("16GB", 16 * 10**9), ("512MiB", 2**29),
                                         ("1.5gib", int(1.5 * 2**30)), ("1000", 1000)])
def test_parse_bytes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["", "GiB", "-1GiB", "12 parsecs", "0"])
def test_parse_bytes_refuses(text):
    with pytest.raises(ArchgenError, match="--fit"):
        parse_bytes(text)


def is_the_largest_batch_that_fits(plan, batch: int, budget: int, dtype: str = "float32") -> bool:
    """By the definition: the batch's training estimate fits and the next batch's does not."""
    return batch >= 1 and plan_cost(plan, batch, dtype).training_bytes <= budget \
        < plan_cost(plan, batch + 1, dtype).training_bytes


def test_summary_prints_costs_and_fit(cli, unet):
    code, out, err = cli("summary", UNET, "--fit", "24GiB", "--batch", "2", "--dtype", "bfloat16")
    assert code == 0, err
    # 204: by hand in tests/planner/test_receptive_field_scale.py, the gradient's extent in tests/emit/
    assert f"receptive field {plan_cost(unet).receptive_field} " in out
    batch = int(re.search(r"training batch up to (\d+) ", out).group(1))
    assert is_the_largest_batch_that_fits(unet, batch, parse_bytes("24GiB"), "bfloat16")
    assert "the largest legal input that fits" in out


def test_summary_json_carries_costs(cli, unet):
    import json

    code, out, _ = cli("summary", UNET, "--json", "--fit", "24GiB")
    data = json.loads(out)
    assert data["cost"]["receptive_field"] == plan_cost(unet).receptive_field
    assert data["cost"]["flops"] == data["total_flops"] == seed_unet_flops(572)
    assert is_the_largest_batch_that_fits(unet, data["fit"]["max_batch"], parse_bytes("24GiB"))
