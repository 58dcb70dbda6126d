"""The command line: output, JSON, errors and exit codes, atomic builds."""

from __future__ import annotations

import json

import pytest

from tests.conftest import CONF
from tests.reference.seed_unet_counts import conv_params, seed_unet_output, seed_unet_params

UNET = CONF / "unet.yaml"
# The sizes the paper's network takes (every 2x2 max-pool meets an even size), walked by hand.
SEED_SIZES = [n for n in range(1, 300) if seed_unet_output(n)]


def test_summary_reads_like_the_diagram(cli):
    code, out, err = cli("summary", UNET)
    assert code == 0, err
    for text in ("encoder level 1", "bottleneck", "decoder level 4", "heads", "dec4_crop", "crop 4+4, 4+4",
                 f"{seed_unet_params():,}", "388x388x2", "n = 16k + 60, k >= 8", "n - 184"):
        assert text in out
    assert out.index("encoder level 4") < out.index("bottleneck") < out.index("decoder level 4") \
        < out.index("decoder level 1") < out.index("heads")


def test_summary_with_overrides(cli):
    code, out, _ = cli("summary", UNET, "encoder.depth=3", "padding=same", "input.shape=[568,568,1]")
    assert code == 0
    assert "enc4_conv1" not in out and "enc3_pool" in out
    assert "568x568x2" in out


