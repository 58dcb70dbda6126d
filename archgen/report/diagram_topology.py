"""The SVG of decoder topologies: UNet++'s grid of nested nodes and UNet 3+'s full-scale arrows.

Reads the plan's naming (``planner/topology.py``): UNet++ nodes are groups ``x{i}_{j}`` (row ``i`` =
encoder level ``i + 1``, column ``j``; column 0 is the encoder, ``enc{i+1}`` or the bottleneck);
UNet 3+ inputs are layers ``dec{L}_from_{source}_...`` with ``source`` an ``enc{j}``, a ``dec{k}`` or
the bottleneck.
"""

from __future__ import annotations

import re

from archgen.planner.ir import Plan
from archgen.report.data import fmt_shape
from archgen.report.diagram_levels import head_source, level_output
from archgen.report.diagram_svg import (CHAR_W, COL, FILLS, LABEL_H, MARGIN, ROW_GAP, TITLE_H, Box, box_sizes, svg_arrow,
                                        svg_box)

NESTED = re.compile(r"x(\d+)_(\d+)$")
FULL_SCALE = re.compile(r"dec(\d+)_from_(enc\d+|dec\d+|bottleneck)_")
BUS_STEP = 6.0  # vertical spacing of the dense-skip buses under a row


def is_nested(plan: Plan) -> bool:
    return any(NESTED.match(layer.group) for layer in plan.layers)


def _cell(plan: Plan, group: str) -> tuple[int, int] | None:
    """(row, column) of a UNet++ grid node, None for a group outside the grid (input, head)."""
    if group == "bottleneck":
        return plan.depth, 0
    if group.startswith("enc") and group[3:].isdigit():
        return int(group[3:]) - 1, 0
    match = NESTED.match(group)
    return (int(match[1]), int(match[2])) if match else None


def nested_body(plan: Plan) -> tuple[list[str], float, float]:
    """Boxes and arrows of a UNet++ plan laid out as its grid; returns (body, bottom, right edge)."""
    cells = {}
    for layer in plan.layers:
        cell = _cell(plan, layer.group)
        if cell is not None:
            cells[cell] = layer.group
    feats = {g: level_output(plan, g) for g in cells.values()}
    heads = [plan.layer(name) for name in plan.outputs.values()]  # outputs; not a head's inner layers
    size = box_sizes(list(feats.values()) + heads)
    columns = max(j for _, j in cells) + 1
    head_rows: dict[int, list] = {}
    for h in heads:
        head_rows.setdefault(_cell(plan, head_source(plan, h))[0], []).append(h)
    # Heads side by side, each as wide as its label ("logits_x0_2 128x128x2"), so labels do not touch.
    pitch = max([COL] + [CHAR_W * len(f"{h.name} {fmt_shape(h.shape)}") + 30 for h in heads])
    boxes: dict[str, Box] = {}
    head_boxes: dict[str, Box] = {}
    y = float(TITLE_H)
    bus_room = BUS_STEP * (plan.depth + 1 + max((len(v) for v in head_rows.values()), default=0))
    for row in range(plan.depth + 1):
        in_row = sorted((j, g) for (i, j), g in cells.items() if i == row)
        for j, g in in_row:
            w, h = size[feats[g].name]
            boxes[g] = Box(MARGIN + j * COL + (COL - w) / 2, y + LABEL_H, w, h)
        for k, h in enumerate(head_rows.get(row, [])):
            w, bh = size[h.name]
            head_boxes[h.name] = Box(MARGIN + columns * COL + k * pitch + (pitch - w) / 2, y + LABEL_H, w, bh)
        names = [feats[g].name for _, g in in_row] + [h.name for h in head_rows.get(row, [])]
        if names:
            y += max(size[n][1] for n in names) + LABEL_H + ROW_GAP + bus_room
    body = [svg_box("level", g, boxes[g], f"{g} {fmt_shape(feats[g].shape)}",
                 FILLS["bottleneck" if g == "bottleneck" else "enc" if j == 0 else "dec"])
            for (i, j), g in sorted(cells.items())]
    for (i, j), g in sorted(cells.items()):
        if j == 0 and (i + 1, 0) in cells:  # the encoder's down-sampling
            a, b = boxes[g], boxes[cells[(i + 1, 0)]]
            # Round the left, clear of the deeper box's label: out of the bottom, into its side.
            x = min(a.x, b.x) - 10
            body.append(svg_arrow("down", g, cells[(i + 1, 0)], [(a.cx, a.y + a.h), (a.cx, a.y + a.h + 6),
                                                              (x, a.y + a.h + 6), (x, b.y + b.h / 2),
                                                              (b.x, b.y + b.h / 2)]))
        if j == 0:
            continue
        below = cells.get((i + 1, j - 1))
        if below is not None:  # up from the node below-left, into this node's bottom
            a, b = boxes[below], boxes[g]
            body.append(svg_arrow("up", below, g, [(a.right, a.y), (b.x + b.w / 3, b.y + b.h)]))
        for k in range(j):  # the row's earlier nodes: the one before beside it, the others on a bus below
            source = cells.get((i, k))
            if source is None:
                continue
            a, b = boxes[source], boxes[g]
            crop = _crop_label(plan, g, source)
            if k == j - 1:
                mid = a.y + min(a.h, b.h) / 2
                body.append(svg_arrow("skip", source, g, [(a.right, mid), (b.x, mid)], crop))
            else:
                row_bottom = max(box.y + box.h for gg, box in boxes.items() if _cell(plan, gg)[0] == i)
                bus = row_bottom + ROW_GAP / 2 + BUS_STEP * k
                x = b.x + b.w * (0.45 + 0.4 * (k + 1) / j)  # one entry per bus, right of the up arrow's
                body.append(svg_arrow("dense-skip", source, g, [(a.cx, a.y + a.h), (a.cx, bus), (x, bus),
                                                             (x, b.y + b.h)]))
    lanes: dict[int, int] = {}
    for name, box in head_boxes.items():
        source = head_source(plan, plan.layer(name))
        src, (row, column) = boxes[source], _cell(plan, source)
        last = column == max(jj for ii, jj in cells if ii == row)
        deep = row == 0 and not last
        if last and box.x - src.right <= pitch:  # beside its node: straight across
            mid = src.y + src.h / 2
            pts = [(src.right, mid), (box.x, mid)]
        else:  # under the row's dense-skip buses, then up into the head
            lanes[row] = lanes.get(row, 0) + 1
            row_bottom = max(b.y + b.h for gg, b in boxes.items() if _cell(plan, gg)[0] == row)
            lane = row_bottom + ROW_GAP / 2 + BUS_STEP * (plan.depth + lanes[row])
            # Out of the right side, low, clear of the dense skips entering the node's bottom.
            x0, y0 = src.right + 6 + 2 * lanes[row], src.y + src.h * 0.85
            pts = [(src.right, y0), (x0, y0), (x0, lane), (box.cx, lane), (box.cx, box.y + box.h)]
        body.append(svg_arrow("to-deep-head" if deep else "to-head", source, f"head_{name}", pts))
        body.append(svg_box("head", f"head_{name}", box, f"{name} {fmt_shape(plan.layer(name).shape)}", FILLS["head"]))
    right = MARGIN + columns * COL + max((len(v) for v in head_rows.values()), default=0) * pitch + MARGIN
    return body, y, right


