"""The registry of block kinds: a config's ``block.type`` -> the module that plans its layers.

A block module holds ``BLOCK_TYPE`` (the ``type`` its spec class in ``archgen.config.model`` takes)
and ``plan(g, site, block, x) -> str``; every module of this package that has them is
registered. Adding a block is one spec class (in the ``Block`` union) and one module here. A
module that also has ``plan_up(g, site, block, x) -> str`` can up-sample by the site's stride
(``decoder.upsample.type: block``).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

from archgen.errors import PlanError
from archgen.planner.blocks.site import BlockSite, check_negative_slope

__all__ = ["BLOCK_PLANNERS", "UP_PLANNERS", "BlockSite", "plan_block_at", "plan_up_block_at"]


def _discover(function: str) -> dict[str, Callable]:
    planners: dict[str, Callable] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "BLOCK_TYPE") and hasattr(module, function):
            assert module.BLOCK_TYPE not in planners, f"block type {module.BLOCK_TYPE!r} planned twice"
            planners[module.BLOCK_TYPE] = getattr(module, function)
    return planners


BLOCK_PLANNERS: dict[str, Callable] = _discover("plan")
UP_PLANNERS: dict[str, Callable] = _discover("plan_up")  # the block kinds that can up-sample


def plan_block_at(g, site: BlockSite, block, x: str) -> str:
    """The layers of ``block`` at ``site`` from ``x``, by its type's planner."""
    check_negative_slope(block, site.path)
    planner = BLOCK_PLANNERS.get(block.type)
    if planner is None:
        raise PlanError(f"no planner for block type {block.type!r}; known: {', '.join(BLOCK_PLANNERS)}",
                        path=site.path + ".type", value=block.type)
    return planner(g, site, block, x)


def plan_up_block_at(g, site: BlockSite, block, x: str) -> str:
    """The layers of ``block`` up-sampling ``x`` by the site's stride (``decoder.upsample.type: block``)."""
    check_negative_slope(block, site.path)
    planner = UP_PLANNERS.get(block.type)
    if planner is None:
        raise PlanError(f"up-samples with the decoder's block, and a {block.type} block cannot; use a block of "
                        f"type {' or '.join(UP_PLANNERS)}, or another up-sampling", path="decoder.upsample.type",
                        value="block")
    return planner(g, site, block, x)
