"""The seed U-Net planned without Keras: every number derived, none stored."""

from __future__ import annotations

import subprocess
import sys

import pytest

from archgen.errors import PlanError
from archgen.planner import make_plan
from archgen.config import load_spec
from tests.conftest import CONF, ROOT
from tests.reference.seed_unet_counts import conv_params, seed_unet_output, seed_unet_params

UNET = CONF / "unet.yaml"


@pytest.fixture(scope="module")
def unet():
    return make_plan(load_spec(UNET))


def test_seed_unet_totals(unet):
    assert unet.total_params == seed_unet_params()  # counted by hand from the layers
    assert unet.input_shape == (572, 572, 1)
    assert unet.output_shapes == {"logits": (388, 388, 2)}  # the paper's Fig. 1
    assert [layer.params for layer in unet.layers[1:3]] == [conv_params(3, 1, 64), conv_params(3, 64, 64)]


def test_seed_unet_crops_deepest_first(unet):
    crops = [layer.attrs["cropping"] for layer in unet.layers if layer.kind == "crop"]
    assert [layer.name for layer in unet.layers if layer.kind == "crop"] == [
        "dec4_crop", "dec3_crop", "dec2_crop", "dec1_crop"]
    assert crops == [((c, c), (c, c)) for c in (4, 16, 40, 88)]


def test_seed_unet_layer_names(unet):
    names = [layer.name for layer in unet.layers]
    for expected in ("enc1_conv1", "enc1_pool", "bottleneck_conv2", "dec1_up", "dec1_crop", "dec1_concat",
                     "logits"):
        assert expected in names
    assert len(names) == len(set(names))


def test_legal_sizes_are_derived(unet):
    """The rule gives the sizes the paper's network takes, walked by hand, and their outputs."""
    rule = unet.sizes
    hand = [n for n in range(1, 1001) if seed_unet_output(n)]
    assert [rule.period * k + rule.offset for k in range(rule.k_min, rule.k_min + len(hand))
            if rule.period * k + rule.offset <= 1000] == hand
    assert rule.describe("H") == f"H = {rule.period}k + {rule.offset}, k >= {rule.k_min}" == "H = 16k + 60, k >= 8"
    assert {n - seed_unet_output(n) for n in hand} == {572 - 388}
    assert rule.describe_output("logits", "H") == "H - 184"


def test_legal_sizes_match_brute_force():
    """Every size from 1 to 700 plans exactly when the paper's network takes it (walked by hand),
    with the hand walk's output, input - 184."""
    spec = load_spec(UNET)
    legal = []
    for n in range(1, 701):
        try:
            plan = make_plan(spec.model_copy(update={"input": spec.input.model_copy(update={"shape": [n, n, 1]})}))
        except PlanError:
            continue
        legal.append(n)
        assert plan.output_shapes["logits"] == (seed_unet_output(n), seed_unet_output(n), 2) == (n - 184, n - 184, 2)
    assert legal == [n for n in range(1, 701) if seed_unet_output(n)] == list(range(188, 701, 16))


def test_illegal_size_names_nearest_sizes():
    with pytest.raises(PlanError) as info:
        make_plan(load_spec(UNET, ["input.shape=[570,570,1]"]))
    text = info.value.render()
    assert text.startswith("input.shape=[570, 570, 1]: ")
    assert "enc2_pool gets 279" in text
    assert "556 (output 372), 572 (output 388)" in text
    assert "H = 16k + 60, k >= 8" in text


def test_nearest_sizes_stay_within_what_a_config_may_ask_for():
    """Near the config's bound on a size, the suggestions are legal sizes a config can take."""
    from archgen.config.fields import Size
    from archgen.planner.ir import LARGEST_SIZE

    assert LARGEST_SIZE == next(m.le for m in Size.__metadata__[0].metadata if hasattr(m, "le"))
    rule = make_plan(load_spec(UNET, ["input.shape=[572,572,1]"])).sizes
    for n in (LARGEST_SIZE - 20, LARGEST_SIZE - 1, LARGEST_SIZE):
        nearest = rule.nearest(n)
        assert nearest and all(m <= LARGEST_SIZE and rule.is_legal(m) for m in nearest)


def test_too_small_size_is_refused():
    with pytest.raises(PlanError, match="nearest: 188 \\(output 4\\), 204"):
        make_plan(load_spec(UNET, ["input.shape=[100,100,1]"]))


def test_non_square_axes_are_solved_apart():
    plan = make_plan(load_spec(UNET, ["input.shape=[572,188,1]"]))
    assert plan.output_shapes["logits"] == (388, 4, 2)
    with pytest.raises(PlanError, match="on axis W"):
        make_plan(load_spec(UNET, ["input.shape=[572,190,1]"]))


@pytest.mark.parametrize("depth, size, out", [(3, 568, 568), (4, 512, 512), (5, 64, 64)])
def test_same_padding_keeps_size(depth, size, out):
    plan = make_plan(load_spec(UNET, [f"encoder.depth={depth}", "padding=same", f"input.shape=[{size},{size},1]"]))
    assert plan.output_shapes["logits"] == (out, out, 2)
    assert all(layer.attrs["cropping"] == ((0, 0), (0, 0)) for layer in plan.layers if layer.kind == "crop")
    assert plan.sizes.describe() == f"n = {2**depth}k, k >= 1"


def test_filters_double_per_level_unless_listed():
    plan = make_plan(load_spec(UNET, ["encoder.depth=3", "encoder.filters=16", "padding=same",
                                      "input.shape=[64,64,1]"]))
    assert [plan.layer(f"enc{i}_conv1").shape[-1] for i in (1, 2, 3)] == [16, 32, 64]
    assert plan.layer("bottleneck_conv1").shape[-1] == 128
    listed = make_plan(load_spec(UNET, ["encoder.depth=2", "encoder.filters=[8,12,20]", "padding=same",
                                        "input.shape=[64,64,1]"]))
    assert [listed.layer(n).shape[-1] for n in ("enc1_conv1", "enc2_conv1", "bottleneck_conv1")] == [8, 12, 20]


def test_planner_never_imports_tensorflow():
    code = ("import sys; from archgen.config import load_spec; from archgen.planner import make_plan; "
            "from archgen.report.summary import print_summary; from archgen.report.data import plan_to_dict; "
            "from archgen.cli import main; "
            f"main(['summary', {str(UNET)!r}]); main(['summary', {str(UNET)!r}, '--json']); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'jax', 'torch')]; "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_crops_and_pads_of_nothing_are_not_layers():
    same = make_plan(load_spec(CONF / "unet_same.yaml"))
    assert not [layer for layer in same.layers if layer.kind in ("crop", "pad")]
    assert same.layer("dec1_concat").inputs == ("dec1_up", "enc1_conv2")  # the skip joins directly
    residual = make_plan(load_spec(CONF / "unet_bn_residual.yaml"))
    assert not [layer for layer in residual.layers if layer.kind == "crop"]
    valid = make_plan(load_spec(CONF / "unet.yaml"))
    assert [layer.name for layer in valid.layers if layer.kind == "crop"] == [
        "dec4_crop", "dec3_crop", "dec2_crop", "dec1_crop"]
