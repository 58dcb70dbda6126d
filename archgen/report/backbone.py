"""What the summary says about a keras.applications backbone beyond its rows."""

from __future__ import annotations

from archgen.backbones import BACKBONES
from archgen.planner.ir import Plan
from archgen.report.svg_text import xml_text

FRAME_PAD = 10  # between the frame and the tap boxes it holds
LABEL_ROOM = 18  # above a box: its label


def backbone_lines(plan: Plan) -> list[str]:
    """How the backbone's figures were found and what its input wants; nothing without a backbone."""
    lines = []
    for layer in plan.layers:
        if layer.kind == "backbone":
            row = BACKBONES[layer.attrs["backbone"]]
            taps = ", ".join(f"s{t.stride} {t.channels}ch" for t in row.taps)
            lines.append(f"backbone {row.name}: keras.applications.{row.constructor}(include_top=False), taps {taps}; "
                         f"params and FLOPs from archgen's table; memory counts its taps, not its inner activations; "
                         f"the receptive field counts it as reading the whole input (at an open size: its stride); "
                         f"input {row.preprocessing}")
    return lines


def backbone_frame(plan: Plan, levels: dict) -> list[str]:
    """The SVG of a backbone: one dashed block around the levels its taps make (encoder side and
    bottleneck), titled with the application, its parameters and weights; nothing without one."""
    body = next((layer for layer in plan.layers if layer.kind == "backbone"), None)
    if body is None:
        return []
    taps = [levels[layer.group] for layer in plan.layers if layer.kind == "tap" and layer.group in levels]
    # Just above the top box's label (which stays inside), below the picture's title; the frame's own
    # title goes at its bottom left, where the U leaves room.
    x0, y0 = min(b.x for b in taps) - FRAME_PAD, min(b.y for b in taps) - LABEL_ROOM
    x1, y1 = max(b.right for b in taps) + FRAME_PAD, max(b.y + b.h for b in taps) + FRAME_PAD + 10
    a = body.attrs
    title = f"backbone {a['constructor']}: {body.params:,} params, weights {a['weights'] or 'none'}"
    return [f'<g class="backbone" id="backbone"><title>{xml_text(title)}</title>'
            f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" rx="8" '
            f'fill="none" stroke="#2c6fbb" stroke-width="1.5" stroke-dasharray="8 4"/>'
            f'<text x="{x0 + 6:.1f}" y="{y1 - 5:.1f}" fill="#2c6fbb">{xml_text(title)}</text></g>']
