"""Plan -> pictures: a U-shaped SVG of the levels, and Graphviz DOT of every layer.

Stdlib only, so a diagram can be drawn without TensorFlow or Graphviz installed.
The SVG reads the plan's naming (``graph.py``): groups ``enc1..encN``, ``bottleneck``,
``decN..dec1``, ``head``; the align layer of a skip is ``decL_crop``/``decL_pad``/``decL_resize``.
"""

from __future__ import annotations

import re

from archgen.planner.ir import LayerPlan, Plan
from archgen.report import diagram_topology as topology
from archgen.report.backbone import backbone_frame
from archgen.report.blocks import block_tags, tag_legend
from archgen.report.data import fmt_shape
from archgen.report.diagram_levels import head_source, level_names, level_output, level_row
from archgen.report.diagram_svg import (ARROWS, CHAR_W, COL, FILLS, LABEL_H, MARGIN, ROW_GAP, TITLE_H, Box, box_sizes,
                                        svg_arrow, svg_box)
from archgen.report.svg_text import xml_text


def _level_name(plan: Plan, group: str) -> str:
    """A level's label: its group, or the tap's name where a backbone's stage output is the level."""
    out = level_output(plan, group)
    return out.name if out.kind == "tap" else group


def skip_label(plan: Plan, level: int) -> str | None:
    """None without a skip at ``level``, else how it is aligned (``"crop 88+88"``, ``""`` for none)."""
    group_of = {layer.name: layer.group for layer in plan.layers}
    dec = [layer for layer in plan.layers if layer.group == f"dec{level}"]
    if not any(group_of[i] == f"enc{level}" for layer in dec for i in layer.inputs):
        return None
    for layer in dec:
        # (UNet 3+ crops each input of a level by name: dec{level}_crop_enc{level} is the skip's.)
        if layer.name in (f"dec{level}_crop", f"dec{level}_pad", f"dec{level}_crop_enc{level}"):
            amounts = layer.attrs["cropping" if layer.kind == "crop" else "padding"]
            if not any(b or e for b, e in amounts):
                return ""  # sizes already match (same padding): nothing to say
            pairs = [f"{b}+{e}" for b, e in amounts]
            # Square crops are the usual case: say "crop 88+88" once, not once per axis.
            return f"{layer.kind} " + (pairs[0] if len(set(pairs)) == 1 else ", ".join(pairs))
        if layer.name == f"dec{level}_resize":
            return "resize"
    return ""


def gated(plan: Plan, level: int) -> bool:
    """Whether the skip into decoder ``level`` passes an attention gate (a multiply in the level)."""
    return any(layer.kind == "multiply" for layer in plan.layers if layer.group == f"dec{level}")


def residual_levels(plan: Plan) -> set[str]:
    """Levels with a residual shortcut: an add whose two inputs fork from one layer of the level
    (or of the level before it). A skip merged by addition, or an attention gate's sum, forks
    further away, in the encoder, and is not counted."""
    layers = {layer.name: layer for layer in plan.layers}
    order = level_names(plan)
    found = set()
    for layer in plan.layers:
        if layer.kind != "add" or layer.group not in order or len(layer.inputs) != 2:
            continue
        here = order.index(layer.group)
        allowed = {layer.group, order[here - 1] if here else "input"}
        a, b = (_ancestors(layers, name, allowed) for name in layer.inputs)
        if a & b:
            found.add(layer.group)
    return found


def _ancestors(layers: dict[str, LayerPlan], start: str, groups: set[str]) -> set[str]:
    """``start`` and the layers it reads from, through layers of ``groups`` only."""
    seen, stack = set(), [start]
    while stack:
        name = stack.pop()
        if name in seen or layers[name].group not in groups:
            continue
        seen.add(name)
        stack.extend(layers[name].inputs)
    return seen


