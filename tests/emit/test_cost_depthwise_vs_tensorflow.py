"""The planner's parameters and FLOPs for ConvNeXt blocks (depthwise convs, MedNeXt's up blocks) and
SegResNet's pre-activation blocks and linear up-sampling, against TensorFlow's view of the built model.

2D networks: in 3D a depthwise conv is a Conv3D of one group per channel, which TensorFlow compiles
with XLA on the CPU, and the profiler counts nothing inside an XLA cluster (archgen's
DepthwiseConvTranspose is such a grouped conv in 2D too, so the profiler leaves it out of its total).
"""

from __future__ import annotations

import re

import pytest

from archgen.planner import make_plan
from archgen.config import load_spec, validate
from tests.conftest import CONF

tf = pytest.importorskip("tensorflow")
pytest.importorskip("torch")  # tests.peers.test_monai_mednext builds MONAI's networks
pytest.importorskip("monai")
from archgen.emit import emit_model  # noqa: E402
from tests.emit.test_cost_vs_tensorflow import tensorflow_flops  # noqa: E402
from tests.peers.test_monai_mednext import mednext_data  # noqa: E402

# The layer kinds whose FLOPs are one op each, and that op's name in the profiler's scopes.
OPS = {"conv": "convolution", "depthwise_conv": "depthwise"}


def plans():
    return {"mednext_s_2d": make_plan(validate(mednext_data("S", 3, shape=(64, 48, 1)))),
            "segresnet_2d": make_plan(load_spec(CONF / "peers" / "monai_segresnet_2d.yaml",
                                                ["input.shape=[64,48,1]"]))}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mednext_s_2d", "segresnet_2d"])
def test_parameters_and_flops_against_tensorflow(name):
    plan = plans()[name]
    model = emit_model(plan)
    assert model.count_params() == plan.total_params
    theirs, per_op = tensorflow_flops(model, plan.input_shape)
    checked = 0
    for layer in plan.layers:
        if layer.kind in OPS:
            scope = re.compile(rf"/{layer.name}(_\d+)?/{OPS[layer.kind]}$")
            assert [v for k, v in per_op.items() if scope.search(k)] == [layer.flops], layer.name
            checked += layer.kind == "depthwise_conv"
    assert checked >= (8 if name.startswith("mednext") else 0)
    # The profiler adds bias adds, GELU's and the norms' elementwise ops and leaves out the up
    # blocks' depthwise transposed convs: 2% apart here.
    assert abs(theirs - plan.total_flops) / theirs < 0.03, (plan.total_flops, theirs)
