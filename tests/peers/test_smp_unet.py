"""segmentation_models' Unet decoder on keras.applications' ResNet50 (tests/reference/smp_unet.py)
against conf/peers/smp_unet_resnet50.yaml: parameter count, shapes at two sizes, and the same outputs
once the hand-written reference's weights are copied in. segmentation_models' own Unet('resnet50'),
on image-classifiers' ResNet50, is test_smp_unet_own_encoders.py's."""

from __future__ import annotations

import numpy as np
import pytest

from tests.peers.common import plan_of

keras = pytest.importorskip("keras")
from archgen.emit import emit_model  # noqa: E402
from tests.reference.smp_unet import DECODER_FILTERS, smp_unet_resnet50  # noqa: E402

SMP_UNET_RESNET50_PARAMS = 32_602_769  # keras.applications ResNet50 (23,587,712) + decoder and head


def decoder_pairs() -> list[tuple[str, str]]:
    """(reference layer, archgen layer): segmentation_models' stage 0 is archgen's level 5."""
    pairs = []
    for stage in range(len(DECODER_FILTERS)):
        level = len(DECODER_FILTERS) - stage
        for part, i in (("a", 1), ("b", 2)):
            pairs += [(f"decoder_stage{stage}{part}_conv", f"dec{level}_conv{i}"),
                      (f"decoder_stage{stage}{part}_bn", f"dec{level}_norm{i}")]
    return pairs + [("final_conv", "mask")]


def copy_reference_weights(reference, model) -> None:
    """Backbone layers by name into archgen's nested backbone; decoder and head by role."""
    body = model.get_layer("backbone")
    for layer in body.layers:
        if layer.weights:
            layer.set_weights(reference.get_layer(layer.name).get_weights())
    for ref_name, name in decoder_pairs():
        model.get_layer(name).set_weights(reference.get_layer(ref_name).get_weights())


def randomize_batch_norms(model, rng) -> None:
    """Moving statistics away from 0 and 1, so a swapped mean and variance would show."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])


@pytest.mark.parametrize("size", [(64, 64), (96, 160)])
def test_smp_unet_resnet50_counts_shapes_and_outputs(size):
    plan = plan_of("smp_unet_resnet50", [*size, 3])
    keras.utils.set_random_seed(0)  # the saturation check below depends on the reference's random weights
    reference = smp_unet_resnet50((*size, 3))
    model = emit_model(plan)
    assert plan.total_params == model.count_params() == reference.count_params() == SMP_UNET_RESNET50_PARAMS
    assert plan.output_shapes["mask"] == tuple(model.output.shape[1:]) == tuple(reference.output.shape[1:]) \
        == (*size, 1)
    rng = np.random.default_rng(0)
    randomize_batch_norms(reference, rng)
    copy_reference_weights(reference, model)
    x = rng.uniform(0, 255, (2, *size, 3)).astype("float32")
    expected = reference.predict(x, verbose=0)
    got = model.predict(x, verbose=0)
    assert 0.01 < expected.std()  # a sigmoid saturated at 0 or 1 everywhere would prove little
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
