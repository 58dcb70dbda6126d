"""MONAI's MedNeXt (S, B, M, L, and the class's defaults) against conf/peers/monai_mednext_*.yaml:
trainable parameters, output shapes (deep supervision included), copied weights."""

from __future__ import annotations

import pytest
import yaml

from archgen.planner import make_plan
from archgen.config import validate
from tests.peers.common import PEERS, compare_outputs, copy_weights, keras_counts, plan_of, randomize, torch_counts

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
from monai.networks.nets import MedNeXt, MedNeXtB, MedNeXtL, MedNeXtM, MedNeXtS  # noqa: E402

# blocks down, bottleneck, up (level 1 first), and the expansion per level (bottleneck last), as
# monai.networks.nets.mednext.create_mednext sets them (MONAI lists the decoder's deepest first).
VARIANTS = {
    "S": ([2, 2, 2, 2], 2, [2, 2, 2, 2], [2, 2, 2, 2, 2]),
    "B": ([2, 2, 2, 2], 2, [2, 2, 2, 2], [2, 3, 4, 4, 4]),
    "M": ([3, 4, 4, 4], 4, [3, 4, 4, 4], [2, 3, 4, 4, 4]),
    "L": ([3, 4, 8, 8], 8, [3, 4, 8, 8], [3, 4, 8, 8, 8]),
}
FACTORIES = {"S": MedNeXtS, "B": MedNeXtB, "M": MedNeXtM, "L": MedNeXtL}


def mednext_data(variant: str = "S", kernel: int = 3, *, shape=(16, 16, 16, 1), residual: bool = True,
                 deep_supervision: bool = False, global_resp_norm: bool = False) -> dict:
    """conf/peers/monai_mednext_s_k3_3d.yaml made into another variant, kernel, size or head set."""
    data = yaml.safe_load((PEERS / "monai_mednext_s_k3_3d.yaml").read_text())
    down, bottleneck, up, expansion = VARIANTS[variant]
    data["input"]["shape"] = list(shape)
    data["encoder"]["block"].update(expansion=expansion, residual=residual)
    if global_resp_norm:
        data["encoder"]["block"]["global_resp_norm"] = True  # the decoder's block is the same (a YAML alias)
        data["encoder"]["downsample"]["global_resp_norm"] = False  # MONAI's down blocks have none
    for stage, blocks in zip(data["encoder"]["stages"], [*down, bottleneck]):
        stage.update(blocks=blocks, kernel_size=kernel)
    for stage, blocks in zip(data["decoder"]["stages"], up):
        stage.update(blocks=blocks, kernel_size=kernel)
    if deep_supervision:
        data["heads"][0]["deep_supervision"] = [2, 3, 4, 5]
    return data


def shapes_of(net, size, training: bool = False) -> list[tuple[int, ...]]:
    net.train(training)
    with torch.no_grad():
        ys = net(torch.zeros(1, 1, *size))
    net.eval()
    return [(*y.shape[2:], y.shape[1]) for y in (ys if isinstance(ys, (tuple, list)) else [ys])]


@pytest.mark.parametrize("variant, kernel, count", [
    ("S", 3, 5_550_914), ("B", 3, 10_510_850), ("M", 3, 17_533_506), ("L", 3, 61_726_754), ("S", 5, 5_980_546),
])
def test_mednext_variants_count_as_monai(variant, kernel, count):
    net = FACTORIES[variant](spatial_dims=3, in_channels=1, out_channels=2, kernel_size=kernel)
    plan = make_plan(validate(mednext_data(variant, kernel)))
    assert plan.total_params == torch_counts(net)[0] == count


def test_mednext_class_defaults_count_as_monai():
    """MedNeXt() itself: kernel 7, expansion 2, no residual connections (nor the down and up
    blocks' 1x1 shortcuts)."""
    net = MedNeXt()
    plan = make_plan(validate(mednext_data("S", 7, residual=False)))
    assert plan.total_params == torch_counts(net)[0] == 6_586_658
    assert not any(layer.name.endswith("_proj") for layer in plan.layers)


