"""Memory, FLOPs per batch and the memory-budget solver, planned without Keras."""

from __future__ import annotations

from math import prod

import pytest

from archgen.errors import ArchgenError
from archgen.planner import make_plan
from archgen.planner.cost import parse_bytes, plan_cost
from archgen.planner.fit import max_batch, max_size
from archgen.spec import load_spec
from tests.conftest import CONF

UNET = CONF / "unet.yaml"


@pytest.fixture(scope="module")
def unet():
    return make_plan(load_spec(UNET))


def test_memory_terms_follow_their_definitions(unet):
    one, eight = plan_cost(unet, 1), plan_cost(unet, 8, "bfloat16")
    elements = sum(prod(layer.shape) for layer in unet.layers)
    assert one.activation_bytes == elements * 4
    assert eight.activation_bytes == elements * 2 * 8
    assert one.weight_bytes == eight.weight_bytes == 31_030_658 * 4  # float32 variables either way
    assert one.training_bytes == 4 * one.weight_bytes + one.activation_bytes  # weights, grads, 2 Adam moments
    assert plan_cost(unet, 1, optimizer="sgd").training_bytes == 2 * one.weight_bytes + one.activation_bytes
    assert eight.flops == 8 * one.flops


def test_inference_peak_of_the_seed_unet(unet):
    """Build order keeps enc1's 568x568x64 skip alive until dec1: the peak is at enc1_conv2 or later."""
    peak = plan_cost(unet).inference_peak_bytes
    skip = 568 * 568 * 64 * 4
    assert skip + 284 * 284 * 64 * 4 <= peak < plan_cost(unet).activation_bytes


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


def test_summary_prints_costs_and_fit(cli):
    code, out, err = cli("summary", UNET, "--fit", "24GiB", "--batch", "2", "--dtype", "bfloat16")
    assert code == 0, err
    assert "receptive field 204" in out
    assert "training batch up to 62" in out
    assert "the largest legal input that fits" in out


def test_summary_json_carries_costs(cli):
    import json

    code, out, _ = cli("summary", UNET, "--json", "--fit", "24GiB")
    data = json.loads(out)
    assert data["cost"]["receptive_field"] == 204
    assert data["cost"]["flops"] == data["total_flops"] == 300_856_848_896
    assert data["fit"]["max_batch"] == 31
