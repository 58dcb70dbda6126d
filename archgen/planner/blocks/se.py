"""Squeeze-and-excitation (Hu et al. 2018), an option of every block kind.

``{prefix}_se_pool`` averages the block's output over every spatial position (size 1 on each axis,
channels kept), ``{prefix}_se_reduce`` is a 1x1 conv to channels // ratio with the SE's activation,
``{prefix}_se_expand`` a 1x1 conv back to the channels with a sigmoid, and ``{prefix}_se_scale``
multiplies the block's output by that gate, broadcast over the positions. A 1x1 conv on a 1x1 map
is a Dense layer on the pooled vector (same weights, same count) that keeps the map's rank.
"""

from __future__ import annotations

from archgen.config.model import SqueezeExcite


def plan_se(g, x: str, prefix: str, se: SqueezeExcite, *, group: str, path: str) -> str:
    """Gate the channels of ``x``; returns the gated tensor's name."""
    path = path + ".se"
    channels = g.channels(x)
    reduced = max(1, channels // se.ratio)
    s = g.add(f"{prefix}_se_pool", "global_pool", (x,), channels, group=group, path=path)
    s = g.conv(f"{prefix}_se_reduce", s, reduced, kernel=1, activation=se.activation, group=group, path=path)
    s = g.conv(f"{prefix}_se_expand", s, channels, kernel=1, activation="sigmoid", group=group, path=path)
    return g.add(f"{prefix}_se_scale", "scale", (x, s), channels, group=group, path=path)


def sizeless(nodes) -> set[str]:
    """Layers whose spatial size is 1 whatever the input's: a global pool and the layers that read
    only from one (the SE's 1x1 convs). Their size is known even where the input's is left open."""
    found: set[str] = set()
    for node in nodes:
        if node.kind == "global_pool" or (node.inputs and node.kind != "scale" and all(i in found for i in node.inputs)):
            found.add(node.name)
    return found
