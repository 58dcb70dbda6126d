"""archgen auto: nnU-Net's rules on known cases, its VRAM estimate, the written config, bad input."""

from __future__ import annotations

import contextlib
import io
import json
import random
import subprocess
import sys

import pytest
import yaml

from archgen.auto.cli import main
from archgen.auto.config import stage_lists
from archgen.auto.nnunet import FAMILIES, feature_map_elements, features_per_stage, pool_and_conv_props


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def plans(*argv) -> dict:
    code, out, err = run(*argv, "--json")
    assert code == 0, err
    return json.loads(out)["configurations"]


# --- nnU-Net's rules on cases one can check by hand (nnU-Net's own memory model) -------------------

def nnunet_plans(*argv) -> dict:
    return plans(*argv, "--memory", "nnunet")


def test_isotropic_128_cube_is_nnunets_textbook_network():
    conf = nnunet_plans("--shape", "128,128,128", "--spacing", "1,1,1", "--classes", "3", "--fit", "8GB")["3d_fullres"]
    assert conf["patch_size"] == [128, 128, 128]
    assert conf["strides"] == [[1, 1, 1]] + [[2, 2, 2]] * 5  # 128 / 2^5 = 4, the minimum edge
    assert conf["kernel_sizes"] == [[3, 3, 3]] * 6
    assert conf["features_per_stage"] == [32, 64, 128, 256, 320, 320]  # doubling, capped at 320
    assert conf["n_conv_per_stage"] == [2] * 6 and conf["n_conv_per_stage_decoder"] == [2] * 5
    assert conf["batch_size"] == 2


def test_anisotropic_axis_gets_1_kernels_and_pools_late():
    conf = nnunet_plans("--shape", "20,256,256", "--spacing", "5,0.7,0.7", "--classes", "2")["3d_fullres"]
    # the 5 mm axis pools only once the in-plane spacing has doubled past 5 / 2 (the 2x rule)...
    assert [s[0] for s in conf["strides"]][:4] == [1, 1, 1, 2]
    # ... and keeps 1-kernels until its spacing is within 2x of the others (5 / 2.8 after two pools)
    assert [k[0] for k in conf["kernel_sizes"]][:3] == [1, 1, 3]
    assert all(k[1:] == [3, 3] for k in conf["kernel_sizes"])


def test_coarse_axis_is_moved_first():
    code, out, _ = run("--shape", "256,20,256", "--spacing", "0.7,5,0.7", "--classes", "2", "--json")
    assert json.loads(out)["transpose_forward"] == [1, 0, 2]


def test_2d_dataset_and_512_cap():
    confs = nnunet_plans("--shape", "512,512", "--spacing", "0.5,0.5", "--classes", "2")
    assert list(confs) == ["2d"]
    assert confs["2d"]["features_per_stage"] == [32, 64, 128, 256, 512, 512, 512, 512]


@pytest.mark.parametrize("memory", ["nnunet", "archgen"])
def test_budget_shrinks_patch_and_grows_batch(memory):
    small = plans("--shape", "256,256,256", "--spacing", "1,1,1", "--classes", "2", "--fit", "4GB",
                  "--memory", memory)["3d_fullres"]
    large = plans("--shape", "256,256,256", "--spacing", "1,1,1", "--classes", "2", "--fit", "40GB",
                  "--cases", "1000", "--memory", memory)["3d_fullres"]
    assert small["patch_size"] < large["patch_size"]
    big_batch = plans("--shape", "64,64,64", "--spacing", "1,1,1", "--classes", "2", "--fit", "40GB",
                      "--cases", "10000", "--memory", memory)["3d_fullres"]
    assert big_batch["batch_size"] > 2


@pytest.mark.parametrize("memory", ["nnunet", "archgen"])
def test_batch_capped_at_5_percent_of_the_dataset_for_plain_only(memory):
    plain = plans("--shape", "64,64,64", "--spacing", "1,1,1", "--classes", "2", "--cases", "20",
                  "--memory", memory)["3d_fullres"]
    assert plain["batch_size"] == 2  # 5% of 20 cases is one patch: the minimum 2 wins
    resenc = plans("--shape", "64,64,64", "--spacing", "1,1,1", "--classes", "2", "--cases", "20",
                   "--family", "resenc_m", "--memory", memory)["3d_fullres"]
    assert resenc["batch_size"] > 2 and resenc["n_blocks_per_stage"][:3] == [1, 3, 4]


