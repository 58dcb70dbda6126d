"""segmentation_models' Unet on its own encoders against conf/peers/: image-classifiers' ResNet18,
ResNet34, ResNet50 and SE-ResNet18 (smp_unet_resnet18.yaml, smp_unet_resnet34.yaml,
smp_unet_resnet50_classifiers.yaml, smp_unet_seresnet18.yaml), keras_applications' VGG16 with
segmentation_models' centre block (smp_unet_vgg16.yaml), DenseNet121 and MobileNetV2
(smp_unet_densenet121.yaml, smp_unet_mobilenetv2.yaml).

segmentation_models 1.0.1 runs on Keras 2 only, so ``smp_peer.py`` builds it in a process of its
own and hands over its counts, output shapes, weights, inputs and outputs in an .npz file. The
counts it reports are recorded below too, so that the plan and the Keras model are checked against
them without it; the slow test checks the record against segmentation_models itself.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from tests.peers.common import keras_counts, plan_of

keras = pytest.importorskip("keras")
from archgen.emit import emit_model  # noqa: E402

PEER_SCRIPT = Path(__file__).with_name("smp_peer.py")


class Peer(NamedTuple):
    backbone: str
    trainable: int  # as segmentation_models' Unet(backbone, classes=1) counts them
    total: int  # Keras 2's count_params(): the batch norms' moving statistics too
    blocks: tuple[int, ...] = ()  # units per stage of an SE-ResNet: where its unnamed SE convs belong


PEERS = {
    "smp_unet_resnet18": Peer("resnet18", 14_330_644, 14_340_570),
    "smp_unet_resnet34": Peer("resnet34", 24_438_804, 24_456_154),
    "smp_unet_resnet50_classifiers": Peer("resnet50", 32_513_556, 32_561_114),
    "smp_unet_seresnet18": Peer("seresnet18", 14_419_724, 14_429_650, (2, 2, 2, 2)),
    "smp_unet_vgg16": Peer("vgg16", 23_748_241, 23_752_273),
    "smp_unet_densenet121": Peer("densenet121", 12_059_345, 12_144_977),
    "smp_unet_mobilenetv2": Peer("mobilenetv2", 8_011_345, 8_047_441),
}
SIZES = ((64, 96), (96, 64), (224, 224))  # the first is also where the outputs are compared
DECODER_STAGES = 5


def archgen_layer(name: str, blocks: tuple[int, ...] = ()) -> str | None:
    """The archgen layer that plays the role of segmentation_models' layer ``name``; None for a
    layer of the VGG backbone, which keeps its name inside archgen's nested ``backbone``.

    image-classifiers' stage s (1..4) is archgen's level s + 2 (level 1 is the input, level 2 the
    stem), the last one the bottleneck. Its ``stage{s}_unit1_bn1`` for s > 1 normalises stage
    s - 1's output, which archgen's stage hands on normalised: ``enc{s+1}_out_norm``. An SE-ResNet's
    gates are unnamed 1x1 convs (``conv2d``, ``conv2d_1``, ...), two a unit in build order: ``blocks``
    gives the units per stage."""
    fixed = {"bn_data": "stem_input_norm", "conv0": "stem_conv1", "bn0": "stem_norm1",
             "bn1": "bottleneck_out_norm", "final_conv": "mask"}
    if name in fixed:
        return fixed[name]
    if m := re.fullmatch(r"stage(\d)_unit(\d+)_(conv|bn|sc)(\d?)", name):
        stage, unit, kind, index = int(m[1]), int(m[2]), m[3], m[4]
        block = f"{'bottleneck' if stage == 4 else f'enc{stage + 2}'}_block{unit}"
        if kind == "sc":
            return f"{block}_proj"
        if kind == "bn" and index == "1" and unit == 1 and stage > 1:
            return f"enc{stage + 1}_out_norm"
        return f"{block}_{'conv' if kind == 'conv' else 'norm'}{index}"
    if blocks and (m := re.fullmatch(r"conv2d(?:_(\d+))?", name)):
        k = int(m[1] or 0)
        units = [(stage, unit) for stage, n in enumerate(blocks, 1) for unit in range(1, n + 1)]
        stage, unit = units[k // 2]
        block = f"{'bottleneck' if stage == len(blocks) else f'enc{stage + 2}'}_block{unit}"
        return f"{block}_se_{'reduce' if k % 2 == 0 else 'expand'}"
    if m := re.fullmatch(r"decoder_stage(\d)([ab])_(conv|bn)", name):
        return f"dec{DECODER_STAGES - int(m[1])}_{'conv' if m[3] == 'conv' else 'norm'}{1 if m[2] == 'a' else 2}"
    if m := re.fullmatch(r"center_block(\d)_(conv|bn)", name):
        return f"bottleneck_{'conv' if m[2] == 'conv' else 'norm'}{m[1]}"
    return None


def copy_peer_weights(peer: dict[str, np.ndarray], model, blocks: tuple[int, ...] = ()) -> None:
    """Every weight of the peer into the archgen layer of its role (a backbone's layer by its name,
    keras_applications' ``conv1/conv`` being Keras 3's ``conv1_conv``); every archgen layer with
    weights must get some."""
    by_layer: dict[str, dict[int, np.ndarray]] = {}
    for key, value in peer.items():
        if key.startswith("weights/"):
            layer, index = key[len("weights/"):].rsplit("/", 1)
            by_layer.setdefault(layer, {})[int(index)] = value
    done = set()
    for layer, weights in by_layer.items():
        target = archgen_layer(layer, blocks)
        found = (model.get_layer("backbone").get_layer(layer.replace("/", "_")) if target is None
                 else model.get_layer(target))
        found.set_weights([weights[i] for i in sorted(weights)])
        done.add(found.name)
    owners = {layer.name for layer in model.layers if layer.weights and layer.name != "backbone"}
    if "backbone" in {layer.name for layer in model.layers}:
        owners |= {layer.name for layer in model.get_layer("backbone").layers if layer.weights}
    assert owners == done, f"without weights: {sorted(owners - done)}; copied twice or unknown: {sorted(done - owners)}"


@pytest.mark.parametrize("config", PEERS)
def test_plan_counts_and_output_shapes(config):
    for h, w in SIZES:
        plan = plan_of(config, [h, w, 3])
        assert plan.total_params == PEERS[config].total
        assert plan.output_shapes == {"mask": (h, w, 1)}
    assert plan.sizes.period == 32  # every multiple of 32, as segmentation_models asks


@pytest.mark.parametrize("config", PEERS)
def test_keras_trainable_counts(config):
    model = emit_model(plan_of(config, [*SIZES[0], 3]))
    peer = PEERS[config]
    assert keras_counts(model) == (peer.trainable, peer.total - peer.trainable)


@pytest.mark.parametrize("name, expected", [
    ("bn_data", "stem_input_norm"), ("stage1_unit1_bn1", "enc3_block1_norm1"), ("stage1_unit1_sc", "enc3_block1_proj"),
    ("stage2_unit1_bn1", "enc3_out_norm"), ("stage2_unit2_bn1", "enc4_block2_norm1"),
    ("stage4_unit3_conv3", "bottleneck_block3_conv3"), ("bn1", "bottleneck_out_norm"),
    ("decoder_stage0a_conv", "dec5_conv1"), ("decoder_stage4b_bn", "dec1_norm2"), ("center_block2_bn", "bottleneck_norm2"),
    ("block3_conv2", None)])
def test_layer_roles(name, expected):
    assert archgen_layer(name) == expected


def run_peer(backbone: str, out: Path) -> dict[str, np.ndarray]:
    numbers = [str(n) for size in SIZES for n in size]
    done = subprocess.run([sys.executable, str(PEER_SCRIPT), backbone, str(out), *numbers], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return dict(np.load(out))


@pytest.mark.slow
@pytest.mark.parametrize("config", PEERS)
def test_against_segmentation_models(config, tmp_path):
    for module in ("segmentation_models", "tf_keras"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (the peers extra installs it)")
    peer = run_peer(PEERS[config].backbone, tmp_path / "peer.npz")
    assert (int(peer["trainable"]), int(peer["total"])) == PEERS[config][1:3]
    for h, w in SIZES:
        assert tuple(peer[f"shape_{h}x{w}"]) == plan_of(config, [h, w, 3]).output_shapes["mask"]
    model = emit_model(plan_of(config, [*SIZES[0], 3]))
    copy_peer_weights(peer, model, PEERS[config].blocks)
    expected = peer["y"]
    assert 0.05 < expected.std()  # a sigmoid saturated at 0 or 1 everywhere would prove little
    np.testing.assert_allclose(model.predict(peer["x"], verbose=0), expected, rtol=0, atol=1e-4)
