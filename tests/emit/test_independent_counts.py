"""Parameter counts checked against sources that are not archgen."""

from __future__ import annotations

import pytest

from archgen.planner import make_plan
from archgen.config import load_spec
from tests.conftest import CONF
from tests.reference.seed_unet_counts import seed_unet_params


def test_3d_unet_matches_the_papers_count():
    """Cicek et al. 2016 (arXiv:1606.06650), section 2: "In total the network has 19069955
    parameters." The paper counts conv weights and biases; its up-convolutions have no bias and
    batch norm's parameters are not in the figure."""
    plan = make_plan(load_spec(CONF / "unet3d.yaml"))
    assert sum(layer.params for layer in plan.layers if layer.kind != "norm") == 19_069_955
    assert plan.output_shapes["logits"] == (28, 44, 44, 3)  # the paper's 116x132x132 -> 28x44x44


def test_seed_unet_matches_the_hand_count():
    """The original U-Net's parameters summed by hand over its convs (kernel x cin x cout + bias;
    tests/reference/seed_unet_counts.py), 31,030,658; Keras counts the same for the hand-written
    model in tests/reference/seed_unet.py (tests/emit/test_seed_reference.py)."""
    plan = make_plan(load_spec(CONF / "unet.yaml"))
    assert plan.total_params == seed_unet_params() == 31_030_658
    for depth, filters in ((1, 8), (3, 64), (5, 16)):
        plan = make_plan(load_spec(CONF / "unet.yaml", [f"encoder.depth={depth}", f"encoder.filters={filters}",
                                                        "input.shape=[null,null,1]"]))
        assert plan.total_params == seed_unet_params(depth, filters), (depth, filters)


KUC_UNET = [
    "name=kuc_unet", "input.shape=[128,128,3]", "padding=same", "encoder.filters=64",
    "decoder.align=none", "decoder.upsample={type: resize, interpolation: bilinear, kernel_size: 3, activation: relu}",
    "heads=[{name: output, filters: 2, activation: softmax}]",
]


def test_plain_unet_matches_keras_unet_collection():
    """keras-unet-collection's unet_2d: two 3x3 convs a level, bilinear up-sampling then a 3x3
    conv, concat, 1x1 softmax head; built by that library, counted by Keras."""
    kuc = pytest.importorskip("keras_unet_collection.models", reason="pip install keras-unet-collection pillow")
    theirs = kuc.unet_2d((128, 128, 3), [64, 128, 256, 512, 1024], n_labels=2, stack_num_down=2, stack_num_up=2,
                         activation="ReLU", output_activation="Softmax", batch_norm=False, pool=True,
                         unpool="bilinear", backbone=None, name="unet")
    ours = make_plan(load_spec(CONF / "unet_same.yaml", KUC_UNET))
    assert ours.total_params == theirs.count_params() == 34_513_410
