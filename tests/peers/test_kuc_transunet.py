"""conf/peers/kuc_transunet_2d.yaml against keras-unet-collection's transunet_2d, as written again
in plain Keras in tests/reference/kuc_transunet_2d.py (the original no longer builds on Keras 3):
counts, shapes, outputs with copied weights, and a saved model that loads with safe_mode=True."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from tests.peers.common import plan_of
from tests.peers.keras_peers import (
    copy_by_name,
    keras_counts,
    plan_counts,
    randomize,
    same_outputs,
)

VIT = {"embed_dim": 256, "num_mlp": 1024, "num_heads": 4, "num_transformer": 4}


def reference(size: int):
    from tests.reference.kuc_transunet_2d import kuc_transunet_2d

    return kuc_transunet_2d((size, size, 3), (64, 128, 256, 512), n_labels=2, stack_num_down=2, stack_num_up=2,
                            batch_norm=True, unpool="nearest", **VIT)


def test_the_config_counts_as_transunet_2d():
    plan = plan_of("kuc_transunet_2d")
    net = reference(128)
    assert plan_counts(plan) == keras_counts(net) == (15_464_898, 6_528)
    assert plan.output_shapes["logits"] == tuple(net.output_shape[1:]) == (128, 128, 2)


def test_the_emitted_model_counts_as_the_plan_layer_by_layer():
    from archgen.emit import emit_model

    plan = plan_of("kuc_transunet_2d", [64, 64, 3])
    model = emit_model(plan)
    for layer in plan.layers:
        k = model.get_layer(layer.name)
        assert (tuple(k.output.shape[1:]), k.count_params()) == (layer.shape, layer.params), layer.name
    assert plan.layer("bottleneck_vit_pos").params == 8 * 8 * 256  # one vector per bottleneck position


def ref_name(name: str):
    """archgen's layer -> the reference's (enc1..3 / bottleneck are down0..3, dec3..1 are up0..2)."""
    if name == "logits":
        return "transunet_output"
    if name.startswith("bottleneck_vit"):
        fixed = {"bottleneck_vit_in": "transunet_conv_trans_before", "bottleneck_vit_out": "transunet_conv_trans_after"}
        if name in fixed:
            return fixed[name]
        block, part = name[len("bottleneck_vit"):].split("_", 1)
        return f"transunet_ViT_{int(block) - 1}_" + {"norm1": "layer_norm_1", "attn": "atten", "norm2": "layer_norm_2",
                                                      "mlp1": "mlp_dense_0", "mlp2": "mlp_dense_1"}[part]
    level, rest = name.split("_", 1)
    if level.startswith("dec"):
        k = f"transunet_up{3 - int(level[3:])}"
        if rest in ("upconv", "upnorm"):
            return f"{k}_conv_before_concat_0" + ("_bn" if rest == "upnorm" else "")
        return f"{k}_conv_after_concat_{int(rest[-1]) - 1}" + ("_bn" if rest.startswith("norm") else "")
    k = {"enc1": "transunet_down0", "enc2": "transunet_down1_conv", "enc3": "transunet_down2_conv",
         "bottleneck": "transunet_down3_conv"}[level]
    return f"{k}_{int(rest[-1]) - 1}" + ("_bn" if rest.startswith("norm") else "")


def copy_from_reference(model, net) -> None:
    embedding = net.get_layer("transunet_embedding")

    def peer_weights(name: str):
        if name == "bottleneck_vit_patch":  # a Dense on 1x1 patches is a 1x1 conv
            kernel, bias = embedding.proj.get_weights()
            return [kernel.reshape(1, 1, *kernel.shape), bias]
        if name == "bottleneck_vit_pos":  # one vector per token, tokens in row-major order
            table = embedding.pos_embed.get_weights()[0]
            side = round(len(table) ** 0.5)
            return [table.reshape(side, side, -1)]
        return ref_name(name)

    copy_by_name(model, net, peer_weights)


def test_copied_weights_give_the_same_outputs():
    from archgen.emit import emit_model

    net = reference(64)
    randomize(net)
    model = emit_model(plan_of("kuc_transunet_2d", [64, 64, 3]))
    copy_from_reference(model, net)
    same_outputs(model, net, (64, 64, 3))


def test_saved_model_loads_with_safe_mode(tmp_path):
    """The .keras file loads with safe_mode=True: in this process, and in a fresh one through
    archgen.tiling.load_model (which imports the registered position embedding)."""
    import keras

    from archgen.emit import emit_model

    model = emit_model(plan_of("kuc_transunet_2d", [32, 32, 3]))
    path = tmp_path / "transunet.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(0).normal(size=(1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
    assert type(loaded.get_layer("bottleneck_vit_pos")).__name__ == "PositionEmbedding"
    code = ("import sys; from archgen.tiling import load_model; m = load_model(sys.argv[1]); "
            "print(m.count_params())")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert int(out.stdout.split()[-1]) == model.count_params()
