"""The planner's FLOPs for UNETR's and SwinUNETR's layers (2D, small) against TensorFlow's profiler
and against counts written out here, apart from the planner's.

Every conv, transposed conv and Dense is one op the profiler counts (``convolution``,
``conv_transpose``, ``Tensordot/MatMul``): the plan's figure must be that count exactly. Keras's
MultiHeadAttention projects by einsum, which the profiler does not count, so the ViT's attention is
checked against a formula of its four projections, scores and weighted sum. archgen's
WindowAttention multiplies by matmul, which the profiler counts: its figure must equal both the sum of
its scope's matmuls and a count window by window over the padded map.
"""

from __future__ import annotations

import re
from math import ceil, prod

import pytest

from tests.conftest import CONF

tf = pytest.importorskip("tensorflow")
from archgen.config import load_spec  # noqa: E402
from archgen.emit import emit_model  # noqa: E402
from archgen.planner import make_plan  # noqa: E402
from tests.emit.test_cost_vs_tensorflow import tensorflow_flops  # noqa: E402

# The layer kinds whose FLOPs are one op each, and that op's name in the profiler's scopes.
OPS = {"conv": "convolution", "conv_transpose": "conv_transpose", "dense": "Tensordot/MatMul"}


def plan_of(name: str, shape: list[int], *overrides: str):
    return make_plan(load_spec(CONF / "peers" / f"{name}.yaml", [f"input.shape={shape}".replace(" ", ""),
                                                                   *overrides]))


def scope_ops(per_op: dict[str, int], layer: str) -> dict[str, int]:
    """The profiler's counted ops inside ``layer``'s scope, by their name within it."""
    scope = re.compile(rf"/{layer}(_\d+)?/(.+)$")
    return {m.group(2): v for k, v in per_op.items() if (m := scope.search(k)) and v}


def attention_by_hand(tokens: int, embed: int, heads: int, key_dim: int) -> int:
    """Multi-head self-attention over ``tokens`` positions, 2 x multiply-adds: the query, key and value
    projections (embed -> heads x key_dim each), each head's scores (tokens x tokens, key_dim long)
    and weighted sum of the values, the output projection (heads x key_dim -> embed). Biases are adds,
    not multiply-adds: none counted."""
    inner = heads * key_dim
    projections = 3 * (2 * tokens * embed * inner) + 2 * tokens * inner * embed
    per_head = 2 * tokens * tokens * key_dim + 2 * tokens * tokens * key_dim
    return projections + heads * per_head


def window_attention_by_hand(sizes: tuple[int, ...], channels: int, window: int) -> int:
    """Swin's attention, window by window: each axis's window is the map's size where that is not
    larger; the map is padded to whole windows; each window of n positions projects to q, k, v
    (c -> 3c), scores n x n (summed over the heads' c channels), weighs the values, projects back."""
    ws = [min(window, n) for n in sizes]
    windows = prod(ceil(n / w) for n, w in zip(sizes, ws))
    n, c = prod(ws), channels
    per_window = 2 * n * c * 3 * c + 2 * n * n * c + 2 * n * n * c + 2 * n * c * c
    return windows * per_window


@pytest.mark.parametrize("name, shape", [("monai_unetr_2d", [64, 64, 1]), ("monai_unetr_2d", [32, 48, 1]),
                                         ("monai_swin_unetr_2d", [64, 64, 1]),
                                         ("monai_swin_unetr_2d", [64, 96, 1])])
def test_convs_and_denses_are_the_profilers_and_attention_the_hand_count(name, shape):
    overrides = ["encoder.filters=[16,32]", "encoder.patch_size=4", "encoder.taps=[6]",
                 "decoder.stages=[{filters: 16},{filters: 32}]"] if shape == [32, 48, 1] else []
    plan = plan_of(name, shape, *overrides)
    _, per_op = tensorflow_flops(emit_model(plan), plan.input_shape)
    checked = {kind: 0 for kind in (*OPS, "attention", "window_attention")}
    for layer in plan.layers:
        ops = scope_ops(per_op, layer.name)
        if layer.kind in OPS:
            assert {op: v for op, v in ops.items() if op.endswith(OPS[layer.kind])} == \
                {OPS[layer.kind]: layer.flops}, layer.name
        elif layer.kind == "attention":
            a = layer.attrs
            tokens = prod(layer.shape[:-1])
            assert layer.flops == attention_by_hand(tokens, layer.shape[-1], a["heads"], a["key_dim"]), layer.name
            assert not any("MatMul" in op or "Einsum" in op for op in ops), ops  # einsum: not counted
        elif layer.kind == "window_attention":
            a = layer.attrs
            assert len(set(a["window"])) == 1
            by_hand = window_attention_by_hand(tuple(layer.shape[:-1]), layer.shape[-1], a["window"][0])
            matmuls = sum(v for op, v in ops.items() if op.endswith("MatMul") or re.search(r"MatMul(_\d+)?$", op))
            assert layer.flops == by_hand == matmuls, (layer.name, layer.flops, by_hand, matmuls)
        else:
            continue
        checked[layer.kind] += 1
    if name == "monai_unetr_2d":
        layers = 12
        assert checked["attention"] == checked["dense"] // 2 == layers
        assert checked["conv"] >= 10 and checked["conv_transpose"] >= 3
    else:  # 4 stages of 2 blocks, each with its MLP's 2 Denses; a Dense per merging
        assert checked["window_attention"] == 8 and checked["dense"] == 8 * 2 + 4
        assert checked["conv"] >= 20 and checked["conv_transpose"] == 5