@pytest.mark.parametrize("size", [[16, 16, 32], [16, 32, 48]])
def test_mednext_s_k3_3d_file_shapes(size):
    net = MedNeXtS(spatial_dims=3, in_channels=1, out_channels=2, kernel_size=3).eval()
    plan = plan_of("monai_mednext_s_k3_3d", [*size, 1])
    assert plan.total_params == torch_counts(net)[0] == 5_550_914
    assert [plan.output_shapes["logits"]] == shapes_of(net, size) == [(*size, 2)]


def test_mednext_l_k5_3d_deep_supervision_file_counts_as_monai():
    net = MedNeXtL(spatial_dims=3, in_channels=1, out_channels=2, kernel_size=5, deep_supervision=True)
    plan = plan_of("monai_mednext_l_k5_3d")
    assert plan.total_params == torch_counts(net)[0] == 62_942_314
    assert list(plan.output_shapes) == ["logits", "logits_dec2", "logits_dec3", "logits_dec4", "logits_dec5"]


@pytest.mark.slow
@pytest.mark.parametrize("size", [[16, 32, 48], [32, 16, 16]])
def test_mednext_l_k5_3d_deep_supervision_shapes(size):
    """MONAI returns the deep-supervision outputs in training mode, after the main one and finest
    first: archgen's heads in their order (logits, logits_dec2 .. logits_dec5)."""
    net = MedNeXtL(spatial_dims=3, in_channels=1, out_channels=2, kernel_size=5, deep_supervision=True)
    plan = plan_of("monai_mednext_l_k5_3d", [*size, 1])
    assert list(plan.output_shapes.values()) == shapes_of(net, size, training=True)


def test_the_2d_network_counts_as_monai():
    net = MedNeXtS(spatial_dims=2, in_channels=1, out_channels=2, kernel_size=3)
    plan = make_plan(validate(mednext_data("S", 3, shape=(64, 48, 1))))
    assert plan.total_params == torch_counts(net)[0]
    assert [plan.output_shapes["logits"]] == shapes_of(net, [64, 48]) == [(64, 48, 2)]


# --- copied weights --------------------------------------------------------------------------------

def block_pairs(prefix: str, block) -> list:
    out = [(f"{prefix}_dwconv", block.conv1), (f"{prefix}_norm", block.norm), (f"{prefix}_expand", block.conv2),
           (f"{prefix}_compress", block.conv3)]
    return out + ([(f"{prefix}_proj", block.res_conv)] if getattr(block, "resample_do_res", False) else [])


def stage_pairs(prefix: str, blocks) -> list:
    blocks = list(blocks)
    return [pair for j, block in enumerate(blocks)
            for pair in block_pairs(prefix if len(blocks) == 1 else f"{prefix}_block{j + 1}", block)]


def pairs(net) -> list:
    """archgen's layer for each module of MONAI's MedNeXt. Its heads are 1x1 ConvTranspose layers:
    archgen's 1x1 convs, the same map (``copy_weights`` swaps the kernel's in and out)."""
    n = len(net.enc_stages)
    out = [("stem_conv1", net.stem)]
    for i in range(n):
        out += stage_pairs(f"enc{i + 1}", net.enc_stages[i]) + block_pairs(f"enc{i + 1}_down", net.down_blocks[i])
    out += stage_pairs("bottleneck", net.bottleneck)
    for i in range(n):
        level = n - i
        out += block_pairs(f"dec{level}_up", net.up_blocks[i]) + stage_pairs(f"dec{level}", net.dec_stages[i])
    out.append(("logits", net.out_0.conv_out))
    if net.do_ds:  # out_blocks: the bottleneck's first, then decoder levels 4, 3, 2
        out += [(f"logits_dec{n + 1 - i}", head.conv_out) for i, head in enumerate(net.out_blocks)]
    return out


def training_outputs(net, x):
    """All outputs of a deep-supervised MedNeXt: its training mode, with no other effect here (group
    norm has no running statistics, and there is no dropout)."""
    net.train()
    ys = net(x)
    net.eval()
    return list(ys)


