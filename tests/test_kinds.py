"""The registry of layer kinds: every kind has every fact, and a kind it does not know is an
error everywhere, never a default."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

import archgen
from archgen.errors import ArchgenError, PlanError
from archgen.kinds import KINDS, LayerKind, Locality, kind_of


def test_a_kind_cannot_leave_a_fact_out():
    with pytest.raises(TypeError):
        LayerKind("conv2", size=KINDS["conv"].size)  # type: ignore[call-arg]
    # keras is None for a kind that is no Keras layer of its own (a nested backbone, its taps) or one
    # whose Keras class another kind reads back (an SE gate's Multiply)
    assert all(getattr(kind, f.name) is not None for kind in KINDS.values() for f in fields(LayerKind)
               if f.name != "keras")
    assert {kind.name for kind in KINDS.values() if kind.keras is None} == {"backbone", "tap", "scale"}


def test_each_keras_class_is_one_kinds():
    classes = [cls for kind in KINDS.values() if kind.keras for cls in kind.keras.classes]
    assert len(classes) == len(set(classes))
    assert "ConvLSTM2D" not in classes and "Conv2D" in classes and "Conv3DTranspose" in classes


def test_every_kind_has_a_keras_emitter():
    pytest.importorskip("keras")
    from archgen.emit import layers

    for kind in KINDS.values():
        assert callable(getattr(layers, kind.emitter)), kind.name


def test_an_unknown_kind_is_an_error_with_a_suggestion():
    with pytest.raises(PlanError, match="did you mean 'conv'"):
        kind_of("convv")


def unknown_plan():
    plan = archgen.plan("conf/unet_same.yaml", ["input.shape=[32,32,1]", "encoder.filters=2", "encoder.depth=1"])
    layers = tuple(replace(layer, kind="convv") if layer.kind == "conv" else layer for layer in plan.layers)
    return replace(plan, layers=layers)


@pytest.mark.parametrize("reader", ["receptive", "memory", "tiling", "summary"])
def test_every_reader_refuses_an_unknown_kind(reader):
    plan = unknown_plan()
    with pytest.raises(ArchgenError, match="unknown layer kind"):
        if reader == "receptive":
            from archgen.planner.cost import receptive_fields
            receptive_fields(plan)
        elif reader == "memory":
            from archgen.planner.cost import training_bytes
            training_bytes(plan)
        elif reader == "tiling":
            from archgen.tiling import plan_geometry
            plan_geometry(plan)
        else:
            from archgen.report.summary import summary_columns
            summary_columns(plan)


def test_locality_of_the_norms():
    """Instance and group norm normalise over the map; batch norm (inference) and archgen's layer
    norm (each pixel over its channels, Keras's LayerNormalization(axis=-1)) per pixel."""
    norm = KINDS["norm"].locality
    assert norm({"norm": "instance"})[0] is Locality.WHOLE_MAP
    assert norm({"norm": "group"})[0] is Locality.WHOLE_MAP
    assert norm({"norm": "batch"})[0] is Locality.PIXEL
    assert norm({"norm": "layer"})[0] is Locality.PIXEL


def test_layer_norm_is_per_pixel_in_keras_too():
    """The oracle for the locality above: the emitted layer norm's output at one pixel does not
    change when another pixel changes."""
    keras = pytest.importorskip("keras")
    import numpy as np

    plan = archgen.plan("conf/unet_same.yaml", ["input.shape=[8,8,3]", "encoder.depth=0", "encoder.block.norm=layer"])
    model = archgen.build_model("conf/unet_same.yaml",
                                ["input.shape=[8,8,3]", "encoder.depth=0", "encoder.block.norm=layer"])
    norm = next(layer for layer in plan.layers if layer.kind == "norm")
    probe = keras.Model(model.inputs, model.get_layer(norm.name).input)
    after = keras.Model(model.inputs, model.get_layer(norm.name).output)
    x = np.random.default_rng(0).random((1, 8, 8, 3)).astype("float32")
    inner = probe.predict_on_batch(x)
    y = after.predict_on_batch(x)
    changed = inner.copy()
    changed[0, 0, 0] += 10.0
    layer = model.get_layer(norm.name)
    np.testing.assert_allclose(np.asarray(layer(changed))[0, 4:, 4:], y[0, 4:, 4:], atol=1e-6)


def test_each_kind_has_a_typed_record_that_refuses_what_it_does_not_hold():
    import dataclasses

    from archgen.kinds import KINDS, Attrs, attrs_of

    for name, kind in KINDS.items():
        assert issubclass(kind.attrs, Attrs) and dataclasses.is_dataclass(kind.attrs), name
        assert kind.attrs.__dataclass_params__.frozen, name
    with pytest.raises(TypeError, match="a conv layer has no attribute kernal"):
        attrs_of("conv", {"kernal": 3})
    with pytest.raises(TypeError, match="a conv layer needs"):
        attrs_of("conv", {"kernel": 3})
    record = attrs_of("maxpool", {"factor": 2})
    assert record["factor"] == record.factor == 2 and record.get("window", 2) == 2 and "window" not in record
    with pytest.raises(KeyError):
        record["kernel"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.factor = 3


def test_every_planned_layer_holds_its_kinds_record():
    import glob

    import archgen
    from archgen.kinds import kind_of

    for path in sorted(glob.glob("conf/*.yaml")) + ["conf/peers/kuc_transunet_2d.yaml", "conf/peers/smp_unet_resnet50.yaml"]:
        for layer in archgen.plan(path).layers:
            assert type(layer.attrs) is kind_of(layer.kind).attrs, (path, layer.name)
