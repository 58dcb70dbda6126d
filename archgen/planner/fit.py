"""Memory-budget solver: the largest training batch, or the largest legal input, that fits."""

from __future__ import annotations

from archgen.planner.build import make_plan, size_rule
from archgen.planner.cost import activation_bytes, training_bytes
from archgen.planner.ir import Plan
from archgen.planner.profiles import MemoryProfile
from archgen.config.model import ArchSpec


def max_batch(plan: Plan, budget: int, dtype: str = "float32", optimizer: str = "adam",
              profile: MemoryProfile | None = None) -> int:
    """The largest batch whose training estimate (by ``profile``) fits ``budget`` bytes (0 if none does)."""
    per_sample = activation_bytes(plan, 1, dtype, profile)
    if per_sample is None:
        raise ValueError("a run-time input size has no memory estimate")
    fixed = training_bytes(plan, 1, dtype, optimizer, profile) - per_sample
    return max(0, (budget - fixed) // per_sample)


def with_size(spec: ArchSpec, n: int) -> ArchSpec:
    """``spec`` with every spatial size set to ``n``."""
    shape = [n] * spec.ndim + [spec.input.shape[-1]]
    return spec.model_copy(update={"input": spec.input.model_copy(update={"shape": shape})})


def max_size(spec: ArchSpec, budget: int, batch: int = 1, dtype: str = "float32",
             optimizer: str = "adam", profile: MemoryProfile | None = None) -> Plan | None:
    """The plan at the largest legal size (the same on every spatial axis) whose training
    estimate for ``batch`` fits ``budget``; None when even the smallest legal size does not."""
    rule = size_rule(spec)
    if rule is None:
        return None

    def plan_at(k: int) -> Plan:
        return make_plan(with_size(spec, rule.period * k + rule.offset))

    def fits(k: int) -> bool:
        return training_bytes(plan_at(k), batch, dtype, optimizer, profile) <= budget

    lo = rule.k_min
    if not fits(lo):
        return None
    hi = lo + 1
    while fits(hi):  # activations grow with the size, so the first miss bounds the answer
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return plan_at(lo)
