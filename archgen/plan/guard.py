"""The size guard: refuse, before TensorFlow allocates anything, a model too big to build."""

from __future__ import annotations

from archgen.errors import PlanError
from archgen.plan.cost import WEIGHT_BYTES, fmt_bytes
from archgen.plan.ir import Plan

# 2e9 float32 parameters are 8 GB of weights: a third of this machine's memory before any
# optimizer state. Larger models are possible, but should be asked for.
DEFAULT_MAX_PARAMS = 2e9


def check_size(plan: Plan, max_params: float = DEFAULT_MAX_PARAMS) -> None:
    if plan.total_params > max_params:
        raise PlanError(
            f"{plan.total_params:,} parameters ({fmt_bytes(plan.total_params * WEIGHT_BYTES)} of float32 weights) "
            f"exceed the build limit of {max_params:,.0f}; pass --max-params {plan.total_params} to build it anyway",
            path="model")