def test_summary_json(cli):
    code, out, _ = cli("summary", UNET, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["total_params"] == seed_unet_params()
    assert data["input_shape"] == [572, 572, 1]
    assert data["outputs"] == {"logits": [388, 388, 2]}
    assert sum(layer["params"] for layer in data["layers"]) == data["total_params"]
    crops = {layer["name"]: layer["crop"] for layer in data["layers"] if layer["kind"] == "crop"}
    assert crops == {"dec4_crop": [[4, 4], [4, 4]], "dec3_crop": [[16, 16], [16, 16]],
                     "dec2_crop": [[40, 40], [40, 40]], "dec1_crop": [[88, 88], [88, 88]]}
    first = data["layers"][1]
    assert first == {**first, "name": "enc1_conv1", "kind": "conv", "output_shape": [570, 570, 64],
                     "params": conv_params(3, 1, 64)}
    assert data["legal_sizes"]["first"][:3] == SEED_SIZES[:3]


def test_asymmetric_crop_when_difference_is_odd(cli):
    # One 2x2 valid conv per level and 3x down/up-sampling: the skip is 30 wide, the up-sampled
    # feature 27, so 3 columns go: 1 before, 2 after.
    code, out, err = cli("summary", UNET, "--json", "encoder.depth=1", "encoder.block.convs=1",
                         "encoder.block.kernel_size=2", "encoder.downsample.factor=3", "decoder.upsample.factor=3",
                         "input.shape=[31,34,1]")
    assert code == 0, err
    crops = [layer["crop"] for layer in json.loads(out)["layers"] if layer["kind"] == "crop"]
    assert crops == [[[1, 2], [1, 2]]]


@pytest.mark.parametrize("argv, expected", [
    (["summary", UNET, "encoder.dept=3"], "encoder.dept=3: no such key (did you mean 'depth'?)"),
    (["summary", UNET, "+encoder.dept=3"], "encoder.dept=3: unknown key (did you mean 'depth'?)"),
    (["summary", UNET, "padding=vaild"], "padding=vaild: input should be 'valid' or 'same'"),
    (["summary", UNET, "encoder.depth=-1"], "encoder.depth=-1: input should be greater than or equal to 0"),
    (["summary", UNET, "encoder.block.type=resid"], "did you mean 'residual'?"),
    (["summary", UNET, "heads.0.lvl=2"], "heads.0.lvl=2: no such key (did you mean 'level'?)"),
    (["summary", UNET, "~heads"], "heads: is required"),
    (["summary", UNET, "input.shape=[570,570,1]"], "nearest: 556 (output 372), 572 (output 388)"),
    (["summary", CONF / "missing.yaml"], "no such file"),
    (["summary", CONF], "is a directory"),
    (["sumary", UNET], "did you mean 'summary'?"),
    (["summary"], "the following arguments are required: config\n"),
    (["summary", UNET, "--nope"], "unrecognized arguments: --nope"),
    (["summary", CONF / "peers/monai_unet_2d.yaml", "decoder.upsample.output_padding=2"],
     "decoder.upsample.output_padding=2: output_padding above the padding (1)"),
    (["summary", CONF / "peers/monai_unet_2d.yaml", "encoder.stages.4.stride=2"], "encoder.stages[4].stride=[2, 2]: with decoder.merge_at"),
    (["validate", UNET, "+x=" + "[" * 200 + "]" * 200], "x=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["),
    (["validate", UNET, "+x=" + "{a:" * 40 + "1" + "}" * 40], "nests deeper than 32 levels"),
    (["summary", "-m", UNET, "encoder.depth=1,2", "+x=" + "[" * 200 + "]" * 200], "nests deeper than 32 levels"),
    (["summary", UNET, "input.shape=[2147483646,2147483646,1]"], "2147483644 (output 2147483460)\n"),
    (["summary", UNET, "encoder.depth='3'"], "encoder.depth=3: input should be a valid integer, not the string '3' "
                                             "(write it without quotes)\n"),
    (["summary", UNET, "encoder.filters=[8,16,-1]"], "encoder.filters[2]=-1: input should be greater than or equal "
                                                     "to 1\n"),
    (["summary", UNET, "encoder.filters=[8,16,a]"], "encoder.filters[2]=a: input should be a valid integer\n"),
    (["summary", CONF / "unet_same.yaml", "encoder.downsample.factor=4", "decoder.upsample.factor=2"],
     "decoder.upsample.factor=2: the decoder up-samples by the factor the encoder down-sampled with"),
])
def test_errors_exit_2_with_one_clear_message(cli, argv, expected):
    code, out, err = cli(*argv)
    assert code == 2
    assert err.startswith("error: ")
    assert expected in err
    assert "Traceback" not in err


def test_override_a_key_the_file_leaves_at_its_default(cli):
    code, out, err = cli("summary", UNET, "--json", "encoder.block.norm=batch", "decoder.upsample.bias=false")
    assert code == 0, err
    layers = {layer["name"]: layer for layer in json.loads(out)["layers"]}
    assert layers["enc1_norm1"]["params"] == 4 * 64
    assert layers["enc1_conv1"]["params"] == 9 * 64  # no bias beside a norm
    assert layers["dec1_up"]["params"] == 4 * 128 * 64


def test_validate(cli):
    assert cli("validate", UNET)[0] == 0
    code, _, err = cli("validate", UNET, "encoder.depth=6")
    assert code == 2 and "input.shape" in err


def test_schema_is_json(cli):
    code, out, _ = cli("schema")
    assert code == 0
    assert "encoder" in json.loads(out)["properties"]


@pytest.mark.slow
def test_build_writes_atomically_and_refuses_to_overwrite(cli, tmp_path):
    keras = pytest.importorskip("keras")
    target = tmp_path / "small.keras"
    args = ["build", CONF / "unet_same.yaml", "input.shape=[32,32,1]", "encoder.filters=2", "-o", target]
    code, out, err = cli(*args)
    assert code == 0, err
    assert "wrote" in out
    model = keras.saving.load_model(target, safe_mode=True)
    assert model.layers[-1].name == "logits" and model.output_names == ["logits"]
    before = target.read_bytes()

    code, _, err = cli(*args[:-2], "encoder.filters=4", "-o", target)
    assert code == 2 and "--force" in err
    assert target.read_bytes() == before

    code, _, err = cli(*args[:-2], "encoder.filters=4", "-o", target, "--force")
    assert code == 0, err
    assert keras.saving.load_model(target).count_params() != model.count_params()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.keras"]


@pytest.mark.slow
def test_failed_build_leaves_old_file_and_no_partial(cli, tmp_path, monkeypatch):
    pytest.importorskip("keras")
    import keras

    target = tmp_path / "m.keras"
    target.write_bytes(b"old model")

    def broken_save(self, path, *a, **k):
        with open(path, "wb") as fh:
            fh.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", broken_save)
    code, _, err = cli("build", CONF / "unet_same.yaml", "input.shape=[32,32,1]", "encoder.filters=2",
                       "-o", target, "--force")
    assert code != 0
    assert target.read_bytes() == b"old model"
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]


def test_build_refuses_bad_output_before_building(cli, tmp_path):
    code, _, err = cli("build", UNET, "-o", tmp_path / "model.h5")
    assert code == 2 and "must end in .keras, .onnx or .tflite" in err
    code, _, err = cli("build", UNET, "-o", tmp_path / "nope" / "m.keras")
    assert code == 2 and "does not exist" in err


