"""The drawing pieces both diagrams share: pitch, box sizes and colours, and a box and an arrow as SVG."""

from __future__ import annotations

from math import log2
from typing import NamedTuple

from archgen.planner.ir import LayerPlan
from archgen.report.svg_text import xml_attr, xml_text

COL = 150          # column pitch: wide enough for a label like "bottleneck 28x28x1024"
MARGIN, TITLE_H, LABEL_H, ROW_GAP = 20, 34, 16, 28
MAX_H, MIN_H, DYNAMIC_H = 160.0, 14.0, 60.0  # box heights; run-time sizes get a fixed one
CHAR_W = 6.6       # width of one character of the 11px monospace font
# arrow kind -> (colour, dash pattern, legend text)
ARROWS = {
    "down": ("#c0392b", "", "down-sample (pool / strided conv)"),
    "up": ("#27ae60", "", "up-sample"),
    "skip": ("#7f8c8d", "6 4", "skip connection, labelled with its alignment"),
    "gated-skip": ("#8e44ad", "6 4", "skip through an attention gate (x)"),
    "residual": ("#e67e22", "", "residual shortcut around the level's convs"),
    "dense-skip": ("#7f8c8d", "2 3", "dense skip from an earlier node of the row (UNet++)"),
    "full-scale-down": ("#c0392b", "2 3", "full-scale skip from a finer level, max-pooled (UNet 3+)"),
    "full-scale-up": ("#27ae60", "2 3", "full-scale input from a deeper level, resized up (UNet 3+)"),
    "to-head": ("#2c6fbb", "", "output head"),
    "to-deep-head": ("#2c6fbb", "3 3", "deep-supervision output"),
}
FILLS = {"enc": "#d6e9f8", "bottleneck": "#f9e0b0", "dec": "#d5f0dc", "head": "#e8daef"}


class Box(NamedTuple):
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def right(self) -> float:
        return self.x + self.w


def box_sizes(layers: list[LayerPlan]) -> dict[str, tuple[float, float]]:
    """Box (width, height) per layer: height ~ first spatial size, width ~ log2(channels)."""
    known = [layer.shape[0] for layer in layers if layer.shape[0] is not None]
    scale = MAX_H / max(known) if known else 0.0
    out = {}
    for layer in layers:
        h = DYNAMIC_H if layer.shape[0] is None else max(MIN_H, layer.shape[0] * scale)
        out[layer.name] = (10 + 6 * log2(max(1, layer.shape[-1] or 1)), h)
    return out


def svg_box(cls: str, ident: str, box: Box, label: str, fill: str) -> str:
    return (f'<g class="{cls}" id={xml_attr(ident)}><title>{xml_text(label)}</title>'
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" '
            f'fill="{fill}" stroke="#333"/>'
            f'<text x="{box.cx:.1f}" y="{box.y - 4:.1f}" text-anchor="middle">{xml_text(label)}</text></g>')


def svg_arrow(kind: str, src: str, dst: str, points: list[tuple[float, float]], label: str = "") -> str:
    colour, dash, _ = ARROWS[kind]
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    text = ""
    if label:  # above the middle of the first segment (skips are straight lines)
        (x0, y0), (x1, _) = points[0], points[1]
        text = f'<text x="{(x0 + x1) / 2:.1f}" y="{y0 - 4:.1f}" text-anchor="middle">{xml_text(label)}</text>'
    return (f'<g class="{kind}" data-from={xml_attr(src)} data-to={xml_attr(dst)}>'
            f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"{dashed} '
            f'marker-end="url(#arrow-{kind})"/>{text}</g>')
