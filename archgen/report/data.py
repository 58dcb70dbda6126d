"""Plan -> plain data (the ``--json`` output). Reads only the Plan."""

from __future__ import annotations

from typing import Any

from archgen.planner.build import AXIS_NAMES
from archgen.planner.ir import Plan

GROUP_TITLES = {"input": "input", "bottleneck": "bottleneck", "head": "heads"}


def fmt_shape(shape: tuple) -> str:
    """``(388, 388, 2)`` -> ``388x388x2``; a run-time size shows as ``?``."""
    return "x".join("?" if s is None else str(s) for s in shape)


def group_title(group: str) -> str:
    """``enc2`` -> ``encoder level 2``; ``dec3`` -> ``decoder level 3``."""
    if group.startswith("enc"):
        return f"encoder level {group[3:]}"
    if group.startswith("dec"):
        return f"decoder level {group[3:]}"
    if group[:1] == "x" and "_" in group:  # a UNet++ nested node x{i}_{j}: level i + 1, column j
        row, column = group[1:].split("_", 1)
        if row.isdigit() and column.isdigit():
            return f"nested node {group} (level {int(row) + 1}, column {column})"
    return GROUP_TITLES.get(group, group)


def size_rules(plan: Plan) -> dict[str, Any] | None:
    """The legal-size rule as text and numbers, or None when none was derived."""
    rule = plan.sizes
    if rule is None:
        return None
    axis = AXIS_NAMES[plan.ndim][0] if plan.ndim == 1 else "n"
    return {
        "rule": rule.describe(axis),
        "period": rule.period,
        "offset": rule.offset,
        "k_min": rule.k_min,
        "first": rule.smallest(5),
        "outputs": {head: rule.describe_output(head, axis) for head in rule.outputs},
    }


def legal_sizes(plan: Plan, count: int) -> dict[str, Any]:
    """The first ``count`` legal sizes of each axis with every head's output size."""
    rule = plan.sizes
    if rule is None:
        return {"rule": None, "sizes": []}
    return {"rule": rule.describe("n"),
            "sizes": [{"input": n, "outputs": {h: rule.output_size(h, n) for h in rule.outputs}}
                      for n in rule.smallest(count)]}


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """Everything a script needs: totals, input/outputs, and every layer."""
    layers = []
    for layer in plan.layers:
        row: dict[str, Any] = {
            "name": layer.name,
            "kind": layer.kind,
            "group": layer.group,
            "inputs": list(layer.inputs),
            "output_shape": list(layer.shape),
            "params": layer.params,
            "flops": layer.flops,
        }
        if layer.kind == "crop":
            row["crop"] = [list(pair) for pair in layer.attrs["cropping"]]
        elif layer.kind == "pad":
            row["pad"] = [list(pair) for pair in layer.attrs["padding"]]
        layers.append(row)
    return {
        "name": plan.name,
        "input_shape": list(plan.input_shape),
        "outputs": {head: list(shape) for head, shape in plan.output_shapes.items()},
        "total_params": plan.total_params,
        "total_flops": plan.total_flops,
        "flops_convention": "2 x multiply-adds of conv layers, one sample",
        "legal_sizes": size_rules(plan),
        "layers": layers,
    }
