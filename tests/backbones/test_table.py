"""archgen's backbone table against keras.applications itself: every row's parameters and taps
(the named layer exists, and its tensor has the row's stride and channels). The rows' FLOPs are
checked against TensorFlow's profiler in test_table_vs_profiler.py.

Building all 30 backbones takes minutes on two cores: the full check is slow; MobileNetV3Small
(taps taken from the input of a named layer) and VGG16 (a stride-1 tap) run in the fast suite.
"""

from __future__ import annotations

import re

import pytest

from archgen.backbones import BACKBONES

keras = pytest.importorskip("keras")

FAST = ("mobilenetv3small", "vgg16")
REQUIRED = (  # the backbones archgen promises
    "vgg16", "vgg19", "resnet50", "resnet101", "resnet152", "resnet50v2", "resnet101v2", "resnet152v2",
    "densenet121", "mobilenet", "mobilenetv2", "mobilenetv3small", "mobilenetv3large",
    *(f"efficientnetb{i}" for i in range(8)),
    "efficientnetv2b0", "efficientnetv2b1", "efficientnetv2b2", "efficientnetv2b3", "efficientnetv2s",
    "convnexttiny", "convnextsmall", "convnextbase",
)


def tap_tensor(model, tap):
    if not tap.layer:
        return model.outputs[0]
    layer = model.get_layer(tap.layer)
    return layer.output if tap.side == "output" else layer.input


def check_row(name: str, height: int, width: int) -> None:
    row = BACKBONES[name]
    model = getattr(keras.applications, row.constructor)(include_top=False, weights=None,
                                                         input_shape=(height, width, 3))
    assert model.count_params() == row.params, name
    assert [t.stride for t in row.taps] == sorted(t.stride for t in row.taps) and row.taps[-1].stride == row.divisor
    for tap in row.taps:
        if tap.layer:  # a name Keras made up from the class (re_lu_3) would change from build to build
            auto = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2",
                                                               type(model.get_layer(tap.layer)).__name__)).lower()
            assert not re.fullmatch(rf"{auto}(_\d+)?", tap.layer), (name, tap)
        assert tuple(tap_tensor(model, tap).shape[1:]) == (height // tap.stride, width // tap.stride, tap.channels), \
            (name, tap)
    # The last tap is what the model ends in: nothing of the backbone is left unused or missing.
    assert tap_tensor(model, row.taps[-1]) is model.outputs[0], name


def test_every_promised_backbone_has_a_row():
    assert set(REQUIRED) <= set(BACKBONES)
    for name, row in BACKBONES.items():
        assert name == row.constructor.lower() and hasattr(keras.applications, row.constructor)


@pytest.mark.parametrize("name", FAST)
def test_table_matches_keras(name):
    check_row(name, 64, 96)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in BACKBONES if n not in FAST])
def test_table_matches_keras_every_backbone(name):
    check_row(name, 64, 96)
    keras.backend.clear_session()
