"""How the diagram tags what a level holds beyond plain convs: the norm after its convs,
recurrent residual blocks, rsu blocks, squeeze-and-excitation and the transformer bottleneck
(their notes are the kinds' own)."""

from __future__ import annotations

from archgen.planner.ir import Plan

NORMS = {"batch": "BN", "instance": "IN", "group": "GN", "layer": "LN"}
MEANINGS = {"BN": "batch norm", "IN": "instance norm", "GN": "group norm", "LN": "layer norm",
            "R2": "recurrent residual block", "RSU": "residual U-block", "SE": "squeeze-and-excitation",
            "ViTxN": "N transformer layers"}


def block_tags(plan: Plan, group: str) -> str:
    """`` BN R2 SE ViTx12``: what a level holds beyond plain convs, for its box in the diagram. The
    norm is that of the level's convs (and up-sampling), not of an attention gate or a
    transformer layer."""
    layers = [layer for layer in plan.layers if layer.group == group]
    tags = []
    for layer in layers:
        if layer.kind == "norm" and "_attn_" not in layer.name and "_vit" not in layer.name:
            tag = NORMS.get(layer.attrs.get("norm"))
            if tag is not None and tag not in tags:
                tags.append(tag)
    if any(layer.name.endswith("_unit1_conv0") for layer in layers):
        tags.append("R2")
    if any(layer.name.endswith("_rsu_bottleneck_conv") for layer in layers):
        tags.append("RSU")
    if any(layer.kind == "scale" for layer in layers):
        tags.append("SE")
    attention = sum(layer.kind == "attention" for layer in layers)
    if attention:
        tags.append(f"ViTx{attention}")
    return "".join(" " + tag for tag in tags)


def tag_legend(tags: set[str]) -> str:
    """``tags: BN batch norm, SE squeeze-and-excitation``: what the tags drawn mean; empty for none."""
    shown = [t for t in MEANINGS if t in {"ViTxN" if t.startswith("ViTx") else t for t in tags}]
    return "tags: " + ", ".join(f"{t} {MEANINGS[t]}" for t in shown) if shown else ""
