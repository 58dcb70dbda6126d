"""Tiling is exact or says it is not: layers that read the whole map (instance and group norm,
squeeze-and-excitation, self-attention) make every output pixel depend on the whole tile.

The oracle is one pass of the model over the whole mirror-padded image (image sizes are chosen
so that the padded image is a size the model takes).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import archgen
from archgen.tiling import (ApproximateTilingWarning, legal_at_least, mirror_pad, output_margins, plan_geometry,
                            predict_tiled)

BASE = ["encoder.depth=2", "encoder.filters=4", "input.shape=[null,null,1]"]
BLOCKS = {
    "instance": ["encoder.block.norm=instance"],
    "group": ["encoder.block.norm=group", "encoder.block.groups=2"],
    "se": ["+encoder.block.se={ratio: 2}"],
    "batch": ["encoder.block.norm=batch"],
    "layer": ["encoder.block.norm=layer"],  # archgen's layer norm: each pixel over its channels
    "plain": [],
    "residual": ["encoder.block.type=residual", "encoder.block.norm=batch"],
}
WHOLE_MAP = {"instance", "group", "se"}


def setup(kind: str, padding: str, rough: tuple[int, int] = (190, 171)):
    overrides = [*BASE, f"padding={padding}", *BLOCKS[kind]]
    plan = archgen.plan("conf/unet.yaml", overrides)
    model = archgen.build_model("conf/unet.yaml", overrides)
    geo = plan_geometry(plan)
    margins = output_margins(plan)
    size = [legal_at_least(geo.rules[a], rough[a]) - sum(margins[a]) for a in range(2)]
    image = np.random.default_rng(1).random((*size, 1)).astype(np.float32)
    return plan, model, image, margins


def predict(model, image, plan, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = predict_tiled(model, image, plan=plan, **options)
    return out, [w for w in caught if issubclass(w.category, ApproximateTilingWarning)]


@pytest.mark.parametrize("kind", sorted(BLOCKS))
def test_plan_says_which_layers_read_the_whole_map(kind):
    plan = archgen.plan("conf/unet.yaml", [*BASE, "padding=valid", *BLOCKS[kind]])
    geo = plan_geometry(plan)
    assert bool(geo.whole_map) == (kind in WHOLE_MAP)
    if kind in WHOLE_MAP:
        assert not geo.exact


@pytest.mark.parametrize("kind", sorted(BLOCKS))
def test_valid_padding_tiles_are_exact_or_warned(kind):
    plan, model, image, margins = setup(kind, "valid")
    reference = model.predict_on_batch(mirror_pad(image[None], margins))[0]
    tiled, warned = predict(model, image, plan, tile_size=60)
    if kind in WHOLE_MAP:
        assert warned and "read(s) the whole map" in str(warned[0].message) and "approximate" in str(warned[0].message)
        assert plan.layers[0].name not in ("",)  # the message names layers of the plan
        assert any(layer.name in str(warned[0].message) for layer in plan.layers)
    else:
        assert not warned
        np.testing.assert_allclose(tiled, reference, atol=1e-4 if kind == "layer" else 1e-5)


@pytest.mark.parametrize("kind", sorted(WHOLE_MAP))
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_whole_map_networks_run_in_one_exact_pass_by_default(kind, padding):
    plan, model, image, margins = setup(kind, padding)
    reference = model.predict_on_batch(mirror_pad(image[None], margins))[0]
    tiled, warned = predict(model, image, plan)
    assert not warned
    np.testing.assert_allclose(tiled, reference, atol=1e-5)


def test_one_pass_that_does_not_fit_in_memory_blends_and_warns(monkeypatch):
    plan, model, image, _ = setup("instance", "same")
    geo = plan_geometry(plan)
    whole = np.prod([legal_at_least(rule, n) for rule, n in zip(geo.rules, image.shape[:-1])])
    # one pass over the image would take more than half of it; a 64x64 tile's widest layer fits
    monkeypatch.setattr("archgen.model_file.available_memory", lambda: int(whole * geo.pixel_elements * 4 * 1.5))
    _, warned = predict(model, image, plan, max_tile=None)
    assert not warned  # the default cap (512) covers this image: one pass at its legal size, exact
    _, warned = predict(model, image, plan, tile_size=64)
    assert warned and "overlapping tiles" in str(warned[0].message)


def test_a_tile_whose_widest_layer_cannot_fit_is_refused_before_it_runs(monkeypatch):
    plan, model, image, _ = setup("instance", "same")
    geo = plan_geometry(plan)
    monkeypatch.setattr("archgen.model_file.available_memory", lambda: int(64 * 64 * geo.widest_pixel_elements * 4))
    with pytest.raises(archgen.errors.PlanError, match="too large to run here.*one 64x64 tile"):
        predict(model, image, plan, tile_size=64)
    assert geo.widest_pixel_elements < geo.pixel_elements


def test_an_illegal_size_is_padded_and_said(tmp_path):
    plan, model, image, _ = setup("instance", "same")
    _, warned = predict(model, image[:-1, :-3], plan)
    assert warned and "mirror-padded beyond its margins" in str(warned[0].message)


def test_predict_cli_prints_the_warning(tmp_path, cli):
    overrides = [*BASE, "padding=same", *BLOCKS["instance"]]
    archgen.build_model("conf/unet.yaml", overrides).save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((100, 100, 1)).astype(np.float32))
    args = ["predict", tmp_path / "m.keras", tmp_path / "x.npy", "-o", tmp_path / "y.npy", "--config",
            "conf/unet.yaml", "--tile-size", "48"]
    for override in overrides:
        args += ["--override", override]
    code, out, err = cli(*args)
    assert code == 0, err
    assert err.startswith("warning: ") and "read(s) the whole map" in err and "approximate" in err


def test_a_fixed_size_model_without_a_plan_is_judged_from_its_layers(tmp_path):
    overrides = ["encoder.depth=2", "encoder.filters=4", "input.shape=[64,64,1]", "padding=same",
                 *BLOCKS["instance"]]
    model = archgen.build_model("conf/unet.yaml", overrides)
    image = np.random.default_rng(0).random((64, 64, 1)).astype(np.float32)
    _, warned = predict(model, image, None)
    assert not warned  # the image is exactly the model's size: one exact pass
    _, warned = predict(model, np.concatenate([image, image], axis=0), None)
    assert warned


def test_a_fixed_size_model_with_its_plan_says_the_size_is_why_it_tiles():
    overrides = ["encoder.depth=2", "encoder.filters=4", "input.shape=[64,64,1]", "padding=same",
                 *BLOCKS["instance"]]
    plan, model = archgen.plan("conf/unet.yaml", overrides), archgen.build_model("conf/unet.yaml", overrides)
    image = np.random.default_rng(0).random((70, 90, 1)).astype(np.float32)
    _, warned = predict(model, image, plan)
    assert warned and "(the model takes a fixed 64x64 input)" in str(warned[0].message)
    assert "memory" not in str(warned[0].message)


# A model with a fixed input size and no config is judged from its layers, each mapped back to its
# kind: the verdict must be the plan's, for every network archgen describes.
FIXED = {
    "unet.yaml": ["encoder.depth=2", "encoder.filters=4", "input.shape=[92,92,1]"],
    "unet_same.yaml": ["encoder.depth=2", "encoder.filters=4", "input.shape=[32,32,1]"],
    "instance.yaml": ["input.shape=[64,64,1]", "encoder.filters=4"],
    "attention_unet.yaml": ["input.shape=[64,64,1]", "encoder.filters=4"],
    "deep_supervision.yaml": ["input.shape=[64,64,1]", "encoder.filters=4"],
    "unet3d.yaml": ["encoder.depth=2", "encoder.filters=2", "input.shape=[44,44,44,1]"],
    "unet1d.yaml": ["encoder.filters=4", "input.shape=[256,1]"],
    "unet_plus_plus.yaml": ["encoder.depth=2", "encoder.filters=4", "input.shape=[44,44,1]"],
    "unet3plus.yaml": ["encoder.depth=2", "encoder.filters=4", "input.shape=[32,32,1]"],
    "peers/monai_mednext_s_k3_3d.yaml": ["input.shape=[16,16,16,1]"],
    "peers/monai_segresnet_2d.yaml": ["input.shape=[32,32,1]"],
    "peers/kuc_transunet_2d.yaml": ["input.shape=[32,32,3]"],
    "peers/monai_unet_2d.yaml": ["input.shape=[32,32,1]"],
    "peers/monai_unetr_2d.yaml": ["input.shape=[32,32,1]"],
    "peers/monai_swin_unetr_2d.yaml": ["input.shape=[64,64,1]"],
    "peers/kuc_u2net_2d.yaml": ["input.shape=[64,64,3]"],
    "peers/monai_vnet_3d.yaml": ["input.shape=[16,16,16,1]"],
    "se": ["encoder.depth=2", "encoder.filters=4", "input.shape=[32,32,1]", "padding=same", "+encoder.block.se={ratio: 2}"],
}


@pytest.mark.parametrize("name", sorted(FIXED))
def test_a_model_alone_is_judged_as_its_plan(name):
    from archgen.tiling import model_geometry

    config = "conf/unet.yaml" if name == "se" else f"conf/{name}"
    plan = archgen.plan(config, FIXED[name])
    model = archgen.build_model(config, FIXED[name])
    planned, alone = plan_geometry(plan), model_geometry(model)
    assert alone.period == planned.period
    assert alone.exact == planned.exact
    # the same layers (a group norm of one group per channel may read as instance norm)
    assert sorted(w.split(' (')[0] for w in alone.whole_map) == sorted(w.split(' (')[0] for w in planned.whole_map)
    assert [(h.name, h.scale) for h in alone.heads] == [(h.name, h.scale) for h in planned.heads]
    # each Keras layer reads back as the kind it was planned as (an SE gate's Multiply as multiply; a 3D
    # depthwise conv, a Conv3D of one group per channel, as conv: the same facts)
    from archgen.tiling.model import _every_layer, keras_kind

    built = {layer.name: layer for layer in _every_layer(model)}
    read_as = {"scale": "multiply", **({"depthwise_conv": "conv"} if plan.ndim == 3 else {})}
    kinds = [(layer.name, read_as.get(layer.kind, layer.kind)) for layer in plan.layers]
    assert [(name, keras_kind(built[name])[0]) for name, _ in kinds if name in built] == [
        (name, kind) for name, kind in kinds if name in built]
    assert sum(name in built for name, _ in kinds) >= len(kinds) // 2


def test_a_backbone_model_alone_is_judged_as_its_plan():
    from archgen.tiling import model_geometry

    overrides = ["input.shape=[64,64,3]"]
    plan = archgen.plan("conf/peers/smp_unet_resnet50.yaml", overrides)
    model = archgen.build_model("conf/peers/smp_unet_resnet50.yaml", overrides)
    alone = model_geometry(model)
    assert (alone.period, alone.exact) == (plan_geometry(plan).period, False)
    assert [h.scale for h in alone.heads] == [h.scale for h in plan_geometry(plan).heads]


def test_a_layer_archgen_does_not_build_is_refused_not_guessed():
    import keras

    from archgen.errors import PlanError
    from archgen.tiling import model_geometry

    x = keras.Input((32, 32, 1))
    y = keras.layers.Conv2D(2, 3, padding="same")(keras.layers.RandomFlip(name="flip")(x))
    with pytest.raises(PlanError, match="layer flip is a RandomFlip, which archgen does not build"):
        model_geometry(keras.Model(x, y))
    with pytest.raises(PlanError, match="pass plan= or config="):
        predict_tiled(keras.Model(x, y), np.zeros((40, 40, 1), np.float32))
