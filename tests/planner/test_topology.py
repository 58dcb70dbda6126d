"""UNet++ and UNet 3+ planned without Keras: nodes, channels, crops, legal sizes, errors."""

from __future__ import annotations

import pytest

from archgen.errors import ArchgenError, PlanError
from archgen.planner import make_plan
from archgen.planner.build import size_rules
from archgen.config import validate
from archgen.config.resolve import resolve, resolved_data


def config(topology: str, ndim: int = 2, size=None, padding: str = "valid", depth: int = 3, **decoder) -> dict:
    shape = [size] * ndim if size else [None] * ndim
    return {"name": "t", "input": {"shape": [*shape, 1]}, "padding": padding,
            "encoder": {"depth": depth, "filters": 4},
            "decoder": {"type": topology, **decoder}, "heads": [{"name": "y", "filters": 2}]}


def plan_at(cfg: dict, n: int):
    ndim = len(cfg["input"]["shape"]) - 1
    return make_plan(validate({**cfg, "input": {"shape": [n] * ndim + [1]}}))


def concat_inputs_agree(plan) -> None:
    for layer in plan.layers:
        if layer.kind == "concat":
            sizes = {plan.layer(i).shape[:-1] for i in layer.inputs}
            assert len(sizes) == 1, (layer.name, sizes)


@pytest.mark.parametrize("topology", ["unet++", "unet3+"])
@pytest.mark.parametrize("variant", [{}, {"kernel": 5}, {"factor": 3}])
def test_legal_sizes_match_brute_force(topology, variant):
    """Valid padding, 1D: every size from 1 to 500 plans exactly when the derived rule says so, every
    node's inputs are cropped to one size, and the output is where the rule puts it."""
    cfg = config(topology, ndim=1)
    if "kernel" in variant:
        cfg["encoder"]["block"] = {"kernel_size": variant["kernel"]}
    if "factor" in variant:
        cfg["encoder"]["depth"] = 2
        cfg["encoder"]["downsample"] = {"factor": 3}
        cfg["decoder"]["upsample"] = {"type": "resize" if topology == "unet3+" else "transpose", "factor": 3}
    (rule,) = size_rules(validate(cfg))
    assert rule is not None
    legal = []
    for n in range(1, 501):
        try:
            plan = plan_at(cfg, n)
        except PlanError:
            continue
        legal.append(n)
        concat_inputs_agree(plan)
        assert plan.output_shapes["y"] == (rule.output_size("y", n), 2)
    assert legal == [n for n in range(1, 501) if rule.is_legal(n)]
    assert len(legal) >= 5


@pytest.mark.parametrize("topology", ["unet++", "unet3+"])
@pytest.mark.parametrize("ndim", [2, 3])
def test_valid_padding_in_2d_and_3d(topology, ndim):
    cfg = config(topology, ndim=ndim, depth=2)
    (rule, *_) = size_rules(validate(cfg))
    for n in rule.smallest(2):
        plan = plan_at(cfg, n)
        concat_inputs_agree(plan)
        crops = [layer for layer in plan.layers if layer.kind == "crop"]
        assert crops and all(len(layer.attrs["cropping"]) == ndim for layer in crops)
        assert plan.output_shapes["y"] == (*[rule.output_size("y", n)] * ndim, 2)


def test_same_padding_needs_no_crop():
    for topology in ("unet++", "unet3+"):
        plan = make_plan(validate(config(topology, size=64, padding="same")))
        assert not [layer for layer in plan.layers if layer.kind == "crop"]
        assert plan.output_shapes["y"] == (64, 64, 2)


def test_unet_plus_nodes_and_channels():
    plan = make_plan(validate(config("unet++", size=64, padding="same")))
    groups = {layer.group for layer in plan.layers}
    nested = {f"x{i}_{j}" for j in range(1, 4) for i in range(4 - j)}
    assert nested <= groups and not any(g.startswith("dec") for g in groups)
    # x{i}_{j} concatenates the up-sampled node below (the row's filters) and j nodes of its row.
    filters = [4, 8, 16]
    for name in nested:
        i, j = map(int, name[1:].split("_"))
        assert plan.layer(f"{name}_concat").shape[-1] == (j + 1) * filters[i]
    assert plan.layer("y").inputs == ("x0_3_conv2",)  # the top nested node feeds the head


