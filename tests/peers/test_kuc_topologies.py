"""keras-unet-collection's UNet++ and UNet 3+ against conf/peers/kuc_unet_plus_2d.yaml and
kuc_unet_3plus_2d.yaml: parameter counts, output shapes, with and without deep supervision.

UNet 3+ is compared with keras-unet-collection's own model, built on Keras 3. Its UNet++ builds too,
but without the concatenations (every nested node gets ``concat=False``); the tests show that model
is archgen's plain decoder without skips, and compare the UNet++ config with the hand-written
reference in tests/reference/kuc_unet_plus.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from archgen.planner import make_plan
from archgen.config import load_spec
from tests.emit.test_emit_plan_agree import assert_model_matches_plan
from tests.peers.common import PEERS, keras_counts

keras = pytest.importorskip("keras")
kuc = pytest.importorskip("keras_unet_collection.models", reason="pip install keras-unet-collection pillow")
from archgen.emit import emit_model  # noqa: E402

UNET_PLUS = dict(filter_num=[64, 128, 256, 512], n_labels=2, stack_num_down=2, stack_num_up=2, activation="ReLU",
                 output_activation="Softmax", batch_norm=True, pool=True, unpool=True)
UNET_3PLUS = dict(n_labels=2, filter_num_down=[64, 128, 256, 512, 1024], filter_num_skip="auto",
                  filter_num_aggregate="auto", stack_num_down=2, stack_num_up=1, activation="ReLU",
                  output_activation="Sigmoid", batch_norm=True, pool=True, unpool=True)


def plan(name: str, *overrides: str):
    return make_plan(load_spec(PEERS / f"{name}.yaml", list(overrides)))


def shapes(model) -> list[tuple]:
    return [tuple(o.shape[1:]) for o in model.outputs]


@pytest.mark.parametrize("deep", [False, True])
def test_unet_3plus_matches_keras_unet_collection(deep, capsys):
    theirs = kuc.unet_3plus_2d((128, 128, 3), deep_supervision=deep, **UNET_3PLUS)
    ours = plan("kuc_unet_3plus_2d", f"decoder.deep_supervision={str(deep).lower()}")
    model = emit_model(ours)
    assert_model_matches_plan(model, ours)
    assert keras_counts(model) == keras_counts(theirs)
    assert ours.total_params == theirs.count_params() == (26_131_146 if deep else 26_095_426)
    # Theirs lists the deep outputs first (shallowest level first) and the final output last.
    assert list(ours.output_shapes.values()) == shapes(model)
    assert sorted(shapes(model)) == sorted(shapes(theirs)) == [(128, 128, 2)] * (5 if deep else 1)
    assert sum(isinstance(layer, keras.layers.Concatenate) for layer in model.layers) == 4


SMALL_3PLUS = """
input: {shape: [64, 64, 3]}
padding: same
encoder:
  block: {norm: %(norm)s, activation: relu}
  downsample: %(down)s
  stages: [{filters: 16}, {filters: 32, stride: 2}, {filters: 64, stride: 2}, {filters: 128, stride: 2}]
decoder:
  type: unet3+
  skips: [2, 3]
  cat_channels: 16
  fusion_norm: batch
  block: {norm: %(norm)s, activation: relu}
  upsample: {type: resize, interpolation: bilinear}
  stages: [{filters: 64, convs: 1}, {filters: 64, convs: 1}, {filters: 64, convs: 1}]