def test_non_utf8_file_with_overrides(cli, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"input: \xff\xfe\n")
    code, _, err = cli("validate", path, "encoder.depth=3")
    assert code == 2 and "is not UTF-8 text" in err


# Hydra's messages, translated: each case is the whole of stderr, as in tests/corpus/.
HYDRA_TRANSLATED = [
    (["heads.1.filters=3"],
     "error: heads.1.filters=3: heads has 1 entry (heads.0), so heads.1 does not exist; to add entries, set the "
     "whole list (heads=[...]) or add them in the config file\n"),
    (["+heads.2.filters=3"],
     "error: heads.2.filters=3: heads has 1 entry (heads.0), so heads.2 does not exist; to add entries, set the "
     "whole list (heads=[...]) or add them in the config file\n"),
    (["input.shape.5=3"],
     "error: input.shape.5=3: input.shape has 3 entries (input.shape.0 to input.shape.2), so input.shape.5 does "
     "not exist; to add entries, set the whole list (input.shape=[...]) or add them in the config file\n"),
]


@pytest.mark.parametrize("overrides, expected", HYDRA_TRANSLATED, ids=lambda v: v[0] if isinstance(v, list) else "")
@pytest.mark.parametrize("command", ["summary", "validate"])
def test_hydra_messages_are_translated(cli, command, overrides, expected):
    code, out, err = cli(command, UNET, *overrides)
    assert (code, out, err) == (2, "", expected)


SWEEP_AS_LIST = "for a list write encoder.depth=[3,4], for text with a comma quote it: encoder.depth='3,4'"


@pytest.mark.parametrize("command", ["summary", "build"])
def test_a_sweep_without_m_suggests_m_where_the_command_sweeps(cli, command, tmp_path):
    code, out, err = cli(command, UNET, "encoder.depth=3,4", *(["-o", tmp_path / "m.keras"] if command == "build"
                                                                 else []))
    assert (code, out) == (2, "")
    assert err == ("error: encoder.depth=3,4: looks like a sweep; did you mean -m? (summary -m and build -m run "
                   f"one job per value; {SWEEP_AS_LIST})\n")
    code, _, err = cli(command, UNET, "encoder.depth=range(1,3)")
    assert err == ("error: encoder.depth=range(1,3): looks like a sweep; did you mean -m? (summary -m and build -m "
                   "run one job per value)\n")
    if command == "summary":  # and -m is what it needed (build -m: tests/test_sweep.py)
        code, _, err = cli(command, UNET, "-m", "-q", "encoder.depth=3,4", f"hydra.sweep.dir={tmp_path / 's'}",
                           "input.shape=[16,16,1]", "padding=same")
        assert code == 0, err


@pytest.mark.parametrize("command", ["validate", "diagram"])
def test_a_sweep_given_to_a_command_that_cannot_sweep_says_so(cli, command):
    code, _, err = cli(command, UNET, "encoder.depth=3,4")
    assert code == 2 and "-m?" not in err
    assert err == (f"error: encoder.depth=3,4: looks like a sweep, but archgen {command} takes one value per key "
                   f"and cannot sweep ({SWEEP_AS_LIST}; summary -m and build -m run one job per value)\n")
    code, _, err = cli(command, UNET, "encoder.depth=range(1,3)")
    assert err == (f"error: encoder.depth=range(1,3): looks like a sweep, but archgen {command} takes one value "
                   "per key and cannot sweep (summary -m and build -m run one job per value)\n")
    code, _, err = cli(command, UNET, "-m", "encoder.depth=3,4")
    assert code == 2 and "unrecognized arguments: -m" in err  # the hint is right: it has no -m


def test_a_sweep_in_the_python_api_says_a_config_takes_one_value():
    import archgen

    with pytest.raises(archgen.ArchgenError, match=r"^encoder.depth=3,4: looks like a sweep, but a single config "
                                                   r"takes one value per key and cannot sweep \(for a list write"):
        archgen.load(UNET, ["encoder.depth=3,4"])


