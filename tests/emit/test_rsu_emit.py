"""rsu blocks and fused heads in Keras: every layer's shape and parameters as planned, in 1D, 2D
(valid padding, with its crops) and 3D."""

from __future__ import annotations

import numpy as np
import pytest

from archgen.planner import make_plan
from tests.planner.test_rsu import config

pytest.importorskip("keras")
from archgen.emit import emit_model  # noqa: E402
from tests.emit.test_emit_plan_agree import assert_model_matches_plan  # noqa: E402


@pytest.mark.parametrize("shape, padding, interpolation", [
    ((90, 90, 1), "valid", "bilinear"),
    ((32, 1), "same", "linear"),
    ((8, 8, 16, 1), "same", "nearest"),
])
def test_rsu_networks_match_their_plans(shape, padding, interpolation):
    block = {"type": "rsu", "height": [1, "dilated"], "mid_filters": [4, 4], "dilations": [1, 2, 3],
             "interpolation": interpolation, "norm": "batch"}
    plan = make_plan(config(block, shape=shape, padding=padding,
                            fuse={"levels": [1, 2], "interpolation": interpolation, "outputs": True}))
    model = emit_model(plan)
    assert_model_matches_plan(model, plan)
    ys = model(np.zeros((1, *shape), "float32"))
    ys = ys if isinstance(ys, (list, tuple)) else list(ys.values()) if isinstance(ys, dict) else [ys]
    assert [tuple(y.shape[1:]) for y in ys] == list(plan.output_shapes.values())
