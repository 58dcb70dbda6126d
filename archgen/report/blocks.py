"""How the diagram tags what a level holds beyond plain convs: recurrent residual blocks,
squeeze-and-excitation and the transformer bottleneck (their notes are the kinds' own)."""

from __future__ import annotations

from archgen.planner.ir import Plan


def block_tags(plan: Plan, group: str) -> str:
    """`` R2 SE ViTx12``: what a level holds beyond plain convs, for its box in the diagram."""
    layers = [layer for layer in plan.layers if layer.group == group]
    tags = []
    if any(layer.name.endswith("_unit1_conv0") for layer in layers):
        tags.append("R2")
    if any(layer.kind == "scale" for layer in layers):
        tags.append("SE")
    attention = sum(layer.kind == "attention" for layer in layers)
    if attention:
        tags.append(f"ViTx{attention}")
    return "".join(" " + tag for tag in tags)
