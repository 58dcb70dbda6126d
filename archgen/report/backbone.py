"""What the summary says about a keras.applications backbone beyond its rows."""

from __future__ import annotations

from archgen.backbones import BACKBONES
from archgen.planner.ir import Plan


def backbone_lines(plan: Plan) -> list[str]:
    """How the backbone's figures were found and what its input wants; nothing without a backbone."""
    lines = []
    for layer in plan.layers:
        if layer.kind == "backbone":
            row = BACKBONES[layer.attrs["backbone"]]
            taps = ", ".join(f"s{t.stride} {t.channels}ch" for t in row.taps)
            lines.append(f"backbone {row.name}: keras.applications.{row.constructor}(include_top=False), taps {taps}; "
                         f"params and FLOPs from archgen's table; memory counts its taps, not its inner activations; "
                         f"input {row.preprocessing}")
    return lines