@pytest.mark.parametrize("argv, expected", [
    (["summary", UNET, "--fit", "24"], "error: --fit=24: needs a unit, e.g. 24GiB, 24GB or 24MiB (24B for bytes)\n"),
    (["summary", UNET, "--fit", "1.5"], "error: --fit=1.5: needs a unit, e.g. 1.5GiB, 1.5GB or 1.5MiB\n"),
    (["summary", UNET, "--fit", ""], "error: --fit='': expected a memory size such as 24GiB, 16GB or 512MiB\n"),
    (["build", UNET, "--max-memory", "300"],
     "error: --max-memory=300: needs a unit, e.g. 300GiB, 300GB or 300MiB (300B for bytes)\n"),
])
def test_a_byte_budget_needs_a_unit(cli, argv, expected):
    code, out, err = cli(*argv)
    assert (code, out, err) == (2, "", expected)


def test_a_byte_budget_in_bytes_is_allowed(cli):
    code, out, err = cli("summary", UNET, "--fit", "24B", "--json")
    assert code == 0, err
    assert json.loads(out)["fit"]["budget_bytes"] == 24


def test_sizes_answer_when_the_files_own_size_is_illegal(cli):
    code, out, err = cli("summary", UNET, "input.shape=[570,570,1]", "--sizes", "3", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["rule"] == "n = 16k + 60, k >= 8"
    assert [row["input"] for row in data["sizes"]] == SEED_SIZES[:3]
    code, _, err = cli("summary", UNET, "input.shape=[570,570,1]")
    assert code == 2 and "nearest" in err  # without --sizes the size is still refused


@pytest.mark.parametrize("name", ["unet.yaml", "attention_unet.yaml", "peers/monai_dynunet_3d_anisotropic.yaml",
                                  "peers/monai_unet_2d.yaml", "peers/monai_attention_unet_2d.yaml"])
def test_resolved_prints_a_config_that_builds_the_same_model(cli, tmp_path, name):
    from archgen.planner import make_plan
    from archgen.report.data import plan_to_dict
    from archgen.config import load_spec

    code, out, err = cli("summary", CONF / name, "--resolved")
    assert code == 0, err
    assert "stages:" in out
    path = tmp_path / "resolved.yaml"
    path.write_text(out)
    assert plan_to_dict(make_plan(load_spec(path))) == plan_to_dict(make_plan(load_spec(CONF / name)))


def test_a_forgotten_channel_axis_is_refused_with_the_fix(cli):
    code, _, err = cli("summary", UNET, "input.shape=[572,572]")
    assert code == 2
    assert "input.shape=[572, 572]" in err and "1D with 572 channels" in err and "[572, 572, 1]" in err
    code, _, err = cli("validate", UNET, "input.shape=[256,256,3]")  # three channels: as meant
    assert "channel count" not in err


def test_options_that_do_nothing_are_reported(cli):
    code, out, err = cli("validate", UNET, "encoder.block.groups=4", "encoder.block.norm_affine=false")
    assert code == 0
    assert "warning: encoder.block.groups=4: does nothing here; groups apply to norm: group only" in err
    assert "warning: encoder.block.norm_affine=false: does nothing here; there is no norm" in err
    code, _, err = cli("validate", UNET, "encoder.block.norm=group", "encoder.block.groups=4")
    assert "warning" not in err
    code, _, err = cli("validate", CONF / "unet_bn_residual.yaml")
    assert "warning" not in err  # defaults are never reported


def test_python_dash_m_archgen_is_the_same_command_line():
    import subprocess
    import sys

    ok = subprocess.run([sys.executable, "-m", "archgen", "validate", str(CONF / "unet.yaml")],
                        capture_output=True, text=True, timeout=120)
    bad = subprocess.run([sys.executable, "-m", "archgen", "validate", str(CONF / "unet.yaml"), "encoder.depth=x"],
                         capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and bad.returncode == 2
    assert bad.stderr.startswith("error: encoder.depth=x") and "Traceback" not in bad.stderr


def test_the_decoder_up_samples_by_the_encoders_factor_unless_told(cli, tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text("input: {shape: [64, 64, 1]}\npadding: same\nencoder: {depth: 2, filters: 8}\n"
                      "heads: [{name: out, filters: 2}]\n")
    code, out, err = cli("summary", config, "encoder.downsample.factor=4")
    assert code == 0, err
    ups = [line.split() for line in out.splitlines() if line.split()[:1] in (["dec1_up"], ["dec2_up"])]
    assert len(ups) == 2 and all("k4x4" in line for line in ups)
    assert [line for line in out.splitlines() if "dec1_up" in line][0].split()[2].startswith("64x64")
