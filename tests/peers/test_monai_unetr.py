"""MONAI's UNETR (2D, 3D) against conf/peers/monai_unetr_*.yaml: trainable parameters, output shapes,
copied weights.

MONAI's TransformerBlock holds a LayerNorm (``norm_cross_attn``) that runs only with cross-attention,
which UNETR never has: its parameters count in MONAI's total but never touch the output, so archgen's
count is MONAI's less those, and a forward hook shows they are never called.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.peers.common import compare_outputs, copy_weights, keras_counts, plan_of, randomize, torch_counts

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
from monai.networks.nets import UNETR  # noqa: E402

SMALL = dict(feature_size=16, hidden_size=96, mlp_dim=384, num_heads=4)  # monai_unetr_2d.yaml


def unetr_3d(size=(96, 96, 96)):
    return UNETR(in_channels=1, out_channels=14, img_size=tuple(size), feature_size=16, hidden_size=768)


def unetr_2d(size=(64, 64), conv_block=True):
    return UNETR(in_channels=1, out_channels=3, img_size=tuple(size), spatial_dims=2, conv_block=conv_block, **SMALL)


def unused_params(net) -> int:
    """Parameters of the layers that never run in a forward pass (MONAI's ``norm_cross_attn``)."""
    return sum(p.numel() for name, p in net.named_parameters() if ".norm_cross_attn." in name)


def shapes_of(net, size) -> tuple[int, ...]:
    with torch.no_grad():
        y = net.eval()(torch.zeros(1, 1, *size))
    return (*y.shape[2:], y.shape[1])


def test_unetr_3d_counts_as_monai():
    net = unetr_3d()
    plan = plan_of("monai_unetr_3d")
    assert torch_counts(net) == (92_802_478, 0)
    assert unused_params(net) == 12 * 2 * 768
    assert plan.total_params == torch_counts(net)[0] - unused_params(net) == 92_784_046


def test_the_uncounted_norms_never_run():
    net = unetr_2d().eval()
    ran = []
    for block in net.vit.blocks:
        block.norm_cross_attn.register_forward_hook(lambda *args: ran.append(1))
    with torch.no_grad():
        net(torch.zeros(1, 1, 64, 64))
    assert ran == []


@pytest.mark.parametrize("size", [[32, 32, 32], [16, 32, 48]])
def test_unetr_3d_counts_and_shapes(size):
    """The position embedding has one vector per patch, so the count follows the size."""
    net = unetr_3d(size)
    plan = plan_of("monai_unetr_3d", [*size, 1])
    assert plan.total_params == torch_counts(net)[0] - unused_params(net)
    assert plan.output_shapes["logits"] == shapes_of(net, size) == (*size, 14)


@pytest.mark.parametrize("size", [[64, 64], [32, 80], [16, 48]])
def test_unetr_2d_counts_and_shapes(size):
    net = unetr_2d(size)
    plan = plan_of("monai_unetr_2d", [*size, 1])
    assert plan.total_params == torch_counts(net)[0] - unused_params(net)
    assert plan.output_shapes["logits"] == shapes_of(net, size) == (*size, 3)


def test_unetr_2d_counts_at_64():
    assert torch_counts(unetr_2d()) == (2_314_227, 0)
    assert plan_of("monai_unetr_2d").total_params == 2_311_923


def test_sizes_must_be_whole_patches():
    from archgen.errors import PlanError

    with pytest.raises(PlanError, match="vit_patch"):
        plan_of("monai_unetr_2d", [64, 56, 1])


@pytest.mark.slow
def test_unetr_3d_keras_counts_as_the_plan():
    from archgen.emit import emit_model

    model = emit_model(plan_of("monai_unetr_3d"))
    assert keras_counts(model) == (92_784_046, 0)


# --- copied weights --------------------------------------------------------------------------------

def res_block_pairs(prefix: str, block) -> list:
    """MONAI's UnetResBlock: its norms have no weights (instance norm without affine)."""
    out = [(f"{prefix}_conv1", block.conv1.conv), (f"{prefix}_conv2", block.conv2.conv)]
    if hasattr(block, "conv3"):
        out.append((f"{prefix}_proj", block.conv3.conv))
    return out


def unetr_pairs(net) -> list:
    out = [("vit_patch", net.vit.patch_embedding.patch_embeddings), ("vit_norm", net.vit.norm)]
    for i, block in enumerate(net.vit.blocks, start=1):
        p = f"vit_layer{i}"
        out += [(f"{p}_norm1", block.norm1), (f"{p}_norm2", block.norm2), (f"{p}_mlp1", block.mlp.linear1),
                (f"{p}_mlp2", block.mlp.linear2)]
    out += res_block_pairs("enc1", net.encoder1.layer)
    for level, encoder in ((2, net.encoder2), (3, net.encoder3), (4, net.encoder4)):
        out.append((f"enc{level}_proj", encoder.transp_conv_init.conv))
        for j, step in enumerate(encoder.blocks, start=1):
            if hasattr(step, "conv"):  # conv_block=False: the transposed conv (MONAI's Convolution) alone
                out.append((f"enc{level}_prup{j}_up", step.conv))
            else:  # a transposed conv and its block
                up, block = step
                out += [(f"enc{level}_prup{j}_up", up.conv), *res_block_pairs(f"enc{level}_prup{j}", block)]
    for level, decoder in ((4, net.decoder5), (3, net.decoder4), (2, net.decoder3), (1, net.decoder2)):
        out += [(f"dec{level}_up", decoder.transp_conv.conv), *res_block_pairs(f"dec{level}", decoder.conv_block)]
    return out + [("logits", net.out.conv.conv)]


def copy_transformer(model, net, grid: tuple[int, ...]) -> list[str]:
    """The position embedding and each attention (MONAI's qkv Linear, features ordered (q/k/v, head,
    channel), into Keras's query, key and value kernels of (embed, heads, key_dim)); returns the layers set."""
    embed = net.vit.patch_embedding.position_embeddings.shape[-1]
    pos = net.vit.patch_embedding.position_embeddings.detach().numpy()
    model.get_layer("vit_pos").set_weights([pos.reshape(*grid, embed)])
    done = ["vit_pos"]
    for i, block in enumerate(net.vit.blocks, start=1):
        attn, layer = block.attn, model.get_layer(f"vit_layer{i}_attn")
        heads = attn.num_heads
        qkv = attn.qkv.weight.detach().numpy().reshape(3, heads, embed // heads, embed)
        weights = {w.path.split("/", 1)[1]: w for w in layer.weights}
        for j, part in enumerate(("query", "key", "value")):
            weights[f"{part}/kernel"].assign(np.transpose(qkv[j], (2, 0, 1)))
        out = attn.out_proj.weight.detach().numpy()  # (embed, heads * key_dim)
        weights["attention_output/kernel"].assign(out.T.reshape(heads, embed // heads, embed))
        assert len(weights) == 4  # no biases
        model.get_layer(f"vit_layer{i}_attn_bias").set_weights([attn.out_proj.bias.detach().numpy()])
        done += [layer.name, f"vit_layer{i}_attn_bias"]
    return done


@pytest.mark.parametrize("size, conv_block", [((64, 64), True), ((32, 48), True), ((32, 48), False)])
def test_unetr_2d_weights_copied_give_the_same_outputs(size, conv_block):
    from archgen.emit import emit_model
    from tests.emit.test_emit_plan_agree import assert_model_matches_plan

    net = unetr_2d(size, conv_block).eval()
    randomize(net)
    plan = plan_of("monai_unetr_2d", [*size, 1], [f"encoder.tap_blocks={str(conv_block).lower()}"])
    model = emit_model(plan)
    assert_model_matches_plan(model, plan)  # layer by layer: shapes and parameters
    assert keras_counts(model)[0] == torch_counts(net)[0] - unused_params(net)
    done = copy_transformer(model, net, tuple(n // 16 for n in size))
    copy_weights(model, unetr_pairs(net), copied=done)
    compare_outputs(model, net, (1, *size), lambda n, x: [n(x)])


def test_saved_model_loads_with_safe_mode(tmp_path):
    """The .keras file loads with safe_mode=True, its attention biases (archgen's Bias layer) included,
    and through archgen's checked loader."""
    import keras

    from archgen.emit import emit_model
    from archgen.model_file import load_model

    model = emit_model(plan_of("monai_unetr_2d", [32, 32, 1]))
    bias = model.get_layer("vit_layer1_attn_bias")
    bias.set_weights([np.linspace(-1, 1, 96).astype("float32")])
    path = tmp_path / "unetr.keras"
    model.save(path)
    x = np.random.default_rng(0).normal(size=(1, 32, 32, 1)).astype("float32")
    for loaded in (keras.saving.load_model(path, safe_mode=True), load_model(path)):
        assert type(loaded.get_layer("vit_layer1_attn_bias")).__name__ == "Bias"
        np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-5)
