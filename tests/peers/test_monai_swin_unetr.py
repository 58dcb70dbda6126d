"""MONAI's SwinUNETR (2D, 3D, and v2 in 3D) against conf/peers/monai_swin_unetr_*.yaml: trainable
parameters, output shapes, copied weights; archgen's WindowAttention and PatchMerge against MONAI's own."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.peers.common import compare_outputs, copy_weights, keras_counts, plan_of, randomize, torch_counts

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
from monai.networks.nets import SwinUNETR  # noqa: E402
from monai.networks.nets.swin_unetr import (PatchMerging, PatchMergingV2, SwinTransformerBlock,  # noqa: E402
                                            compute_mask, get_window_size)


def swin_3d():
    return SwinUNETR(in_channels=1, out_channels=14, feature_size=48)


def swin_2d(window_size=7, patch_norm=False):
    return SwinUNETR(in_channels=1, out_channels=2, feature_size=24, spatial_dims=2, window_size=window_size,
                     patch_norm=patch_norm)


def swin_v2_3d(feature_size: int = 48):
    return SwinUNETR(in_channels=1, out_channels=14, feature_size=feature_size, use_v2=True)


def shapes_of(net, size) -> tuple[int, ...]:
    with torch.no_grad():
        y = net.eval()(torch.zeros(1, 1, *size))
    return (*y.shape[2:], y.shape[1])


def test_swin_unetr_3d_counts_as_monai():
    assert plan_of("monai_swin_unetr_3d").total_params == torch_counts(swin_3d())[0] == 62_187_296


def test_swin_unetr_v2_3d_counts_as_monai():
    """v2's four stage blocks: 3 x 3 x 3 convs without bias, c -> c twice, per stage (48, 96, 192, 384)."""
    plan = plan_of("monai_swin_unetr_v2_3d")
    assert plan.total_params == torch_counts(swin_v2_3d())[0] == 72_762_656
    stage_blocks = sum(layer.params for layer in plan.layers if "_res_" in layer.name)
    assert stage_blocks == sum(2 * 27 * c * c for c in (48, 96, 192, 384)) == 72_762_656 - 62_187_296
    assert plan.layer("swin1_res_conv1").inputs == ("swin_patch",)  # on the stage's input
    assert plan.layer("swin_level2_norm").inputs == ("swin_patch",)  # the level reads it without the block
    assert plan.layer("swin2_res_conv1").inputs == ("swin1_reduce",)


def test_swin_unetr_2d_counts_as_monai():
    assert plan_of("monai_swin_unetr_2d").total_params == torch_counts(swin_2d())[0] == 6_302_228


@pytest.mark.parametrize("size", [[64, 64, 64], [32, 64, 96]])
def test_swin_unetr_3d_shapes(size):
    """(MONAI's instance norm refuses a bottleneck of one position, which 32^3 makes.)"""
    plan = plan_of("monai_swin_unetr_3d", [*size, 1])
    assert plan.total_params == 62_187_296  # no weight depends on the size
    assert plan.output_shapes["logits"] == shapes_of(swin_3d(), size) == (*size, 14)


@pytest.mark.parametrize("size", [[64, 64, 64], [32, 64, 96]])
def test_swin_unetr_v2_3d_shapes(size):
    plan = plan_of("monai_swin_unetr_v2_3d", [*size, 1])
    assert plan.total_params == 72_762_656
    assert plan.output_shapes["logits"] == shapes_of(swin_v2_3d(12), size) == (*size, 14)


@pytest.mark.parametrize("size", [[64, 64], [32, 96], [96, 64]])
def test_swin_unetr_2d_shapes(size):
    assert plan_of("monai_swin_unetr_2d", [*size, 1]).output_shapes["logits"] == shapes_of(swin_2d(), size) \
        == (*size, 2)


def test_sizes_must_be_multiples_of_32():
    from archgen.errors import PlanError

    with pytest.raises(PlanError, match="legal sizes"):
        plan_of("monai_swin_unetr_2d", [64, 48, 1])


@pytest.mark.slow
def test_swin_unetr_3d_keras_counts_as_the_plan():
    from archgen.emit import emit_model

    model = emit_model(plan_of("monai_swin_unetr_3d", [32, 32, 32, 1]))
    assert keras_counts(model) == (62_187_296, 0)


def test_swin_unetr_v2_3d_keras_counts_as_the_plan():
    from archgen.emit import emit_model

    model = emit_model(plan_of("monai_swin_unetr_v2_3d", [32, 32, 32, 1]))
    assert keras_counts(model) == (72_762_656, 0)


# --- archgen's own layers against MONAI's ----------------------------------------------------------

@pytest.mark.parametrize("sizes, window, shifted", [
    ((9, 10), 4, False), ((9, 10), 4, True), ((8, 8), 4, True), ((3, 5), 4, True), ((14, 12), 7, True),
    ((6, 5, 7), 3, True), ((6, 6, 6), 7, True), ((5, 4, 6), 3, False), ((9, 10), (4, 3), True),
    ((6, 5, 7), (3, 2, 4), True)])