def layout(plan: Plan) -> tuple[dict[str, Box], dict[str, Box], float]:
    """Level boxes, head boxes and the bottom of the U: a column per level, a row per depth."""
    names = level_names(plan)
    feats = {g: level_output(plan, g) for g in names}
    heads = [plan.layer(name) for name in plan.outputs.values()]  # outputs; not a head's inner layers
    size = box_sizes(list(feats.values()) + heads)
    head_rows: dict[int, list[LayerPlan]] = {}
    for h in heads:  # a head sits in the row of the level it reads
        head_rows.setdefault(level_row(plan, head_source(plan, h)), []).append(h)
    levels, head_boxes, y = {}, {}, float(TITLE_H)
    for row in range(plan.depth + 1):
        in_row = [g for g in names if level_row(plan, g) == row]
        for g in in_row:
            w, h = size[feats[g].name]
            levels[g] = Box(MARGIN + names.index(g) * COL + (COL - w) / 2, y + LABEL_H, w, h)
        # Heads reading one level sit side by side, so several heads do not stretch the row.
        for k, h in enumerate(head_rows.get(row, [])):
            w, bh = size[h.name]
            head_boxes[h.name] = Box(MARGIN + (len(names) + k) * COL + (COL - w) / 2, y + LABEL_H, w, bh)
        in_row_names = [feats[g].name for g in in_row] + [h.name for h in head_rows.get(row, [])]
        y += max(size[n][1] for n in in_row_names) + LABEL_H + ROW_GAP
    return levels, head_boxes, y


def _legend(y: float, kinds: list[str], tags: str = "") -> str:
    """The legend of the arrows the picture has, and no others; then what its level tags mean."""
    y = round(y)
    parts = ['<g class="legend">',
             f'<rect x="{MARGIN}" y="{y}" width="24" height="14" fill="{FILLS["enc"]}" stroke="#333"/>',
             f'<text x="{MARGIN + 34}" y="{y + 11}">level: height ~ spatial size, width ~ log2(channels)</text>']
    if tags:
        ty = y + 11 + 20 * (len(kinds) + 1)
        parts.append(f'<text class="tags" x="{MARGIN + 34}" y="{ty}">{xml_text(tags)}</text>')
    for i, (kind, (colour, dash, text)) in enumerate(((k, ARROWS[k]) for k in ARROWS if k in kinds), start=1):
        ly = y + 7 + 20 * i
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{MARGIN}" y1="{ly}" x2="{MARGIN + 24}" y2="{ly}" stroke="{colour}" '
                     f'stroke-width="2"{dashed} marker-end="url(#arrow-{kind})"/>'
                     f'<text x="{MARGIN + 34}" y="{ly + 4}">{xml_text(text)}</text>')
    return "".join(parts) + "</g>"


def plan_to_svg(plan: Plan) -> str:
    """A U-shaped SVG: encoder levels down the left, bottleneck, decoder up the right, heads.
    UNet++ is drawn as its grid of nested nodes instead (``diagram_topology``)."""
    if topology.is_nested(plan):
        body, bottom, width = topology.nested_body(plan)
        return _document(plan, body, bottom, width)
    names = level_names(plan)
    levels, heads, bottom = layout(plan)
    body = [svg_box("level", g, levels[g],
                 f"{_level_name(plan, g)} {fmt_shape(level_output(plan, g).shape)}{block_tags(plan, g)}",
                 FILLS[g[:3] if g != "bottleneck" else g]) for g in names]
    tags = tag_legend({tag for g in names for tag in block_tags(plan, g).split()})
    body += backbone_frame(plan, levels)
    # A backbone may have no level-1 tap (no enc1): the bottleneck's place in the U, not the depth,
    # says which steps go down.
    deepest = names.index("bottleneck") if "bottleneck" in names else plan.depth
    for a, b in zip(names, names[1:]):
        pa, pb = levels[a], levels[b]
        if names.index(b) <= deepest:  # down: out of the bottom, into the deeper box's side
            pts = [(pa.cx, pa.y + pa.h), (pa.cx, pb.y + pb.h / 2), (pb.x, pb.y + pb.h / 2)]
            body.append(svg_arrow("down", a, b, pts))
        else:  # up: out of the side, into the shallower box's bottom
            pts = [(pa.right, pa.y + pa.h / 2), (pb.cx, pa.y + pa.h / 2), (pb.cx, pb.y + pb.h)]
            body.append(svg_arrow("up", a, b, pts))
    for level in range(1, plan.depth + 1):
        label = skip_label(plan, level)
        if label is not None and f"enc{level}" in levels and f"dec{level}" in levels:
            e, d = levels[f"enc{level}"], levels[f"dec{level}"]
            y = e.y + min(e.h, d.h) / 2  # hits both boxes even when the decoder's is smaller
            kind = "gated-skip" if gated(plan, level) else "skip"
            label = " ".join(part for part in (label, "gated" if kind == "gated-skip" else "") if part)
            body.append(svg_arrow(kind, f"enc{level}", f"dec{level}", [(e.right, y), (d.x, y)], label))
    body += topology.full_scale_arrows(plan, levels)
    for g in sorted(residual_levels(plan), key=names.index):
        b = levels[g]  # a loop on the box's left edge: out near the bottom, back in near the top
        x0, top, bottom_y = b.x, b.y + min(6.0, b.h / 3), b.y + b.h - min(6.0, b.h / 3)
        body.append(svg_arrow("residual", g, g, [(x0, bottom_y), (x0 - 10, bottom_y), (x0 - 10, top), (x0, top)]))
    elbow = MARGIN + len(names) * COL + 12  # heads of one level fan out from one bend
    sources = {name: head_source(plan, plan.layer(name)) for name in heads}
    for name, box in heads.items():
        src = levels[sources[name]]
        # Leave below the middle, clear of the up arrow leaving there too; run under the heads
        # of the same level and enter from below, so no arrow crosses a head box.
        y0 = src.y + src.h * 0.75
        under = max([y0] + [b.y + b.h for n, b in heads.items() if sources[n] == sources[name]]) + 10
        pts = [(src.right, y0), (elbow, y0), (elbow, under), (box.cx, under), (box.cx, box.y + box.h)]
        # A head's layer is named after its output, which may equal a level's box id ("dec1");
        # the prefix keeps the SVG's ids unique.
        deep = sources[name] != level_names(plan)[-1] and sources[name].startswith(("dec", "bottleneck")) and any(
            sources[other] == level_names(plan)[-1] for other in heads)
        body.append(svg_arrow("to-deep-head" if deep else "to-head", sources[name], f"head_{name}", pts))
        label = f"{name} {fmt_shape(plan.layer(name).shape)}"
        body.append(svg_box("head", f"head_{name}", box, label, FILLS["head"]))
    # Head labels are centred on narrow boxes and can be long ("logits_dec3 100x100x2").
    label_ends = [b.cx + CHAR_W / 2 * len(f"{n} {fmt_shape(plan.layer(n).shape)}") for n, b in heads.items()]
    width = max([2 * MARGIN + (len(names) + 1) * COL, 420] + [end + MARGIN for end in label_ends])
    return _document(plan, body, bottom, width, tags)


