"""The size guard: refuse, before TensorFlow allocates anything, a model too big to build."""

from __future__ import annotations

import math

from archgen.errors import PlanError
from archgen.planner.cost import DTYPE_BYTES, WEIGHT_BYTES, fmt_bytes, inference_peak_elements, layer_elements
from archgen.planner.ir import Plan

# 2e9 float32 parameters are 8 GB of weights: a third of this machine's memory before any
# optimizer state. Larger models are possible, but should be asked for.
DEFAULT_MAX_PARAMS = 2e9
# Variants one sweep may expand to (--max-variants): a typo like range(0,100000) is refused, not run.
DEFAULT_MAX_VARIANTS = 10_000
# The largest single accelerators hold 141-256 GB (H200, B200, MI300X/MI325X); an inference
# peak above this at batch 1 fits on no device anyone has.
DEFAULT_MAX_MEMORY = 256 * 2**30
# Keras, TensorFlow and ONNX count elements in int64: a tensor must stay well inside it.
MAX_ELEMENTS = 2**62


def check_size(plan: Plan, max_params: float = DEFAULT_MAX_PARAMS, max_memory: float = DEFAULT_MAX_MEMORY) -> None:
    """Refuse a plan over ``max_params`` parameters, over ``max_memory`` bytes of inference peak at
    batch 1 (float32), or with a tensor too large to index."""
    for layer in plan.layers:
        elements = math.prod(s for s in layer.shape if s is not None)
        if elements > MAX_ELEMENTS or layer.params > MAX_ELEMENTS:
            raise PlanError(f"layer {layer.name} would hold {elements:,} values, more than a 64-bit index counts",
                            path="input.shape", value=list(plan.input_shape))
    if plan.total_params > max_params:
        raise PlanError(
            f"{plan.total_params:,} parameters ({fmt_bytes(plan.total_params * WEIGHT_BYTES)} of float32 weights) "
            f"exceed the build limit of {max_params:,.0f}; pass --max-params {plan.total_params} to build it anyway",
            path="model")
    elements = layer_elements(plan)
    if elements is None:  # run-time sizes: nothing to measure before a size is known
        return
    peak = inference_peak_elements(plan, elements) * DTYPE_BYTES["float32"]
    if peak > max_memory:
        raise PlanError(
            f"its inference peak at batch 1 is {fmt_bytes(peak)}, more than any single device holds "
            f"(limit {fmt_bytes(int(max_memory))}); pass --max-memory {math.ceil(peak / 2**30)}GiB to build it anyway",
            path="model")
