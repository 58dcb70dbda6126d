"""archgen's conf/unet.yaml against the seed lecture's own hand-written Keras U-Net."""

from __future__ import annotations

import numpy as np
import pytest

from archgen.plan import make_plan
from archgen.spec import load_spec
from tests.conftest import CONF, seed_unet_source

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def seed_model():
    import tensorflow as tf
    import tensorflow.keras.layers as layers

    scope = {"tf": tf, "layers": layers}
    exec(compile(seed_unet_source(), "seed-lecture-unet", "exec"), scope)
    return scope["model"]


@pytest.fixture(scope="module")
def archgen_model():
    from archgen.emit import emit_model

    return emit_model(make_plan(load_spec(CONF / "unet.yaml")))


def test_same_output_shape(seed_model, archgen_model):
    assert tuple(seed_model.output_shape) == tuple(archgen_model.output_shape) == (None, 388, 388, 2)


def test_same_total_params(seed_model, archgen_model):
    assert seed_model.count_params() == archgen_model.count_params() == 31_030_658


def test_same_params_layer_by_layer(seed_model, archgen_model):
    seed = [(type(layer).__name__, layer.count_params()) for layer in seed_model.layers]
    ours = [(type(layer).__name__, layer.count_params()) for layer in archgen_model.layers]
    assert ours == seed


@pytest.mark.slow
def test_same_function_with_the_same_weights(seed_model, archgen_model):
    """Layer for layer the same maths: copy the weights across, compare outputs at 188x188."""
    from archgen.emit import emit_model

    small = emit_model(make_plan(load_spec(CONF / "unet.yaml", ["input.shape=[188,188,1]"])))
    small.set_weights(seed_model.get_weights())
    x = np.random.default_rng(0).normal(size=(1, 188, 188, 1)).astype("float32")
    # The seed's model is fixed at 572x572: run its layers on 188x188 through a copy.
    seed_small = keras.Model.from_config(_with_input(seed_model.get_config(), (188, 188, 1)))
    seed_small.set_weights(seed_model.get_weights())
    np.testing.assert_allclose(small(x).numpy(), seed_small(x).numpy(), rtol=1e-4, atol=1e-5)


def _with_input(config: dict, shape: tuple) -> dict:
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            layer["config"]["batch_shape"] = [None, *shape]
    return config