def _document(plan: Plan, body: list[str], bottom: float, width: float, tags: str = "") -> str:
    """The SVG around the boxes and arrows: markers, title, and the legend of the arrows drawn."""
    label_ends = [float(x) + CHAR_W / 2 * len(t) for x, t in
                  re.findall(r'<text x="([0-9.]+)" y="[0-9.]+" text-anchor="middle">([^<]*)</text>', "".join(body))]
    width = max([width, 420] + [end + MARGIN for end in label_ends])
    kinds = sorted({m for m in re.findall(r'<g class="([a-z-]+)" data-from', "".join(body))}, key=list(ARROWS).index)
    height = bottom + 20 * (len(kinds) + 1 + bool(tags)) + MARGIN
    width = max(width, MARGIN + 34 + CHAR_W * len(tags) + MARGIN)
    markers = "".join(f'<marker id="arrow-{k}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" '
                      f'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>'
                      for k, (c, _, _) in ARROWS.items())
    title = (f"{plan.name}: input {fmt_shape(plan.input_shape)} -> "
             + ", ".join(f"{h} {fmt_shape(s)}" for h, s in plan.output_shapes.items()))
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" font-family="monospace" font-size="11">',
        f"<defs>{markers}</defs>",
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text class="title" x="{MARGIN}" y="{MARGIN + 4}" font-size="14">{xml_text(title)}</text>',
        *body, _legend(bottom, kinds, tags), "</svg>\n"])


def _dot_quote(text: str) -> str:
    """A DOT string literal; a newline becomes DOT's centred line break."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def plan_to_dot(plan: Plan) -> str:
    """Graphviz DOT of every layer (name, kind, shape), one cluster per group, edges from inputs."""
    lines = [f"digraph {_dot_quote(plan.name)} {{", "  node [shape=box, fontname=monospace, fontsize=10];"]
    groups: dict[str, list[LayerPlan]] = {}
    for layer in plan.layers:
        groups.setdefault(layer.group, []).append(layer)
    for group, layers in groups.items():
        lines.append(f"  subgraph {_dot_quote('cluster_' + group)} {{")
        lines.append(f"    label={_dot_quote(group)};")
        for layer in layers:
            label = _dot_quote(f"{layer.name}\n{layer.kind} {fmt_shape(layer.shape)}")
            lines.append(f"    {_dot_quote(layer.name)} [label={label}];")
        lines.append("  }")
    lines += [f"  {_dot_quote(i)} -> {_dot_quote(layer.name)};" for layer in plan.layers for i in layer.inputs]
    return "\n".join(lines + ["}"]) + "\n"
