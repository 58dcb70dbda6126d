"""The original U-Net's sizes, parameters and FLOPs by hand, from its layers alone.

Ronneberger, Fischer, Brox 2015 (arXiv:1505.04597), section 2 and Fig. 1: per level two unpadded
3x3 ReLU convs (with biases), a 2x2 max-pool with stride 2 between levels, channels doubling from
``filters`` down to the bottleneck; up the expansive path a 2x2 stride-2 up-convolution halving the
channels, the centre-cropped skip concatenated beside it, two 3x3 convs; a 1x1 conv to the classes.
Written without archgen or Keras, so the numbers archgen prints can be checked against them.
"""

from __future__ import annotations


def conv_params(kernel: int, cin: int, cout: int, ndim: int = 2) -> int:
    """Weights ``kernel^ndim x cin x cout`` and one bias per output channel."""
    return kernel ** ndim * cin * cout + cout


def level_filters(depth: int, filters: int) -> list[int]:
    """Channels of each encoder level and, last, the bottleneck."""
    return [filters * 2 ** level for level in range(depth + 1)]


def seed_unet_params(depth: int = 4, filters: int = 64, channels: int = 1, classes: int = 2) -> int:
    total, cin = 0, channels
    for f in level_filters(depth, filters):  # encoder levels, then the bottleneck
        total += conv_params(3, cin, f) + conv_params(3, f, f)
        cin = f
    for f in reversed(level_filters(depth, filters)[:-1]):  # up-conv to f, concat with the f-channel skip
        total += conv_params(2, cin, f) + conv_params(3, 2 * f, f) + conv_params(3, f, f)
        cin = f
    return total + conv_params(1, cin, classes)


def seed_unet_output(size: int, depth: int = 4) -> int | None:
    """The output's edge for an input edge of ``size``, or None where the paper's network cannot
    take it: a 2x2 max-pool meets an odd size, or a map shrinks to nothing."""
    for _ in range(depth):
        size -= 4  # two unpadded 3x3 convs
        if size < 1 or size % 2:
            return None
        size //= 2
    size -= 4  # the bottleneck's convs
    for _ in range(depth):
        if size < 1:
            return None
        size = 2 * size - 4  # up-conv, then two convs (the skip is cropped to the up-sampled size)
    return size if size >= 1 else None


def seed_unet_flops(size: int = 572, depth: int = 4, filters: int = 64, channels: int = 1, classes: int = 2) -> int:
    """2 x multiply-adds of the convolutions at a square input of edge ``size``: a k x k conv does
    k*k*cin*cout at each output position; the 2x2 stride-2 up-conv writes each output position
    from one input position, cin*cout."""
    def conv(edge: int, kernel: int, cin: int, cout: int) -> int:
        return 2 * edge * edge * kernel * kernel * cin * cout

    total, cin, edge = 0, channels, size
    for level, f in enumerate(level_filters(depth, filters)):
        total += conv(edge - 2, 3, cin, f) + conv(edge - 4, 3, f, f)
        cin, edge = f, (edge - 4) // 2 if level < depth else edge - 4
    for f in reversed(level_filters(depth, filters)[:-1]):
        edge *= 2
        total += conv(edge, 1, cin, f) + conv(edge - 2, 3, 2 * f, f) + conv(edge - 4, 3, f, f)
        cin, edge = f, edge - 4
    return total + conv(edge, 1, cin, classes)
