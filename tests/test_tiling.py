"""Overlap-tile prediction and label cropping: exact against one pass where the network allows it,
blended within a stated tolerance where it zero-pads, and refused with one clear error otherwise."""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import pytest

from archgen.errors import ArchgenError, OutputError, PlanError, SpecError
from archgen.planner import make_plan
from archgen.config import load_spec
from archgen.tiling import (
    TilingError,
    crop_to_output,
    mirror_pad,
    output_margins,
    predict_tiled,
    reflect_indices,
)
from tests.conftest import CONF, ROOT

TINY = ["encoder.filters=4", "encoder.depth=2"]
VALID_2D = ("unet.yaml", TINY)  # margin 40 (20 + 20), period 4, legal sizes 4k + 12, k >= 8
ODD_MARGIN = ("unet.yaml", ["encoder.filters=2", "encoder.depth=1", "encoder.block.convs=1",
                            "encoder.block.kernel_size=[3,2]", "encoder.downsample.factor=3",
                            "decoder.upsample.factor=3"])  # margin 7 (3 + 4), period 3
VALID_3D = ("unet3d.yaml", ["encoder.filters=[2,2]", "encoder.depth=1"])  # margin 16, period 2
SAME_2D = ("unet_same.yaml", TINY)  # period 4, any multiple of 4
DEEP_SUPERVISION = ("deep_supervision.yaml", ["encoder.filters=4", "encoder.depth=3"])  # heads at 1, 1/2, 1/4


def plan_of(config: tuple[str, list[str]], shape: list) -> object:
    name, overrides = config
    text = "[" + ",".join("null" if n is None else str(n) for n in shape) + "]"
    return make_plan(load_spec(CONF / name, [*overrides, f"input.shape={text}"]))


def reference_pad(image: np.ndarray, pads: list[tuple[int, int]]) -> np.ndarray:
    """Mirror padding by NumPy itself (reflect; a one-pixel axis repeats), for the spatial axes."""
    out = image
    for axis, (before, after) in enumerate(pads, start=image.ndim - 1 - len(pads)):
        width = [(0, 0)] * out.ndim
        width[axis] = (before, after)
        out = np.pad(out, width, mode="reflect" if out.shape[axis] > 1 else "edge")
    return out


# ------------------------------------------------------------------ pure parts (no TensorFlow)


