"""Every conf/ example builds with Keras and runs a forward pass at its smallest legal size."""

from __future__ import annotations

import numpy as np
import pytest

from archgen.planner import make_plan
from archgen.config import load_spec
from tests.conftest import CONF
from tests.emit.test_emit_plan_agree import assert_model_matches_plan

pytest.importorskip("keras")
from archgen.emit import emit_model  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_example_builds_and_runs(path):
    spec = load_spec(path)
    rule = make_plan(spec).sizes
    small = [rule.first] * spec.ndim
    plan = make_plan(load_spec(path, [f"input.shape=[{','.join(map(str, small))},{spec.input.shape[-1]}]"]))
    model = emit_model(plan)
    assert_model_matches_plan(model, plan)
    ys = model(np.random.default_rng(0).normal(size=(2, *plan.input_shape)).astype("float32"))
    ys = ys if isinstance(ys, (list, tuple)) else [ys]
    for y, (head, shape) in zip(ys, plan.output_shapes.items()):
        assert tuple(y.shape) == (2, *shape), head
        assert shape[:-1] == tuple(rule.output_size(head, n) for n in small)