def test_pooling_stops_at_the_minimum_edge():
    topo = pool_and_conv_props([1.0, 1.0], [40, 24])
    # 24 -> 12 -> 6 stops (< 2 x 4); 40 -> 20 -> 10 would pool alone, which needs >= 3 x 4
    assert topo.strides == [[1, 1], [2, 2], [2, 2]]
    assert topo.patch == [40, 24]


# --- nnU-Net's VRAM estimate without PyTorch ----------------------------------------------------

def _random_topologies(seed: int, count: int):
    rng = random.Random(seed)
    for _ in range(count):
        dim = rng.choice([2, 3])
        spacing = [rng.uniform(0.5, 5.0) for _ in range(dim)]
        patch = [rng.randint(8, 160) for _ in range(dim)]
        topo = pool_and_conv_props(spacing, patch)
        yield dim, topo, rng.randint(1, 4), rng.randint(2, 6)


@pytest.mark.parametrize("family", ["plain", "resenc_m"])
def test_feature_map_estimate_equals_dynamic_network_architectures(family):
    torch = pytest.importorskip("torch")
    pytest.importorskip("dynamic_network_architectures")
    from dynamic_network_architectures.architectures.unet import PlainConvUNet, ResidualEncoderUNet

    fam = FAMILIES[family]
    for dim, topo, channels, classes in _random_topologies(3 if family == "plain" else 4, 6):
        n = len(topo.strides)
        conv = torch.nn.Conv3d if dim == 3 else torch.nn.Conv2d
        norm = torch.nn.InstanceNorm3d if dim == 3 else torch.nn.InstanceNorm2d
        kw = dict(input_channels=channels, n_stages=n, features_per_stage=features_per_stage(n, dim), conv_op=conv,
                  kernel_sizes=topo.kernels, strides=topo.strides, num_classes=classes,
                  n_conv_per_stage_decoder=fam.blocks_decoder[:n - 1], conv_bias=True, norm_op=norm,
                  norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=torch.nn.LeakyReLU)
        if fam.residual:
            net = ResidualEncoderUNet(n_blocks_per_stage=fam.blocks_encoder[:n], **kw)
        else:
            net = PlainConvUNet(n_conv_per_stage=fam.blocks_encoder[:n], **kw)
        want = int(net.compute_conv_feature_map_size(topo.patch))
        got = feature_map_elements(topo.patch, channels, classes, features_per_stage(n, dim), topo.strides,
                                   fam.blocks_encoder[:n], fam.blocks_decoder[:n - 1], fam.residual)
        assert got == want, (topo, family)


# --- the written config ----------------------------------------------------------------------------

CASES = [("3d_iso", ["--shape", "128,128,128", "--spacing", "1,1,1"]),
         ("3d_aniso", ["--shape", "20,256,256", "--spacing", "5,0.7,0.7"]),
         ("2d", ["--shape", "512,512", "--spacing", "0.5,0.5"])]


