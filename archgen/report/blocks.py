"""How reports name the layers of squeeze-and-excitation, recurrent residual blocks and the
transformer bottleneck: notes for the summary table and short tags for the diagram's level boxes."""

from __future__ import annotations

from archgen.planner.ir import LayerPlan, Plan


def block_note(layer: LayerPlan) -> str:
    """The summary's note for a layer kind these blocks add; "" for any other kind."""
    a = layer.attrs
    if layer.kind == "attention":
        return f"{a['heads']} heads, key {a['key_dim']}"
    if layer.kind == "dense":
        return f"{a['units']} units"
    if layer.kind == "global_pool":
        return "global mean"
    if layer.kind == "scale":
        return "x SE gate"
    if layer.kind == "position_embedding":
        return "learned"
    return ""


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
