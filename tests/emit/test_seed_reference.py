"""archgen's conf/unet.yaml (the seed U-Net) against a hand-written Keras original U-Net.

Published figures, from Ronneberger, Fischer, Brox 2015, "U-Net: Convolutional Networks for
Biomedical Image Segmentation" (arXiv:1505.04597), Fig. 1: a 572x572 input tile gives a 388x388
output map; the skips are centre-cropped 568->392, 280->200, 136->104, 64->56 (by 88, 40, 16 and
4 pixels a side). The paper gives no parameter count: 31,030,658 is the sum by hand over the
layers (tests/reference/seed_unet_counts.py), which Keras's count of the reference must equal.
"""

from __future__ import annotations

import numpy as np
import pytest

from archgen.planner import make_plan
from archgen.config import load_spec
from tests.conftest import CONF
from tests.reference.seed_unet_counts import seed_unet_params

keras = pytest.importorskip("keras")

HAND_PARAMS = seed_unet_params()
PAPER_CROPS = [4, 16, 40, 88]  # per side, deepest skip first
PAPER_OUTPUT = (None, 388, 388, 2)  # from a 572x572x1 tile


@pytest.fixture(scope="module")
def reference_model():
    from tests.reference.seed_unet import seed_unet

    return seed_unet((572, 572, 1), num_classes=2)


@pytest.fixture(scope="module")
def archgen_model():
    from archgen.emit import emit_model

    return emit_model(make_plan(load_spec(CONF / "unet.yaml")))


def test_same_output_shape(reference_model, archgen_model):
    assert tuple(reference_model.output_shape) == tuple(archgen_model.output_shape) == PAPER_OUTPUT


def test_same_total_params(reference_model, archgen_model):
    assert reference_model.count_params() == archgen_model.count_params() == HAND_PARAMS


def test_same_crops(reference_model, archgen_model):
    for model in (reference_model, archgen_model):
        crops = [layer.cropping for layer in model.layers if isinstance(layer, keras.layers.Cropping2D)]
        assert crops == [((c, c), (c, c)) for c in PAPER_CROPS]


def test_same_params_layer_by_layer(reference_model, archgen_model):
    reference = [(type(layer).__name__, layer.count_params()) for layer in reference_model.layers]
    ours = [(type(layer).__name__, layer.count_params()) for layer in archgen_model.layers]
    assert ours == reference


@pytest.mark.slow
def test_same_function_with_the_same_weights(reference_model):
    """Layer for layer the same maths: copy the weights across, compare outputs at 188x188."""
    from archgen.emit import emit_model
    from tests.reference.seed_unet import seed_unet

    # 188 is the smallest legal tile (16k + 60); weights do not depend on the tile size.
    reference_small = seed_unet((188, 188, 1), num_classes=2)
    reference_small.set_weights(reference_model.get_weights())
    small = emit_model(make_plan(load_spec(CONF / "unet.yaml", ["input.shape=[188,188,1]"])))
    small.set_weights(reference_model.get_weights())
    x = np.random.default_rng(0).normal(size=(1, 188, 188, 1)).astype("float32")
    np.testing.assert_allclose(small(x).numpy(), reference_small(x).numpy(), rtol=1e-4, atol=1e-5)
