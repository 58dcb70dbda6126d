"""The bottleneck block (He et al. 2016): a 1x1 conv narrows the channels, the stage's kernel works
on the narrow map, a 1x1 conv widens it back, and the shortcut is added as in the residual block.

Layers of a block named ``enc3_block1`` with ``convs: 3``, ``inner_ratio: 0.25``, 256 filters::

    enc3_block1_conv1   1x1 to 64
    enc3_block1_conv2   kxk, 64 (strides where the block does)
    enc3_block1_conv3   1x1 to 256
    enc3_block1_proj    the shortcut's conv, where it projects
    enc3_block1_residual

with each conv's norm and activation after it (``order: pre_activation``: before it), as the
residual block places them.
"""

from __future__ import annotations

from archgen.errors import PlanError
from archgen.planner.blocks.conv import ConvShape
from archgen.planner.blocks.residual import plan_residual
from archgen.planner.blocks.site import BlockSite

BLOCK_TYPE = "bottleneck"


def bottleneck_shapes(site: BlockSite, block) -> list[ConvShape]:
    """1x1 to the inner filters, ``convs`` - 2 convs of the stage's kernel (the first strides), 1x1 back."""
    if site.convs < 3:
        raise PlanError(f"a bottleneck block has a 1x1 conv at each end and the stage's kernel between, so at "
                        f"least 3 convs; {site.prefix} gets {site.convs} from its stage: give the stage convs: 3 "
                        f"(ResNet50)", path=site.path + ".type", value="bottleneck")
    inner = max(1, round(site.filters * block.inner_ratio))
    one, ones = (1,) * len(site.kernel), (1,) * len(site.stride)
    middle = [(inner, site.kernel, site.stride if i == 0 else ones) for i in range(site.convs - 2)]
    return [(inner, one, ones), *middle, (site.filters, one, ones)]


def plan(g, site: BlockSite, block, x: str) -> str:
    """The block's layers from ``x``; returns the name of its output."""
    return plan_residual(g, site, block, x, bottleneck_shapes(site, block))