def test_tiling_and_predict_cli_import_no_tensorflow():
    code = ("import sys, archgen.tiling, archgen.predict_cli; "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; sys.exit(bool(bad))")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("before, after", [(0, 0), (1, 0), (3, 7), (12, 1), (25, 25)])
def test_reflect_indices_mirror_however_small_the_axis(size, before, after):
    axis = np.arange(size)
    expected = np.pad(axis, (before, after), mode="reflect" if size > 1 else "edge")
    np.testing.assert_array_equal(axis[reflect_indices(size, before, after)], expected)


def test_mirror_pad_pads_the_spatial_axes_only():
    image = np.arange(2 * 3 * 4 * 2).reshape(2, 3, 4, 2)
    out = mirror_pad(image, [(5, 1), (0, 6)])
    assert out.shape == (2, 9, 10, 2)
    np.testing.assert_array_equal(out, reference_pad(image, [(5, 1), (0, 6)]))


def test_output_margins_of_the_2015_unet_and_same_padding():
    assert output_margins(make_plan(load_spec(CONF / "unet.yaml"))) == ((92, 92), (92, 92))
    assert output_margins(plan_of(SAME_2D, [None, None, 1])) == ((0, 0), (0, 0))
    assert output_margins(plan_of(ODD_MARGIN, [None, None, 1])) == ((3, 4), (3, 4))


@pytest.mark.parametrize("config, shape, sizes, before, after", [
    (VALID_2D, [52, 48, 3], [52, 48], 20, 20),
    (ODD_MARGIN, [None, None, 3], [11, 14], 3, 4),
    (("unet.yaml", TINY), [None, 3], [60], 20, 20),
    (VALID_3D, [None, None, None, 3], [18, 20, 22], 8, 8),
])
def test_crop_to_output_cuts_the_margin_by_index_arithmetic(config, shape, sizes, before, after):
    plan = plan_of(config, shape)
    labels = np.arange(2 * np.prod(sizes) * 3).reshape(2, *sizes, 3)
    centre = tuple(slice(before, n - after) for n in sizes)
    np.testing.assert_array_equal(crop_to_output(labels, plan), labels[(slice(None), *centre, slice(None))])
    plain = labels[0, ..., 0]
    np.testing.assert_array_equal(crop_to_output(plain, plan, channel_axis=False), plain[centre])


def test_crop_to_output_refuses_what_the_model_cannot_take():
    free = plan_of(VALID_2D, [None, None, 1])
    with pytest.raises(TilingError, match="legal sizes: H = 4k"):
        crop_to_output(np.zeros((50, 52, 1)), free)
    with pytest.raises(TilingError, match="takes only 52"):
        crop_to_output(np.zeros((56, 48, 1)), plan_of(VALID_2D, [52, 48, 1]))
    with pytest.raises(TilingError, match="has 2 axes"):
        crop_to_output(np.zeros((52, 52)), free)
    with pytest.raises(PlanError, match="1/2 resolution"):
        crop_to_output(np.zeros((52, 52, 1)), plan_of(("unet.yaml", [*TINY, "+heads.0.deep_supervision=[2]"]),
                                                      [None, None, 1]), head="logits_dec2")
    with pytest.raises(PlanError, match="no such head"):
        crop_to_output(np.zeros((52, 52, 1)), free, head="logit")


# ------------------------------------------------------------------ with Keras

keras = pytest.importorskip("keras")
from archgen.emit import emit_model  # noqa: E402
from archgen.tiling import output_names  # noqa: E402


def build(plan, seed: int = 0):
    keras.utils.set_random_seed(seed)
    return emit_model(plan)


def one_pass(model, image: np.ndarray):
    ys = model.predict_on_batch(image)
    return ys if isinstance(ys, list) else [ys]


@pytest.fixture(scope="module")
def valid_2d():
    plan = plan_of(VALID_2D, [None, None, 1])
    return plan, build(plan)


def padded_reference(model, image, margin: tuple[int, int], rule) -> np.ndarray:
    """One pass over the image mirror-padded by the margin, extended at the end to the next legal size."""
    sizes = image.shape[1:-1]
    pads = []
    for n in sizes:
        need = n + sum(margin)
        legal = max(rule.first, need + (rule.offset - need) % rule.period)
        pads.append((margin[0], legal - n - margin[0]))
    out = one_pass(model, reference_pad(image, pads))[0]
    return out[(slice(None), *[slice(0, n) for n in sizes])]


def test_plan_heads_are_in_model_output_order():
    plan = plan_of(("instance.yaml", TINY), [None, None, 3])
    names = output_names(build(plan))
    assert [n.removeprefix("head_") for n in names] == list(plan.outputs)


@pytest.mark.parametrize("size", [(32, 32), (30, 37), (5, 9), (1, 3)])
def test_valid_2d_tiles_equal_one_pass_over_the_padded_image(valid_2d, size):
    """(32, 32) + the margin is itself legal; the others need the padding extended at the end;
    (1, 3) is smaller than the margin, so it is mirrored many times over."""
    plan, model = valid_2d
    image = np.random.default_rng(1).normal(size=(2, *size, 1)).astype("float32")
    reference = padded_reference(model, image, (20, 20), plan.sizes)
    tiled = predict_tiled(model, image, plan=plan, tile_size=52)  # 12 output pixels per tile: several tiles
    assert tiled.shape == (2, *size, 2)
    np.testing.assert_allclose(tiled, reference, atol=1e-5)
    whole = predict_tiled(model, image[0], plan=plan)  # no batch axis, default tile: one pass
    assert whole.shape == (*size, 2)
    np.testing.assert_allclose(whole, reference[0], atol=1e-5)


@pytest.mark.parametrize("length", [37, 200])
def test_valid_1d_tiles_equal_one_pass(length):
    plan = plan_of(("unet.yaml", TINY), [None, 1])
    model = build(plan)
    image = np.random.default_rng(2).normal(size=(1, length, 1)).astype("float32")
    tiled = predict_tiled(model, image, plan=plan, tile_size=60, batch_size=3)
    np.testing.assert_allclose(tiled, padded_reference(model, image, (20, 20), plan.sizes), atol=1e-5)


def test_valid_3d_tiles_equal_one_pass():
    plan = plan_of(VALID_3D, [None, None, None, 1])
    model = build(plan)
    image = np.random.default_rng(3).normal(size=(1, 5, 9, 12, 1)).astype("float32")
    tiled = predict_tiled(model, image, plan=plan, tile_size=[22, 20, 22])
    assert tiled.shape == (1, 5, 9, 12, 3)
    np.testing.assert_allclose(tiled, padded_reference(model, image, (8, 8), plan.sizes), atol=1e-5)


def identity_weights(model, plan) -> None:
    """Zero every weight, then pass input channel 0 through the full-resolution skip path
    (level-1 convs, the skip half of the concat, the head) with a 1 at each kernel's centre."""
    for layer in model.layers:
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    skip_channel = model.get_layer("dec1_up").output.shape[-1]
    path = [layer.name for layer in plan.layers if layer.name.startswith(("enc1_conv", "dec1_conv"))]
    for name in [*path, plan.outputs["logits"]]:
        layer = model.get_layer(name)
        kernel, *rest = layer.get_weights()
        centre = tuple((k - 1) // 2 for k in kernel.shape[:-2])
        kernel[(*centre, skip_channel if name == "dec1_conv1" else 0, 0)] = 1
        layer.set_weights([kernel, *rest])


@pytest.mark.parametrize("config", [VALID_2D, ODD_MARGIN], ids=["even_margin", "odd_margin"])
def test_crop_to_output_lines_up_with_what_the_network_outputs(config):
    """With identity weights the output is the input shifted by where the network puts it; the odd
    margin (7) tells m // 2 before from the other way round."""
    plan = plan_of(config, [None, None, 1])
    model = build(plan)
    identity_weights(model, plan)
    size = (52, 56) if config is VALID_2D else (14, 17)
    image = np.random.default_rng(4).uniform(0.5, 1, size=(1, *size, 1)).astype("float32")
    out = one_pass(model, image)[0]
    expected = crop_to_output(image, plan)
    assert out.shape[1:-1] == expected.shape[1:-1]
    np.testing.assert_allclose(out[..., :1], expected, atol=1e-6)
    import tensorflow as tf

    np.testing.assert_allclose(crop_to_output(tf.constant(image), plan).numpy(), expected)


@pytest.fixture(scope="module")
def fixed_model(valid_2d, tmp_path_factory):
    """The valid 2D network saved with a fixed 52x48 input, sharing valid_2d's weights."""
    _, dynamic = valid_2d
    model = emit_model(plan_of(VALID_2D, [52, 48, 1]))
    model.set_weights(dynamic.get_weights())
    path = tmp_path_factory.mktemp("models") / "fixed.keras"
    model.save(path)
    return model, path


def test_a_fixed_size_model_tiles_without_a_plan(valid_2d, fixed_model):
    plan, dynamic = valid_2d
    model, path = fixed_model
    image = np.random.default_rng(5).normal(size=(1, 30, 61, 1)).astype("float32")
    reference = padded_reference(dynamic, image, (20, 20), plan.sizes)
    np.testing.assert_allclose(predict_tiled(model, image), reference, atol=1e-5)
    np.testing.assert_allclose(predict_tiled(str(path), image[0]), reference[0], atol=1e-5)
    with pytest.raises(PlanError, match="takes only 52"):
        predict_tiled(model, image, tile_size=56)


def test_a_free_size_model_needs_its_plan_or_config(valid_2d, tmp_path):
    _, model = valid_2d
    image = np.zeros((20, 20, 1), "float32")
    with pytest.raises(PlanError, match="pass plan= or config="):
        predict_tiled(model, image)
    out = predict_tiled(model, image, config=CONF / "unet.yaml", overrides=TINY)
    assert out.shape == (20, 20, 2)
    with pytest.raises(PlanError, match="does not describe this model"):
        predict_tiled(model, image, config=CONF / "unet.yaml", overrides=["encoder.depth=2"])


def test_bad_images_and_options_are_refused_clearly(valid_2d):
    plan, model = valid_2d
    with pytest.raises(TilingError, match="has 2 axes.*image\\[..., None\\]"):
        predict_tiled(model, np.zeros((20, 20)), plan=plan)
    with pytest.raises(TilingError, match="has 3 channels"):
        predict_tiled(model, np.zeros((20, 20, 3)), plan=plan)
    with pytest.raises(TilingError, match="expected numbers"):
        predict_tiled(model, np.array([[["a"]]]), plan=plan)
    with pytest.raises(PlanError, match="legal sizes: H = 4k \\+ 12, k >= 8; nearest: 48, 52"):
        predict_tiled(model, np.zeros((20, 20, 1)), plan=plan, tile_size=50)
    with pytest.raises(ArchgenError, match="batch_size=0"):
        predict_tiled(model, np.zeros((20, 20, 1)), plan=plan, batch_size=0)
    with pytest.raises(ArchgenError, match="overlap=1"):
        predict_tiled(model, np.zeros((20, 20, 1)), plan=plan, overlap=1)
    with pytest.raises(SpecError, match="no such file"):
        predict_tiled("missing.keras", np.zeros((20, 20, 1)))


@pytest.fixture(scope="module")
def same_2d():
    plan = plan_of(SAME_2D, [None, None, 1])
    return plan, build(plan)


def test_same_padding_one_pass_where_the_image_is_legal(same_2d):
    plan, model = same_2d
    image = np.random.default_rng(6).normal(size=(2, 64, 48, 1)).astype("float32")
    np.testing.assert_allclose(predict_tiled(model, image, plan=plan), one_pass(model, image)[0], atol=1e-5)


def test_same_padding_blended_tiles_are_close_to_one_pass(same_2d):
    """Zero padding at tile borders makes tiles differ from one pass. 32-pixel tiles (3 x 2 of them)
    overlapping by half, blended with a Gaussian: over 10 random initialisations the error was
    0.2-1.1% of the output's standard deviation as RMS and 3-16% at its peak (24-pixel tiles:
    0.6-2.7% and 4-35%). Bounds: 1.5% and 20%."""
    plan, model = same_2d
    image = np.random.default_rng(6).normal(size=(1, 64, 48, 1)).astype("float32")
    reference = one_pass(model, image)[0]
    tiled = predict_tiled(model, image, plan=plan, tile_size=32, overlap=0.5)
    error = tiled - reference
    assert np.sqrt(np.mean(error**2)) < 0.015 * reference.std()
    assert np.abs(error).max() < 0.20 * reference.std()
    odd = predict_tiled(model, image[0, :37, :21], plan=plan, tile_size=16)  # not a legal size
    assert odd.shape == (37, 21, 2) and np.isfinite(odd).all()


def test_same_padding_1d_of_any_length():
    plan = plan_of(("unet1d.yaml", ["encoder.filters=4", "encoder.depth=2"]), [None, 2])
    model = build(plan)
    image = np.random.default_rng(7).normal(size=(64, 2)).astype("float32")
    np.testing.assert_allclose(predict_tiled(model, image, plan=plan), one_pass(model, image[None])[0][0],
                               atol=1e-5)
    out = predict_tiled(model, image[:50], plan=plan, tile_size=32)
    assert out.shape == (50, 5)
    np.testing.assert_allclose(out.sum(-1), 1, atol=1e-5)  # blended softmax stays a distribution


def test_several_heads_come_back_as_a_dict():
    plan = plan_of(("instance.yaml", TINY), [None, None, 3])
    model = build(plan)
    image = np.random.default_rng(8).normal(size=(32, 24, 3)).astype("float32")
    out = predict_tiled(model, image, plan=plan)
    assert list(out) == ["classes", "contour", "distance"]
    for value, reference in zip(out.values(), one_pass(model, image[None])):
        np.testing.assert_allclose(value, reference[0], atol=1e-5)
    picked = predict_tiled(model, image, plan=plan, heads=["contour"])
    assert list(picked) == ["contour"] and picked["contour"].shape == (32, 24, 1)


def test_deep_supervision_heads_are_stitched_at_their_resolution():
    plan = plan_of(DEEP_SUPERVISION, [None, None, 1])
    model = build(plan)
    image = np.random.default_rng(9).normal(size=(1, 40, 24, 1)).astype("float32")
    out = predict_tiled(model, image, plan=plan)
    for value, reference in zip(out.values(), one_pass(model, image)):
        np.testing.assert_allclose(value, reference, atol=1e-5)
    odd = predict_tiled(model, image[0, :37, :21], plan=plan, tile_size=16)
    assert {k: v.shape for k, v in odd.items()} == {
        "logits": (37, 21, 4), "logits_dec2": (19, 11, 4), "logits_dec3": (10, 6, 4)}


def test_valid_deep_supervision_refuses_the_coarse_head_and_tiles_the_others():
    plan = plan_of(("unet.yaml", [*TINY, "+heads.0.deep_supervision=[2]"]), [None, None, 1])
    model = build(plan)
    image = np.random.default_rng(10).normal(size=(1, 30, 30, 1)).astype("float32")
    with pytest.raises(PlanError, match="logits_dec2.*1/2 resolution(.|\n)*heads=\\['logits'\\]"):
        predict_tiled(model, image, plan=plan)
    out = predict_tiled(model, image, plan=plan, heads=["logits"], tile_size=52)
    assert list(out) == ["logits"]
    reference = reference_pad(image, [(20, 22), (20, 22)])  # 72 = the next legal size above 30 + 40
    np.testing.assert_allclose(out["logits"], one_pass(model, reference)[0][:, :30, :30], atol=1e-5)


# ------------------------------------------------------------------ archgen predict

from archgen.predict_cli import add_predict_arguments, cmd_predict  # noqa: E402


def run_predict(*argv) -> int:
    parser = argparse.ArgumentParser(prog="archgen predict")
    add_predict_arguments(parser)
    return cmd_predict(parser.parse_args([str(a) for a in argv]))


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "image.npy"
    np.save(path, np.random.default_rng(11).normal(size=(30, 37, 1)).astype("float32"))
    return path


@pytest.fixture
def no_model_loading(monkeypatch):
    """Fail the test if the model is loaded: the error must come before any work."""
    import archgen.tiling

    def refuse(_path):
        raise AssertionError("the model was loaded before the error")

    monkeypatch.setattr(archgen.tiling, "load_model", refuse)


def test_predict_writes_the_tiled_prediction(fixed_model, image_file, tmp_path, capsys):
    model, path = fixed_model
    out = tmp_path / "out.npy"
    assert run_predict(path, image_file, "-o", out, "--batch-size", "2") == 0
    np.testing.assert_allclose(np.load(out), predict_tiled(model, np.load(image_file)), atol=1e-6)
    assert "wrote" in capsys.readouterr().out
    with pytest.raises(OutputError, match="already exists; pass --force"):
        run_predict(path, image_file, "-o", out)
    assert run_predict(path, image_file, "-o", out, "--force") == 0


def test_predict_with_config_for_a_free_size_model(valid_2d, image_file, tmp_path):
    _, model = valid_2d
    path = tmp_path / "free.keras"
    model.save(path)
    out = tmp_path / "out.npz"
    with pytest.raises(PlanError, match="--config"):
        run_predict(path, image_file, "-o", out)
    overrides = [arg for o in TINY for arg in ("--override", o)]
    assert run_predict(path, image_file, "-o", out, "--config", CONF / "unet.yaml", *overrides,
                       "--tile-size", "52,56") == 0
    assert np.load(out)["logits"].shape == (30, 37, 2)


def test_predict_several_heads_need_npz_or_one_head(tmp_path, image_file, monkeypatch):
    plan = plan_of(("unet.yaml", [*TINY, "+heads.0.deep_supervision=[2]"]), [52, 52, 1])
    path = tmp_path / "ds.keras"
    build(plan).save(path)
    with monkeypatch.context() as patch:
        import archgen.tiling

        patch.setattr(archgen.tiling, "load_model", lambda _: pytest.fail("loaded before refusing"))
        with pytest.raises(OutputError, match="2 heads; write an .npz"):
            run_predict(path, image_file, "-o", tmp_path / "out.npy")
    with pytest.raises(PlanError, match="logits_dec2"):
        run_predict(path, image_file, "-o", tmp_path / "out.npz")
    assert run_predict(path, image_file, "-o", tmp_path / "out.npy", "--head", "logits") == 0
    assert np.load(tmp_path / "out.npy").shape == (30, 37, 2)


def test_predict_refuses_before_any_work(fixed_model, image_file, tmp_path, no_model_loading):
    _, path = fixed_model
    existing = tmp_path / "exists.npy"
    existing.write_bytes(b"keep")
    with pytest.raises(OutputError, match="already exists"):
        run_predict(tmp_path / "missing.keras", image_file, "-o", existing)
    assert existing.read_bytes() == b"keep"
    with pytest.raises(OutputError, match="must end in .npy"):
        run_predict(path, image_file, "-o", tmp_path / "out.txt")
    with pytest.raises(SpecError, match="model=.*no such file"):
        run_predict(tmp_path / "missing.keras", image_file, "-o", tmp_path / "out.npy")
    with pytest.raises(SpecError, match="input=.*no such file"):
        run_predict(path, tmp_path / "missing.npy", "-o", tmp_path / "out.npy")
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros((30, 37)))
    with pytest.raises(TilingError, match="has 2 axes"):
        run_predict(path, flat, "-o", tmp_path / "out.npy")
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(SpecError, match="not a readable .npy"):
        run_predict(path, objects, "-o", tmp_path / "out.npy")
    with pytest.raises(ArchgenError, match="batch_size=0"):
        run_predict(path, image_file, "-o", tmp_path / "out.npy", "--batch-size", "0")
    with pytest.raises(ArchgenError, match="--tile-size=52,x: expected whole numbers"):
        run_predict(path, image_file, "-o", tmp_path / "out.npy", "--tile-size", "52,x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.npy", "flat.npy", "image.npy", "objects.npy"]


# ------------------------------------------------------------------ anisotropic networks

ANISOTROPIC_VALID = """\
name: anisotropic_valid
input: {shape: [null, null, 1]}
padding: valid
encoder:
  block: {type: conv, activation: relu}
  downsample: {type: maxpool}
  stages:
    - {filters: 4, kernel_size: [3, 1], stride: 1}
    - {filters: 4, kernel_size: 3, stride: [2, 1]}
    - {filters: 6, kernel_size: 3, stride: [2, 3]}
decoder:
  align: crop
  upsample: {type: transpose}
  stages:
    - {filters: 4, kernel_size: [3, 1]}
    - {filters: 4, kernel_size: 3}
heads:
  - {name: logits, filters: 2}
"""


def per_axis_reference(model, plan, image: np.ndarray) -> np.ndarray:
    """One pass over the image mirror-padded by each axis's own margin, extended at the end to
    that axis's next legal size."""
    pads = []
    for (before, after), rule, n in zip(output_margins(plan), plan.axis_sizes, image.shape[1:-1]):
        need = n + before + after
        legal = max(rule.first, need + (rule.offset - need) % rule.period)
        pads.append((before, legal - n - before))
    out = one_pass(model, reference_pad(image, pads))[0]
    return out[(slice(None), *[slice(0, n) for n in image.shape[1:-1]])]


def test_anisotropic_valid_network_tiles_exactly(tmp_path):
    """Each axis has its own period (4 and 3), margin and legal sizes; tiles are cut on each
    axis's own grid, so the stitched result equals one pass."""
    config = tmp_path / "anisotropic.yaml"
    config.write_text(ANISOTROPIC_VALID)
    plan = make_plan(load_spec(config))
    assert [rule.period for rule in plan.axis_sizes] == [4, 3]
    margins = output_margins(plan)
    assert margins[0] != margins[1]
    model = build(plan)
    image = np.random.default_rng(8).normal(size=(1, 37, 29, 1)).astype("float32")
    reference = per_axis_reference(model, plan, image)
    tiled = predict_tiled(model, image, plan=plan, tile_size=[52, 25], batch_size=3)  # several tiles each way
    assert tiled.shape == (1, 37, 29, 2)
    np.testing.assert_allclose(tiled, reference, atol=1e-5)
    cropped = crop_to_output(np.zeros((52, 25, 1)), plan)
    assert cropped.shape[:-1] == tuple(n - sum(m) for n, m in zip((52, 25), margins))
    with pytest.raises(PlanError, match="W = 3k"):
        predict_tiled(model, image, plan=plan, tile_size=[52, 24])


def test_anisotropic_dynunet_tiles_blend_close_to_one_pass():
    """MONAI's anisotropic DynUNet (in-plane-only down-sampling at stage 2) down-samples D by 4
    and H, W by 8: tiles are placed on each axis's own grid and blended."""
    plan = plan_of(("peers/monai_dynunet_3d_anisotropic.yaml",
                    ["encoder.stages.0.filters=4", "encoder.stages.1.filters=4", "encoder.stages.2.filters=4",
                     "encoder.stages.3.filters=4", "decoder.stages.0.filters=4", "decoder.stages.1.filters=4",
                     "decoder.stages.2.filters=4"]), [None, None, None, 1])
    assert [rule.period for rule in plan.axis_sizes] == [4, 8, 8]
    model = build(plan)
    image = np.random.default_rng(9).normal(size=(1, 8, 32, 32, 1)).astype("float32")
    reference = one_pass(model, image)[0]
    np.testing.assert_allclose(predict_tiled(model, image, plan=plan), reference, atol=1e-5)  # legal: one pass
    tiled = predict_tiled(model, image[:, :7, :30, :27], plan=plan, tile_size=[8, 16, 16])
    assert tiled.shape == (1, 7, 30, 27, 3) and np.isfinite(tiled).all()