def _crop_label(plan: Plan, node: str, source: str) -> str:
    try:
        crop = plan.layer(f"{node}_crop_{source if source.startswith('x') else _as_cell(plan, source)}")
    except KeyError:
        return ""
    pairs = [f"{b}+{e}" for b, e in crop.attrs["cropping"]]
    return "crop " + (pairs[0] if len(set(pairs)) == 1 else ", ".join(pairs))


def _as_cell(plan: Plan, group: str) -> str:
    i, j = _cell(plan, group)
    return f"x{i}_{j}"


def full_scale_arrows(plan: Plan, levels: dict[str, Box]) -> list[str]:
    """UNet 3+'s inputs that the U's own arrows do not show: finer encoder levels max-pooled into a
    decoder level, and levels deeper than the one just below resized up into it."""
    sources: dict[str, list[str]] = {}
    for layer in plan.layers:
        match = FULL_SCALE.match(layer.name)
        if match and match[2] not in sources.setdefault(f"dec{match[1]}", []):
            sources[f"dec{match[1]}"].append(match[2])
    out = []
    for dst, srcs in sources.items():
        level = int(dst[3:])
        below = "bottleneck" if level == plan.depth else f"dec{level + 1}"
        d = levels.get(dst)
        pooled = [s for s in srcs if s.startswith("enc") and int(s[3:]) < level and s in levels]
        lifted = [s for s in srcs if s != below and not s.startswith("enc") and s in levels]
        for n, s in enumerate(pooled, start=1):  # into the left edge, spread down it
            a = levels[s]
            y = d.y + d.h * (0.5 + n) / (len(pooled) + 1.5)
            out.append(svg_arrow("full-scale-down", s, dst, [(a.right, a.y + a.h * 0.8), (d.x, y)]))
        for n, s in enumerate(lifted, start=1):  # into the bottom, left of the up arrow from below
            a = levels[s]
            x = d.x + d.w * n / (2 * len(lifted) + 2)
            out.append(svg_arrow("full-scale-up", s, dst, [(a.right, a.y), (x, d.y + d.h)]))
    return out
