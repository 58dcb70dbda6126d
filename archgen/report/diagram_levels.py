"""The plan's levels as both diagrams read them, from its naming (``planner/graph.py``): groups
``enc1..encN``, ``bottleneck``, ``decN..dec1`` and ``head``."""

from __future__ import annotations

from archgen.planner.ir import LayerPlan, Plan


def level_names(plan: Plan) -> list[str]:
    """Levels in U order: down the encoder, the bottleneck, up the decoder."""
    d = plan.depth
    present = {layer.group for layer in plan.layers}  # a decoder level no head needs is pruned
    names = [f"enc{i}" for i in range(1, d + 1)] + ["bottleneck"] + [f"dec{i}" for i in range(d, 0, -1)]
    return [name for name in names if name in present]


def level_output(plan: Plan, group: str) -> LayerPlan:
    """The level's feature map: its last layer, except an encoder's down-sampling and the padding
    before it (they belong to the step to the next level, and their output is not what the skip
    carries)."""
    down = (f"{group}_pool", f"{group}_down")
    return [layer for layer in plan.layers if layer.group == group and not layer.name.startswith(down)][-1]


def head_source(plan: Plan, head: LayerPlan) -> str:
    """The group a head reads, through the head's own layers (a UNet 3+ deep head resizes first)."""
    while head.group == "head":
        head = plan.layer(head.inputs[0])
    return head.group


def level_row(plan: Plan, group: str) -> int:
    """encL and decL share row L-1 (so a skip is a horizontal line); the bottleneck is the last row."""
    return plan.depth if group == "bottleneck" else int(group[3:]) - 1