def test_window_attention_is_monais(sizes, window, shifted):
    """MONAI's block between its norm and the addition: padding, cyclic shift, windows, bias table
    (also where a small map makes the window smaller), the shifted windows' mask."""
    from archgen.emit.own_layers import WindowAttention

    torch.manual_seed(0)
    nd, c, heads = len(sizes), 12, 3
    window_size = (window,) * nd if isinstance(window, int) else window
    shift = tuple(w // 2 for w in window_size) if shifted else (0,) * nd
    block = SwinTransformerBlock(c, heads, window_size, shift).eval()
    block.norm1 = torch.nn.Identity()
    with torch.no_grad():
        block.attn.relative_position_bias_table.normal_()
    ws, ss = get_window_size(sizes, window_size, tuple(w // 2 for w in window_size))
    mask = compute_mask([-(-n // w) * w for n, w in zip(sizes, ws)], ws, ss, None)
    x = torch.randn(2, *sizes, c)
    with torch.no_grad():
        expected = block.forward_part1(x, mask).numpy()
    layer = WindowAttention(heads, window_size, shift)
    layer.build((2, *sizes, c))
    a = block.attn
    layer.set_weights([a.qkv.weight.detach().numpy().T, a.qkv.bias.detach().numpy(), a.proj.weight.detach().numpy().T,
                       a.proj.bias.detach().numpy(), a.relative_position_bias_table.detach().numpy()])
    np.testing.assert_allclose(np.asarray(layer(x.numpy())), expected, atol=1e-5, rtol=0)


# MONAI's order of the 2^ndim offsets in its patch merging (3D: PatchMerging's, 2D: PatchMergingV2's);
# archgen's PatchMerge takes them row-major.
MONAI_OFFSETS = {3: [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1), (1, 1, 1)],
                 2: [(j, i) for i, j in itertools.product(range(2), range(2))]}


def merge_order(ndim: int) -> list[int]:
    """For each of archgen's channel blocks, MONAI's block of the same offset."""
    return [MONAI_OFFSETS[ndim].index(o) for o in itertools.product(range(2), repeat=ndim)]


@pytest.mark.parametrize("sizes", [(6, 4, 2), (5, 4, 3), (6, 8), (7, 5)])
def test_patch_merge_is_monais_up_to_the_channel_order(sizes):
    from archgen.emit.own_layers import PatchMerge

    nd, c = len(sizes), 3
    merging = (PatchMerging if nd == 3 else PatchMergingV2)(c, spatial_dims=nd)
    merging.norm, merging.reduction = torch.nn.Identity(), torch.nn.Identity()
    x = torch.randn(2, *sizes, c)
    with torch.no_grad():
        expected = merging(x).numpy()
    y = np.asarray(PatchMerge()(x.numpy()))
    blocks = expected.reshape(*expected.shape[:-1], 2 ** nd, c)[..., merge_order(nd), :]
    np.testing.assert_array_equal(y, blocks.reshape(expected.shape))
    assert PatchMerge().compute_output_shape((2, *sizes, c)) == y.shape


# --- copied weights --------------------------------------------------------------------------------

def res_block_pairs(prefix: str, block) -> list:
    out = [(f"{prefix}_conv1", block.conv1.conv), (f"{prefix}_conv2", block.conv2.conv)]
    if hasattr(block, "conv3"):
        out.append((f"{prefix}_proj", block.conv3.conv))
    return out


def swin_pairs(net) -> list:
    vit = net.swinViT
    out = [("swin_patch", vit.patch_embed.proj)]
    if vit.patch_embed.norm is not None:
        out.append(("swin_patch_norm", vit.patch_embed.norm))
    for i in range(1, 5):
        layer = getattr(vit, f"layers{i}")[0]
        if vit.use_v2:  # v2's block on the stage's input
            out += res_block_pairs(f"swin{i}_res", getattr(vit, f"layers{i}c")[0].layer)
        for j, block in enumerate(layer.blocks, start=1):
            p = f"swin{i}_block{j}"
            out += [(f"{p}_norm1", block.norm1), (f"{p}_norm2", block.norm2), (f"{p}_mlp1", block.mlp.linear1),
                    (f"{p}_mlp2", block.mlp.linear2)]
    out += res_block_pairs("enc1", net.encoder1.layer)
    for name, block in (("enc2", net.encoder2), ("enc3", net.encoder3), ("enc4", net.encoder4),
                        ("bottleneck", net.encoder10)):
        out += res_block_pairs(name, block.layer)
    for level, decoder in ((5, net.decoder5), (4, net.decoder4), (3, net.decoder3), (2, net.decoder2),
                           (1, net.decoder1)):
        out += [(f"dec{level}_up", decoder.transp_conv.conv), *res_block_pairs(f"dec{level}", decoder.conv_block)]
    return out + [("logits", net.out.conv.conv)]


def copy_swin(model, net, ndim: int) -> list[str]:
    """Each window attention, and each merging's norm and reduction with its channel blocks reordered."""
    done = []
    order = merge_order(ndim)
    for i in range(1, 5):
        layer = getattr(net.swinViT, f"layers{i}")[0]
        for j, block in enumerate(layer.blocks, start=1):
            a = block.attn
            model.get_layer(f"swin{i}_block{j}_attn").set_weights([
                a.qkv.weight.detach().numpy().T, a.qkv.bias.detach().numpy(), a.proj.weight.detach().numpy().T,
                a.proj.bias.detach().numpy(), a.relative_position_bias_table.detach().numpy()])
            done.append(f"swin{i}_block{j}_attn")
        merging = layer.downsample
        c = merging.dim

        def blocks(w):  # the last axis in MONAI's block order -> archgen's
            return w.reshape(*w.shape[:-1], 2 ** ndim, c)[..., order, :].reshape(w.shape)

        model.get_layer(f"swin{i}_merge_norm").set_weights([blocks(merging.norm.weight.detach().numpy()),
                                                            blocks(merging.norm.bias.detach().numpy())])
        model.get_layer(f"swin{i}_reduce").set_weights([blocks(merging.reduction.weight.detach().numpy()).T])
        done += [f"swin{i}_merge_norm", f"swin{i}_reduce"]
    return done


@pytest.mark.parametrize("size, window, patch_norm", [((64, 64), 7, False), ((64, 96), 7, False),
                                                      ((64, 96), (7, 4), True)])
def test_swin_unetr_2d_weights_copied_give_the_same_outputs(size, window, patch_norm):
    from archgen.emit import emit_model
    from tests.emit.test_emit_plan_agree import assert_model_matches_plan

    net = swin_2d(window, patch_norm).eval()
    randomize(net)
    shown = list(window) if isinstance(window, tuple) else window
    plan = plan_of("monai_swin_unetr_2d", [*size, 1], [f"encoder.window_size={shown}".replace(" ", ""),
                                                      f"encoder.patch_norm={str(patch_norm).lower()}"])
    model = emit_model(plan)
    assert_model_matches_plan(model, plan)
    assert keras_counts(model)[0] == torch_counts(net)[0]
    done = copy_swin(model, net, 2)
    copy_weights(model, swin_pairs(net), copied=done)
    compare_outputs(model, net, (1, *size), lambda n, x: [n(x)])


@pytest.mark.slow
def test_swin_unetr_3d_weights_copied_give_the_same_outputs():
    """At 64x32x32 (patches 32x16x16, windows of the whole map from level 4 on), feature size 12."""
    from archgen.config import validate
    from archgen.emit import emit_model
    from archgen.planner import make_plan
    import yaml

    from tests.peers.common import PEERS

    data = yaml.safe_load((PEERS / "monai_swin_unetr_3d.yaml").read_text())
    data["input"]["shape"] = [64, 32, 32, 1]
    data["encoder"]["embed_dim"] = 12
    for stage in data["decoder"]["stages"]:
        stage["filters"] //= 4
    net = SwinUNETR(in_channels=1, out_channels=14, feature_size=12).eval()
    randomize(net)
    model = emit_model(make_plan(validate(data)))
    assert keras_counts(model)[0] == torch_counts(net)[0]
    done = copy_swin(model, net, 3)
    copy_weights(model, swin_pairs(net), copied=done)
    compare_outputs(model, net, (1, 64, 32, 32), lambda n, x: [n(x)])


def test_swin_unetr_v2_3d_weights_copied_give_the_same_outputs():
    """At 32x64x32 (the bottleneck 1x2x1), feature size 12 (MONAI's least): v2's stage blocks on the
    stages' inputs."""
    from archgen.config import validate
    from archgen.emit import emit_model
    from archgen.planner import make_plan
    import yaml

    from tests.peers.common import PEERS

    data = yaml.safe_load((PEERS / "monai_swin_unetr_v2_3d.yaml").read_text())
    data["input"]["shape"] = [32, 64, 32, 1]
    data["encoder"]["embed_dim"] = 12
    for stage in data["decoder"]["stages"]:
        stage["filters"] //= 4
    net = swin_v2_3d(12).eval()
    randomize(net)
    model = emit_model(make_plan(validate(data)))
    assert keras_counts(model)[0] == torch_counts(net)[0]
    done = copy_swin(model, net, 3)
    copy_weights(model, swin_pairs(net), copied=done)
    compare_outputs(model, net, (1, 32, 64, 32), lambda n, x: [n(x)])


def test_saved_model_loads_with_safe_mode(tmp_path):
    import keras

    from archgen.emit import emit_model
    from archgen.model_file import load_model

    model = emit_model(plan_of("monai_swin_unetr_2d", [64, 32, 1]))
    path = tmp_path / "swin.keras"
    model.save(path)
    x = np.random.default_rng(0).normal(size=(1, 64, 32, 1)).astype("float32")
    for loaded in (keras.saving.load_model(path, safe_mode=True), load_model(path)):
        assert type(loaded.get_layer("swin1_block2_attn")).__name__ == "WindowAttention"
        assert type(loaded.get_layer("swin1_merge")).__name__ == "PatchMerge"
        np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-5)