@pytest.mark.parametrize("family", ["plain", "resenc_m"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_yaml_stage_lists_equal_the_plan(tmp_path, case, family):
    _, args = case
    out = tmp_path / "plan.yaml"
    code, text, err = run(*args, "--classes", "3", "--family", family, "-o", out)
    assert code == 0, err
    conf = plans(*args, "--classes", "3", "--family", family)
    conf = conf["3d_fullres"] if "3d_fullres" in conf else conf["2d"]
    doc = yaml.safe_load(out.read_text())
    n = conf["n_stages"]
    enc, dec = doc["encoder"]["stages"], doc["decoder"]["stages"]
    assert len(enc) == n and len(dec) == n - 1
    dim = len(conf["patch_size"])

    def axes(v):
        return v if isinstance(v, list) else [v] * dim

    assert [s["filters"] for s in enc] == conf["features_per_stage"]
    assert [axes(s["kernel_size"]) for s in enc] == conf["kernel_sizes"]
    assert [axes(s["stride"]) for s in enc] == conf["strides"]
    if family == "plain":
        assert [s["convs"] for s in enc] == conf["n_conv_per_stage"]
    else:
        assert [s["blocks"] for s in enc] == conf["n_blocks_per_stage"]
    assert [s["convs"] for s in dec] == conf["n_conv_per_stage_decoder"][::-1]
    assert [s["filters"] for s in dec] == conf["features_per_stage"][:-1]
    assert [axes(s["kernel_size"]) for s in dec] == conf["kernel_sizes"][:-1]
    assert doc["input"]["shape"] == [*conf["patch_size"], 1]
    assert doc["heads"][0]["filters"] == 3 and doc["heads"][0]["deep_supervision"] == list(range(2, n))
    assert doc["train"] == {"batch_size": conf["batch_size"]}  # archgen train trains the batch that was sized
    assert stage_lists(conf, FAMILIES[family]) == (enc, dec)
    assert text.startswith(str(out))
    assert "# Written by `archgen auto`" in out.read_text()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_generated_plain_config_builds_plainconvunets_parameter_count(tmp_path, case):
    """archgen's planned parameter count (trainable; instance norm's affine weights in both) equals
    PlainConvUNet's built from the same nnU-Net configuration."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("dynamic_network_architectures")
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    import archgen

    _, args = case
    out = tmp_path / "plan.yaml"
    assert run(*args, "--classes", "3", "--channels", "2", "-o", out)[0] == 0
    confs = plans(*args, "--classes", "3", "--channels", "2")
    conf = confs["3d_fullres"] if "3d_fullres" in confs else confs["2d"]
    dim = len(conf["patch_size"])
    net = PlainConvUNet(
        input_channels=2, n_stages=conf["n_stages"], features_per_stage=conf["features_per_stage"],
        conv_op=torch.nn.Conv3d if dim == 3 else torch.nn.Conv2d, kernel_sizes=conf["kernel_sizes"],
        strides=conf["strides"], n_conv_per_stage=conf["n_conv_per_stage"], num_classes=3,
        n_conv_per_stage_decoder=conf["n_conv_per_stage_decoder"], conv_bias=True,
        norm_op=torch.nn.InstanceNorm3d if dim == 3 else torch.nn.InstanceNorm2d,
        norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=torch.nn.LeakyReLU, deep_supervision=True)
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    plan = archgen.plan(str(out))
    assert plan.total_params == trainable
    assert plan.output_shapes["logits"] == (*conf["patch_size"], 3)


def test_thin_images_plan_as_nnunet_plans_them():
    """Axes thinner than a feature map's least edge (4) are nnU-Net's to plan: it never pools them,
    and the patch may shrink below 4 there (nnU-Net 2.8.1: a 4x400x400 slab at 10 mm, 2 GB, gives
    3x384x384 with 7 stages). A case thinner than that among others changes only the medians."""
    slab = nnunet_plans("--shape", "4,400,400", "--spacing", "10,1,1", "--classes", "2", "--fit", "2GB",
                        "--cases", "1")["3d_fullres"]
    assert slab["patch_size"] == [3, 384, 384] and slab["n_stages"] == 7
    assert all(s[0] == 1 for s in slab["strides"])
    thin = nnunet_plans("--shape", "2,500,500", "--spacing", "1,1,1", "--classes", "2")["3d_fullres"]
    assert thin["patch_size"][0] == 2 and all(s[0] == 1 for s in thin["strides"])


def test_a_configuration_that_cannot_be_planned_leaves_the_others():
    """nnU-Net 2.8.1 shrinks this 3d_fullres patch to a one-stage network with no decoder (its forward
    pass fails); archgen refuses that configuration, names why, and still plans 2d."""
    argv = ["--shape", "360,460,17", "--spacing", "2.4,1.5,0.4", "--classes", "2", "--fit", "2GB", "--memory",
            "nnunet"]
    code, out, err = run(*argv)
    assert code == 2 and err.startswith("error: --fit=2GB: no patch fits") and "leaves no down-sampling" in err
    code, out, err = run(*argv, "--configuration", "2d", "--json")
    answer = json.loads(out)
    assert code == 0 and list(answer["configurations"]) == ["2d"]
    assert answer["not_made"]["3d_fullres"].startswith("--fit: no patch fits")
    assert answer["not_made"]["3d_lowres"] == "3d_fullres was not made"
    code, out, err = run(*argv, "--configuration", "3d_lowres")
    assert code == 2 and "3d_lowres: was not made: 3d_fullres was not made; made: 2d" in err


def test_json_says_why_3d_lowres_was_not_made():
    answer = json.loads(run("--shape", "128,128,128", "--spacing", "1,1,1", "--classes", "2", "--json")[1])
    assert answer["not_made"] == {"3d_lowres": "the 3d_fullres patch already covers 25% of the median image"}
    answer = json.loads(run("--shape", "512,512", "--spacing", "1,1", "--classes", "2", "--json")[1])
    assert answer["not_made"] == {"3d_fullres": "the dataset is 2D", "3d_lowres": "the dataset is 2D"}


# --- bad input: one message, exit 2 ------------------------------------------------------------

BAD = [
    (["--shape", "128,128,128", "--spacing", "1,0,1", "--classes", "2"], "--spacing=1,0,1: axis 1 is 0"),
    (["--shape", "128,128,128", "--spacing", "1,-2,1", "--classes", "2"], "--spacing=1,-2,1: axis 1 is -2"),
    (["--shape", "128,0,128", "--spacing", "1,1,1", "--classes", "2"],
     "--shape=128,0,128: axis 1 is 0: every size must be a positive whole number of voxels"),
    (["--shape", "3,3,3", "--spacing", "1,1,1", "--classes", "2"],
     "--shape=[3, 3, 3]: is too small for a U-Net: the 3D median image [3, 3, 3] at the spacing [1.0, 1.0, 1.0] "
     "allows no down-sampling"),
    (["--shape", "128,128", "--spacing", "1,1,1", "--classes", "2"], "--spacing=1,1,1: has 3 values; --shape has 2"),
    (["--shape", "a,b", "--spacing", "1,1", "--classes", "2"], "--shape=a,b: expected integers"),
    (["--shape", "128,128,128", "--spacing", "1,1,1", "--classes", "2", "--fit", "1MB"], "--fit=1MB: no patch fits"),
    (["--shape", "128,128,128", "--spacing", "1,1,1", "--classes", "2", "--fit", "8"], "--fit=8: needs a unit"),
    (["--shape", "128,128,128", "--spacing", "1,1,1", "--classes", "1"], "--classes=1: counts the labels"),
    (["--shape", "128,128,128", "--spacing", "1,1,1"], "--classes: is required with --shape"),
    (["--spacing", "1,1,1", "--classes", "2"], "--shape: is required without --fingerprint"),
    (["--shape", "512,512", "--spacing", "1,1", "--classes", "2", "--configuration", "3d_fullres"],
     "--configuration=3d_fullres: was not made: the dataset is 2D"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_figures_exit_2_with_one_message(argv, message):
    code, out, err = run(*argv)
    assert code == 2 and out == ""
    assert err.startswith("error: " + message), err
    assert "Traceback" not in err


def _fingerprint(spacings, shapes):
    return {"spacings": spacings, "shapes_after_crop": shapes}


BAD_FILES = [
    (_fingerprint([[1, 1, 1]] * 3 + [[1, 0, 1]], [[64, 64, 64]] * 4), "fingerprint.spacings[3][1]=0: every spacing"),
    (_fingerprint([[1, 1, 1]] * 2, [[64, 64, 64], [64, 0, 64]]),
     "fingerprint.shapes_after_crop[1][1]=0: every size must be a positive whole number of voxels"),
    (_fingerprint([[1, 1, 1]], [[64, 64, 64]] * 2), "fingerprint.spacings=1 cases: has 1 cases but shapes_after_crop has 2"),
    (_fingerprint([[1, 1]], [[64, 64, 64]]), "fingerprint.spacings[0]=[1, 1]: must list 3 values"),
    ({"spacings": [[1, 1, 1]]}, "fingerprint.shapes_after_crop: is missing"),
    ([1, 2], "fingerprint=list: must be a JSON object"),
    ("{not json", "fingerprint="),
]


@pytest.mark.parametrize("content,message", BAD_FILES, ids=[str(i) for i in range(len(BAD_FILES))])
def test_bad_fingerprint_exits_2_with_a_dotted_path(tmp_path, content, message):
    path = tmp_path / "dataset_fingerprint.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    code, out, err = run("--fingerprint", path, "--classes", "2")
    assert code == 2 and out == ""
    assert err.startswith("error: " + message), err
    if isinstance(content, str):
        assert "is not JSON" in err


def test_bad_dataset_json(tmp_path):
    fp = tmp_path / "fp.json"
    fp.write_text(json.dumps(_fingerprint([[1, 1, 1]], [[64, 64, 64]])))
    ds = tmp_path / "dataset.json"
    ds.write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": {"background": 0}, "numTraining": 5}))
    code, _, err = run("--fingerprint", fp, "--dataset", ds)
    assert code == 2 and err.startswith("error: dataset.labels={background: 0}: must map at least")
    code, _, err = run("--fingerprint", tmp_path / "missing.json", "--classes", "2")
    assert code == 2 and err.startswith("error: --fingerprint=") and err.endswith(": no such file\n")


def test_output_is_not_overwritten_without_force(tmp_path):
    out = tmp_path / "plan.yaml"
    out.write_text("keep")
    code, _, err = run("--shape", "64,64,64", "--spacing", "1,1,1", "--classes", "2", "-o", out)
    assert code == 2 and "already exists; pass --force" in err and out.read_text() == "keep"
    assert run("--shape", "64,64,64", "--spacing", "1,1,1", "--classes", "2", "-o", out, "--force")[0] == 0


def test_auto_never_imports_tensorflow_or_torch():
    code = ("import sys; from archgen.auto.cli import main; main(['--shape','64,64,64','--spacing','1,1,1',"
            "'--classes','2','--json']); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow','keras','torch')]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_auto_runs_from_the_archgen_command(tmp_path, cli):
    out = tmp_path / "plan.yaml"
    code, stdout, err = cli("auto", "--shape", "64,64,64", "--spacing", "1,1,1", "--classes", "2", "-o", out)
    assert code == 0, err
    text = out.read_text()
    assert "# Written by `archgen auto` (archgen auto --shape 64,64,64" in text
    code, stdout, err = cli("validate", out)
    assert code == 0, err


def test_a_resenc_m_plan_builds_nnunets_residual_encoder_unet(tmp_path, cli):
    """ResEnc M for 128^3, 1 channel, 3 classes: dynamic-network-architectures' ResidualEncoderUNet
    has 102,350,575 trainable parameters (tests/peers/test_nnunet_resenc.py builds it)."""
    import archgen

    out = tmp_path / "plan.yaml"
    code, _, err = cli("auto", "--shape", "128,128,128", "--spacing", "1,1,1", "--classes", "3",
                       "--family", "resenc_m", "--memory", "nnunet", "-o", out)
    assert code == 0, err
    assert archgen.plan(out).total_params == 102_350_575


@pytest.mark.parametrize("names,normalize", [({"0": "CT"}, "ct"), ({"0": "noNorm"}, "none"), ({"0": "T2"}, None),
                                             ({"0": "CT", "1": "T2"}, None)])
def test_the_written_config_normalizes_as_nnunet_names_its_channels(tmp_path, names, normalize):
    """nnU-Net's scheme per channel name (CT, noNorm, else z-score): one for every channel in archgen."""
    from tests.conftest import ROOT

    dataset = json.loads((ROOT / "examples" / "auto" / "dataset.json").read_text())
    dataset["channel_names"] = names
    (tmp_path / "dataset.json").write_text(json.dumps(dataset))
    out = tmp_path / "plan.yaml"
    code, _, err = run("--fingerprint", ROOT / "examples" / "auto" / "dataset_fingerprint.json", "--dataset",
                       tmp_path / "dataset.json", "-o", out)
    assert code == 0, err
    text = out.read_text()
    doc = yaml.safe_load(text)
    assert doc.get("data") == ({"normalize": normalize} if normalize else None)
    assert ("channels ask for different normalizations (ct, zscore)" in " ".join(text.split())) == (len(names) > 1)