heads: [{name: logits, filters: 2, activation: sigmoid, kernel_size: 3}]
"""


@pytest.mark.parametrize("pool, batch_norm", [(True, False), ("ave", False), (False, False), (False, True)])
def test_unet_3plus_brings_finer_skips_down_as_its_encoder_does(pool, batch_norm):
    """keras-unet-collection's ``pool`` is the encoder's down-sampling and the full-scale skips' alike:
    a max pool, an average pool, or a strided conv (kernel = stride = the scale) with its norm."""
    import yaml

    from archgen.config.load import validate

    norm = "batch" if batch_norm else "none"
    down = {True: "{type: maxpool}", "ave": "{type: avgpool}"}.get(
        pool, f"{{type: conv, bias: {str(not batch_norm).lower()}, norm: {norm}, activation: relu, "
              f"change_channels: true}}")
    ours = make_plan(validate(yaml.safe_load(SMALL_3PLUS % {"norm": norm, "down": down})))
    theirs = kuc.unet_3plus_2d((64, 64, 3), 2, [16, 32, 64, 128], pool=pool, batch_norm=batch_norm)
    model = emit_model(ours)
    assert_model_matches_plan(model, ours)
    assert keras_counts(model) == keras_counts(theirs)
    for kind in (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D, keras.layers.Conv2D):
        assert sum(isinstance(x, kind) for x in model.layers) == sum(isinstance(x, kind) for x in theirs.layers), kind


@pytest.mark.parametrize("unpool, batch_norm, skip, deep", [(False, False, "auto", False), (False, True, "auto", True),
                                                        (True, False, [8, 16, 24], False)])
def test_unet_3plus_up_samples_and_widens_as_keras_unet_collection(unpool, batch_norm, skip, deep):
    """``unpool=False``: each deeper level through a transposed conv (kernel 3, stride the scale) to
    the skip width, its norm and activation (the deep-supervision outputs through a plain one);
    ``filter_num_skip`` per level (theirs deepest first, archgen's ``cat_channels`` level 1 first)."""
    import yaml

    from archgen.config.load import validate

    norm = "batch" if batch_norm else "none"
    data = yaml.safe_load(SMALL_3PLUS % {"norm": norm, "down": "{type: maxpool}"})
    if not unpool:
        data["decoder"]["upsample"] = {"type": "transpose", "kernel_size": 3, "norm": norm, "activation": "relu"}
    if skip != "auto":
        data["decoder"]["cat_channels"] = skip[::-1]
    data["decoder"]["deep_supervision"] = deep
    ours = make_plan(validate(data))
    theirs = kuc.unet_3plus_2d((64, 64, 3), 2, [16, 32, 64, 128], filter_num_skip=skip, filter_num_aggregate=64,
                               unpool=unpool, batch_norm=batch_norm, deep_supervision=deep)
    model = emit_model(ours)
    assert_model_matches_plan(model, ours)
    assert keras_counts(model) == keras_counts(theirs)
    assert sorted(shapes(model)) == sorted(shapes(theirs))
    transposed = keras.layers.Conv2DTranspose
    assert sum(isinstance(x, transposed) for x in model.layers) == sum(isinstance(x, transposed) for x in theirs.layers)


def test_unet_plus_matches_the_reference():
    from tests.reference.kuc_unet_plus import kuc_unet_plus

    for deep in (False, True):
        reference = kuc_unet_plus((128, 128, 3), deep_supervision=deep)
        ours = plan("kuc_unet_plus_2d", f"decoder.deep_supervision={str(deep).lower()}")
        model = emit_model(ours)
        assert_model_matches_plan(model, ours)
        assert keras_counts(model) == keras_counts(reference)
        assert shapes(model) == shapes(reference) == [(128, 128, 2)] * (3 if deep else 1)
        kinds = lambda m: sorted(type(layer).__name__ for layer in m.layers if layer.count_params())  # noqa: E731
        assert kinds(model) == kinds(reference)
    assert ours.total_params == 9_934_402 + 2 * 130  # two deep heads: 1x1 convs 64 -> 2


def test_keras_unet_collection_unet_plus_has_no_skips(capsys):
    """What unet_plus_2d builds on 0.1.13: no concatenation, i.e. archgen's U-Net without skips; with
    deep supervision it adds the nested nodes' chains and a head on encoder level 1 as well."""
    theirs = kuc.unet_plus_2d((128, 128, 3), deep_supervision=False, **UNET_PLUS)
    assert not any(isinstance(layer, keras.layers.Concatenate) for layer in theirs.layers)
    plain = plan("kuc_unet_plus_2d", "decoder.type=unet", "decoder.skips=none")
    assert plain.total_params == theirs.count_params() == 7_793_218
    assert plan("kuc_unet_plus_2d").total_params == 9_934_402  # with the nested skips


def test_unet_plus_legal_sizes_and_odd_shapes():
    ours = plan("kuc_unet_plus_2d", "input.shape=[64,40,3]", "encoder.filters=4")
    model = emit_model(ours)
    assert_model_matches_plan(model, ours)
    y = model(np.zeros((1, 64, 40, 3), "float32"))
    assert tuple(y.shape[1:]) == (64, 40, 2)


def test_unet_3plus_weights_copied_give_the_same_outputs(capsys):
    """Both models are Keras: copy keras-unet-collection's weights layer for layer (both build the
    decoder's inputs coarsest first and concatenate in that order) and compare the outputs."""
    theirs = kuc.unet_3plus_2d((64, 64, 3), **UNET_3PLUS)
    ours = emit_model(plan("kuc_unet_3plus_2d", "input.shape=[64,64,3]"))
    same_outputs(ours, theirs)


def test_unet_plus_weights_copied_give_the_reference_outputs():
    """The same with the hand-written UNet++ (concatenation order: the up-sampled node first)."""
    from tests.reference.kuc_unet_plus import kuc_unet_plus

    reference = kuc_unet_plus((64, 64, 3), filter_num=(8, 16, 32, 64))
    ours = emit_model(plan("kuc_unet_plus_2d", "input.shape=[64,64,3]", "encoder.filters=8"))
    same_outputs(ours, reference)


def same_outputs(ours, theirs) -> None:
    """Copy random weights (batch norm variances positive) into both, layer by layer in build order;
    the outputs must agree on a random batch."""
    weighted = lambda model: [layer for layer in model.layers if layer.weights]  # noqa: E731
    pairs = list(zip(weighted(ours), weighted(theirs), strict=True))
    rng = np.random.default_rng(0)
    for mine, their in pairs:
        assert [w.shape for w in mine.weights] == [w.shape for w in their.weights], (mine.name, their.name)
        values = [rng.uniform(0.5, 1.5, w.shape) if "variance" in w.path else rng.normal(0, 0.1, w.shape)
                  for w in their.weights]
        their.set_weights(values)
        mine.set_weights(values)
    x = rng.normal(size=(2, 64, 64, 3)).astype("float32")
    y = np.asarray(ours(x))
    assert y.std() > 1e-3  # not a constant: the comparison says something
    np.testing.assert_allclose(y, theirs.predict(x, verbose=0), atol=1e-4)