def test_unet_3plus_inputs_and_channels():
    plan = make_plan(validate(config("unet3+", size=64, padding="same", depth=4)))
    # Level L reads depth + 1 inputs: skips 1..L and levels L+1..depth with the bottleneck.
    for level in range(1, 5):
        concat = plan.layer(f"dec{level}_concat")
        assert len(concat.inputs) == 5 and concat.shape[-1] == 5 * 4  # cat_channels = level 1's filters
        assert plan.layer(f"dec{level}_conv1").shape[-1] == 20  # fused to cat_channels x inputs
    pools = [layer for layer in plan.layers if layer.kind == "maxpool" and layer.group == "dec4"]
    assert sorted(layer.attrs["factor"] for layer in pools) == [2, 4, 8]
    ups = [layer for layer in plan.layers if layer.kind == "upsample" and layer.group == "dec1"]
    assert sorted(layer.attrs["factor"] for layer in ups) == [2, 4, 8, 16]
    # Fewer skip levels: fewer inputs, and the short form's filters follow.
    plan = make_plan(validate(config("unet3+", size=64, padding="same", depth=4, skips=[2, 3, 4], cat_channels=3)))
    assert len(plan.layer("dec1_concat").inputs) == 4 and plan.layer("dec1_conv1").shape[-1] == 12


def test_deep_supervision_outputs():
    plus = make_plan(validate(config("unet++", size=64, padding="same", deep_supervision=True)))
    assert list(plus.outputs) == ["y", "y_x0_1", "y_x0_2"]
    three = make_plan(validate(config("unet3+", size=64, padding="same", deep_supervision=True)))
    assert list(three.outputs) == ["y", "y_dec2", "y_dec3", "y_dec4"]
    assert all(shape == (64, 64, 2) for shape in three.output_shapes.values())


def test_resolved_form_round_trips():
    for topology in ("unet++", "unet3+"):
        spec = validate(config(topology, size=64, padding="same"))
        data = resolved_data(spec)
        assert data["decoder"]["type"] == topology
        again = validate(data)
        assert resolved_data(again) == data
        assert make_plan(again).total_params == make_plan(spec).total_params
    assert resolve(validate(config("unet3+", size=64))).decoder.upsample.interpolation == "bilinear"


@pytest.mark.parametrize("topology, decoder, path", [
    ("unet++", {"skips": [1, 2]}, "decoder.skips"),
    ("unet++", {"merge": {"type": "add"}}, "decoder.merge.type"),
    ("unet3+", {"align": "pad"}, "decoder.align"),
    ("unet3+", {"align": ["crop", "resize", "crop"]}, "decoder.align[1]"),
    ("unet3+", {"upsample": {"type": "transpose", "conv_first": True}}, "decoder.upsample.conv_first"),
])
def test_bad_combinations_name_the_key(topology, decoder, path):
    with pytest.raises(PlanError) as info:
        make_plan(validate(config(topology, size=64, padding="same", **decoder)))
    assert info.value.path == path


def test_bilinear_outside_2d_is_refused():
    with pytest.raises(PlanError) as info:
        make_plan(validate(config("unet3+", ndim=3, size=16, padding="same", depth=2,
                                  upsample={"type": "resize", "interpolation": "bilinear"})))
    assert info.value.path == "decoder.upsample.interpolation"


def test_deep_supervision_needs_a_topology():
    with pytest.raises(ArchgenError) as info:
        validate(config("unet", size=64, deep_supervision=True))
    assert "decoder" in info.value.render() and "unet++" in info.value.render()


def test_deep_supervision_name_clash_names_the_head():
    cfg = config("unet3+", size=64, padding="same", deep_supervision=True)
    cfg["heads"] = [{"name": "y", "filters": 2}, {"name": "y_dec2_up", "filters": 2, "level": 2}]
    with pytest.raises(PlanError) as info:
        make_plan(validate(cfg))
    assert info.value.path == "heads[0].name" and "y_dec2_up" in info.value.render()
    cfg = config("unet++", size=64, padding="same", deep_supervision=True)
    cfg["heads"] = [{"name": "y", "filters": 2, "level": 2}]
    with pytest.raises(PlanError) as info:
        make_plan(validate(cfg))
    assert info.value.path == "decoder.deep_supervision"


def test_interpolate_up_sampling_under_both_topologies():
    """Interpolate has no learned layer: UNet++'s nodes concatenate the deeper node's own channels;
    UNet 3+ resizes with its interpolation, as it does with resize."""
    up = {"type": "interpolate", "interpolation": "bilinear"}
    plan = make_plan(validate(config("unet++", size=64, padding="same", upsample=up)))
    assert plan.layer("x0_1_up").kind == "upsample" and plan.layer("x0_1_up").shape[-1] == 8  # x1_0's channels
    assert plan.layer("x0_1_concat").shape[-1] == 4 + 8
    plan = make_plan(validate(config("unet3+", size=64, padding="same", upsample=up)))
    ups = [layer for layer in plan.layers if layer.kind == "upsample" and layer.group == "dec1"]
    assert ups and all(layer.attrs["interpolation"] == "bilinear" for layer in ups)