@pytest.mark.slow
def test_mednext_s_k3_3d_weights_copied_give_the_same_outputs():
    from archgen.emit import emit_model

    net = MedNeXtS(spatial_dims=3, in_channels=1, out_channels=2, kernel_size=3).eval()
    randomize(net)
    model = emit_model(plan_of("monai_mednext_s_k3_3d", [16, 16, 32, 1]))
    assert keras_counts(model) == torch_counts(net)
    copy_weights(model, pairs(net))
    compare_outputs(model, net, (1, 16, 16, 32), lambda n, x: [n(x)])


def test_mednext_s_2d_deep_supervision_weights_copied_give_the_same_outputs():
    """The 2D network, kernel 5, every output of its deep supervision."""
    from archgen.emit import emit_model

    net = MedNeXtS(spatial_dims=2, in_channels=1, out_channels=2, kernel_size=5, deep_supervision=True).eval()
    randomize(net)
    model = emit_model(make_plan(validate(mednext_data("S", 5, shape=(32, 48, 1), deep_supervision=True))))
    assert keras_counts(model) == torch_counts(net)
    copy_weights(model, pairs(net))
    compare_outputs(model, net, (1, 32, 48), training_outputs)


@pytest.mark.slow
def test_mednext_l_k5_3d_weights_copied_give_the_same_outputs():
    from archgen.emit import emit_model

    net = MedNeXtL(spatial_dims=3, in_channels=1, out_channels=2, kernel_size=5, deep_supervision=True).eval()
    randomize(net)
    model = emit_model(plan_of("monai_mednext_l_k5_3d", [16, 16, 32, 1]))
    copy_weights(model, pairs(net))
    compare_outputs(model, net, (1, 16, 16, 32), training_outputs)


def test_global_response_norm_weights_copied_give_the_same_outputs():
    """MONAI's ``global_resp_norm=True`` (every block, down and up blocks included), its gamma and
    beta random so that the normalisation is not the identity it starts as."""
    import numpy as np

    from archgen.emit import emit_model

    net = MedNeXt(spatial_dims=2, in_channels=1, out_channels=2, kernel_size=3, use_residual_connection=True,
                  global_resp_norm=True).eval()  # MedNeXtS with it (create_mednext does not pass it on)
    randomize(net)
    with torch.no_grad():
        for name, param in net.named_parameters():
            if "global_resp" in name:
                param.normal_(0.0, 0.5)
    plan = make_plan(validate(mednext_data("S", 3, shape=(32, 48, 1), global_resp_norm=True)))
    assert plan.total_params == torch_counts(net)[0] == 5_487_618
    model = emit_model(plan)
    blocks = {name[: -len("_dwconv")]: module for name, module in _dwconv_blocks(net) if module.global_resp_norm}
    for prefix, block in blocks.items():
        model.get_layer(f"{prefix}_grn").set_weights([block.global_resp_gamma.detach().numpy().reshape(-1),
                                                      block.global_resp_beta.detach().numpy().reshape(-1)])
    copy_weights(model, pairs(net), copied=[f"{prefix}_grn" for prefix in blocks])
    assert len(blocks) == sum(type(x).__name__ == "GlobalResponseNorm" for x in model.layers) > 20
    compare_outputs(model, net, (1, 32, 48), lambda n, x: [n(x)])
    assert np.isfinite(model.predict(np.zeros((1, 32, 48, 1), np.float32), verbose=0)).all()


def _dwconv_blocks(net):
    """(archgen's depthwise conv name, MONAI's block) for every block, in ``pairs``' order."""
    n = len(net.enc_stages)

    def named(prefix, blocks):
        blocks = list(blocks)
        return [(f"{prefix if len(blocks) == 1 else f'{prefix}_block{j + 1}'}_dwconv", b) for j, b in enumerate(blocks)]

    out = []
    for i in range(n):
        out += named(f"enc{i + 1}", net.enc_stages[i]) + [(f"enc{i + 1}_down_dwconv", net.down_blocks[i])]
    out += named("bottleneck", net.bottleneck)
    for i in range(n):
        out += [(f"dec{n - i}_up_dwconv", net.up_blocks[i])] + named(f"dec{n - i}", net.dec_stages[i])
    return out
