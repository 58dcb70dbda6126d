"""Blocks by registry: every block type of the schema has a planning module, and every module
plans a type the schema has."""

from __future__ import annotations

from typing import get_args

import pytest

from archgen.errors import PlanError
from archgen.planner.blocks import BLOCK_PLANNERS, BlockSite, plan_block_at
from archgen.planner.graph import Graph
from archgen.config.model import Block


def schema_block_types() -> set[str]:
    members = [m for arg in get_args(Block) for m in (get_args(arg) or (arg,)) if hasattr(m, "model_fields")]
    return {m.model_fields["type"].default for m in members}


def test_every_block_type_has_a_planner_and_no_planner_is_orphaned():
    assert schema_block_types() == set(BLOCK_PLANNERS)


def test_a_block_type_without_a_planner_is_an_error_naming_the_key():
    class Strange:
        type = "inception"
        activation = "relu"
        negative_slope = None

    g = Graph(2)
    x = g.add("input", "input", (), 1, group="input", path="input")
    site = BlockSite("enc1", 4, 2, (3, 3), (1, 1), "enc1", "encoder.block", "same")
    with pytest.raises(PlanError, match="no planner for block type 'inception'") as info:
        plan_block_at(g, site, Strange(), x)
    assert info.value.path == "encoder.block.type"
