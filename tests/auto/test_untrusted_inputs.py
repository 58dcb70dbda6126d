"""archgen auto reads files from strangers: the fingerprint and dataset.json get a config file's
limits, every figure is bounded and named by its key or option, the written YAML cannot be broken
by what it quotes, and nothing is left half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from archgen.auto.config import COMMENT_WIDTH, escape, network_data, network_yaml
from archgen.auto.inputs import MAX_JSON_BYTES
from archgen.auto.nnunet import FAMILIES
from archgen.errors import format_value
from archgen.config.read import read_config_file
from tests.auto.fingerprints import dataset_json, fingerprint
from tests.auto.test_auto import plans, run
from tests.conftest import ROOT

NETWORK_KEYS = ["name", "input", "padding", "encoder", "decoder", "heads"]
KEYS = [*NETWORK_KEYS, "train"]  # the written file: the network, then the batch it was sized for


def _write(path: Path, content) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def _fp(spacings=None, shapes=None, n=4) -> dict:
    return fingerprint(spacings or [[1.0, 1.0, 1.0]] * n, shapes or [[64, 64, 64]] * n)


def _refused(*argv) -> str:
    code, out, err = run(*argv)
    assert code == 2 and out == "", err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err[len("error: "):].rstrip("\n")


def _auto_subprocess(*argv, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m archgen.auto.cli``: a hang or a memory blow-up stays in the child."""
    return subprocess.run([sys.executable, "-m", "archgen.auto.cli", *map(str, argv)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


# --- 1. the files: regular, bounded, UTF-8, strict JSON ---------------------------------------------

@pytest.mark.parametrize("option", ["--fingerprint", "--dataset"])
@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "folder"])
def test_a_fifo_device_or_folder_is_refused_at_once(tmp_path, option, special):
    target = {"fifo": tmp_path / "x.json", "/dev/zero": Path("/dev/zero"), "folder": tmp_path}[special]
    if special == "fifo":
        os.mkfifo(target)
    good = _write(tmp_path / "fp.json", _fp())
    argv = ["--fingerprint", target, "--classes", "2"] if option == "--fingerprint" else \
        ["--fingerprint", good, "--dataset", target]
    start = time.monotonic()
    proc = _auto_subprocess(*argv)
    assert time.monotonic() - start < 30
    assert proc.returncode == 2 and proc.stdout == ""
    why = "is a directory" if special == "folder" else "is not a regular file"
    assert proc.stderr == f"error: {option}={format_value(str(target))}: {why}; expected a .json file\n"


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "fp.json"
    with open(big, "wb") as fh:
        fh.truncate(MAX_JSON_BYTES + 1)  # sparse: nothing is written
    assert _refused("--fingerprint", big, "--classes", "2") == (
        f"--fingerprint={format_value(str(big))}: is 8,388,609 bytes; an nnU-Net JSON file may be at most "
        "8,388,608 bytes (8 MiB)")


def test_the_cap_holds_the_fingerprint_nnunet_writes_for_a_large_dataset(tmp_path):
    """nnU-Net writes with indent 4 (batchgenerators' save_json): 12,000 cases, more than the largest
    public nnU-Net dataset, take ~2.2 MB, a quarter of the cap."""
    n = 12_000
    fp = fingerprint([[2.5, 0.78125, 0.78125]] * n, [[120, 512, 512]] * n)
    path = tmp_path / "dataset_fingerprint.json"
    path.write_text(json.dumps(fp, indent=4, sort_keys=True))
    assert path.stat().st_size < MAX_JSON_BYTES / 3
    conf = plans("--fingerprint", path, "--classes", "2", "--memory", "nnunet")["3d_fullres"]
    assert conf["spacing"] == [2.5, 0.78125, 0.78125]


def test_a_dense_file_at_the_cap_is_planned_within_seconds(tmp_path):
    m = (MAX_JSON_BYTES - 100) // 20
    path = _write(tmp_path / "fp.json", json.dumps(
        {"spacings": [[1, 1, 1]] * m, "shapes_after_crop": [[64, 64, 64]] * m}, separators=(",", ":")))
    assert MAX_JSON_BYTES / 2 < path.stat().st_size <= MAX_JSON_BYTES
    start = time.monotonic()
    assert plans("--fingerprint", path, "--classes", "2", "--memory", "nnunet")["3d_fullres"]
    bad = _write(tmp_path / "bad.json", path.read_text().replace("[64,64,64]]}", "[64,64,NaN]]}"))
    assert _refused("--fingerprint", bad, "--classes", "2").startswith(
        f"fingerprint.shapes_after_crop[{m - 1}][2]=NaN: ")
    assert time.monotonic() - start < 60


BAD_JSON = [
    # (file content, the error after "error: ", with {path} for the file's path)
    (b'{"spacings": [[1, 1, 1]], \xff}', "fingerprint={path}: is not UTF-8 text (byte 0xff at offset 26)"),
    ('{"spacings": [[1, 1, 1]],\n "shapes_after_crop": [[64, 64, 64]],}',
     "fingerprint={path}: is not JSON: Expecting property name enclosed in double quotes at line 2 column 38"),
    ("", "fingerprint={path}: is not JSON: Expecting value at line 1 column 1"),
    ("[" * 100_000, "fingerprint={path}: nests deeper than 32 levels (line 1 column 33)"),
    ('{"a": "[[[[", "b":\n' + "[" * 33 + "]" * 33 + "}",
     "fingerprint={path}: nests deeper than 32 levels (line 2 column 32)"),
    ('{"spacings": [[1, 1, 1]], "spacings": [[2, 2, 2]], "shapes_after_crop": [[64, 64, 64]]}',
     "fingerprint.spacings: is given twice in one object: a JSON object's keys must be unique"),
    ('{"spacings": [[1, 1, NaN]], "shapes_after_crop": [[64, 64, 64]]}',
     "fingerprint.spacings[0][2]=NaN: is not a JSON number (NaN and Infinity are not JSON): expected a finite number"),
    ('{"spacings": [[1, 1, 1]], "shapes_after_crop": [[64, 64, 64]], "x": {"y": [-Infinity]}}',
     "fingerprint.x.y[0]=-Infinity: is not a JSON number (NaN and Infinity are not JSON): expected a finite number"),
    ('{"spacings": [[1, 1, 1]], "shapes_after_crop": [[64, Infinity, 64]]}',
     "fingerprint.shapes_after_crop[0][1]=Infinity: is not a JSON number (NaN and Infinity are not JSON): expected a "
     "finite number"),
]


@pytest.mark.parametrize("content,message", BAD_JSON, ids=[m.split(":")[1].split("(")[0].strip()[:30] + str(i)
                                                           for i, (_, m) in enumerate(BAD_JSON)])
def test_a_file_that_is_not_strict_json_is_named_with_its_place(tmp_path, content, message):
    path = _write(tmp_path / "fp.json", content)
    assert _refused("--fingerprint", path, "--classes", "2") == message.format(path=format_value(str(path)))


def test_dataset_json_is_read_the_same_way(tmp_path):
    fp = _write(tmp_path / "fp.json", _fp())
    ds = _write(tmp_path / "dataset.json", '{"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1, '
                                           '"a": 2}, "numTraining": 4}')
    assert _refused("--fingerprint", fp, "--dataset", ds) == (
        "dataset.labels.a: is given twice in one object: a JSON object's keys must be unique")
    ds.write_text('{"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1}, "numTraining": NaN}')
    assert _refused("--fingerprint", fp, "--dataset", ds).startswith("dataset.numTraining=NaN: is not a JSON number")


def test_a_byte_order_mark_is_read_past(tmp_path):
    path = _write(tmp_path / "fp.json", "\ufeff" + json.dumps(_fp()))
    assert plans("--fingerprint", path, "--classes", "2")["3d_fullres"]


# --- 2. numbers: bounded, named by their key or option, the bound in the message ---------------------

class Raw(str):
    """A number written into the JSON text as it is (json.dumps would refuse it or round it)."""


def _raw_json(doc) -> str:
    raws: list[str] = []

    def mark(node):
        if isinstance(node, Raw):
            raws.append(str(node))
            return f"__raw{len(raws) - 1}__"
        if isinstance(node, dict):
            return {k: mark(v) for k, v in node.items()}
        if isinstance(node, list):
            return [mark(v) for v in node]
        return node

    text = json.dumps(mark(doc))
    for i, raw in enumerate(raws):
        text = text.replace(f'"__raw{i}__"', raw)
    return text


BIG = "9" * 5000
BAD_NUMBERS = [
    (_fp(shapes=[[64, 64, 64]] * 3 + [[Raw(BIG), 64, 64]]),
     "fingerprint.shapes_after_crop[3][0]=an integer of 5,000 digits: is too large: an image edge is at most "
     "1,000,000 voxels"),
    (_fp(shapes=[[64, 64, 64]] * 3 + [[Raw("-" + BIG), 64, 64]]),
     "fingerprint.shapes_after_crop[3][0]=an integer of 5,000 digits: every size must be a positive whole number "
     "of voxels"),
    (_fp(shapes=[[64, 64, 64]] * 3 + [[64, 1e300, 64]]),
     "fingerprint.shapes_after_crop[3][1]=1e+300: is too large: an image edge is at most 1,000,000 voxels"),
    (_fp(shapes=[[64, 64, 64]] * 3 + [[64, Raw("1e400"), 64]]),
     "fingerprint.shapes_after_crop[3][1]=inf: is too large: an image edge is at most 1,000,000 voxels"),
    (_fp(shapes=[[64, 64, 64]] * 3 + [[64, 64, 1_000_001]]),
     "fingerprint.shapes_after_crop[3][2]=1000001: is too large: an image edge is at most 1,000,000 voxels"),
    (_fp(shapes=[[64, 64, 64]] * 3 + [[64, 64.5, 64]]),
     "fingerprint.shapes_after_crop[3][1]=64.5: every size must be a positive whole number of voxels"),
    (_fp(shapes=[[64, 64, 64]] * 3 + [[64, True, 64]]),
     "fingerprint.shapes_after_crop[3][1]=true: every size must be a positive whole number of voxels"),
    (_fp(spacings=[[1, 1, 1]] * 3 + [[1, 1e-300, 1]]),
     "fingerprint.spacings[3][1]=1e-300: every spacing must be a number of mm per voxel from 1e-06 to 1e+06"),
    (_fp(spacings=[[1, 1, 1]] * 3 + [[1, Raw("1e-400"), 1]]),
     "fingerprint.spacings[3][1]=0.0: every spacing must be a number of mm per voxel from 1e-06 to 1e+06"),
    (_fp(spacings=[[1, 1, 1]] * 3 + [[1, 1, 1e7]]),
     "fingerprint.spacings[3][2]=10000000.0: every spacing must be a number of mm per voxel from 1e-06 to 1e+06"),
    (_fp(spacings=[[1, 1, 1]] * 3 + [[1, Raw(BIG), 1]]),
     "fingerprint.spacings[3][1]=an integer of 5,000 digits: every spacing must be a number of mm per voxel from "
     "1e-06 to 1e+06"),
    (_fp(spacings=[[1, 1, 1]] * 3 + [[1, "1", 1]]),
     "fingerprint.spacings[3][1]='1': every spacing must be a number of mm per voxel from 1e-06 to 1e+06"),
    (_fp(shapes=[[64, 64, 64]] * 3 + [[64, None, 64]]),
     "fingerprint.shapes_after_crop[3][1]=null: every size must be a positive whole number of voxels"),
]


@pytest.mark.parametrize("doc,message", BAD_NUMBERS, ids=[str(i) for i in range(len(BAD_NUMBERS))])
def test_a_number_out_of_range_is_named_by_its_key_with_the_bound(tmp_path, doc, message):
    path = _write(tmp_path / "fp.json", _raw_json(doc))
    start = time.monotonic()
    assert _refused("--fingerprint", path, "--classes", "2") == message
    assert time.monotonic() - start < 10


def test_the_range_ends_are_accepted(tmp_path):
    path = _write(tmp_path / "fp.json", _fp(spacings=[[1e-6, 1e-6, 1e-6]], shapes=[[4, 4, 1_000_000]], n=1))
    assert plans("--fingerprint", path, "--classes", "2", "--memory", "nnunet")


BAD_DATASET = [
    ({"numTraining": int(BIG[:20])}, "dataset.numTraining=99999999999999999999: must be a whole number from 1 to "
                                     "10,000,000"),
    ({"numTraining": int(BIG[:21])}, "dataset.numTraining=an integer of 21 digits: must be a whole number from 1 to "
                                     "10,000,000"),
    ({"numTraining": Raw(BIG)}, "dataset.numTraining=an integer of 5,000 digits: must be a whole number from 1 to "
                                 "10,000,000"),
    ({"numTraining": 0}, "dataset.numTraining=0: must be a whole number from 1 to 10,000,000"),
    ({"numTraining": "4"}, "dataset.numTraining='4': must be a whole number from 1 to 10,000,000"),
    ({"labels": {f"l{i}": i for i in range(70_000)}},
     "dataset.labels: has 70,000 labels; at most 65,536 (heads[].filters allows 1 to 65,536)"),
    ({"channel_names": {str(i): "CT" for i in range(70_000)}},
     "dataset.channel_names: has 70,000 channels; at most 65,536 (archgen's limit for channels)"),
]


@pytest.mark.parametrize("change,message", BAD_DATASET, ids=[str(i) for i in range(len(BAD_DATASET))])
def test_dataset_json_figures_are_bounded(tmp_path, change, message):
    fp = _write(tmp_path / "fp.json", _fp())
    ds = _write(tmp_path / "dataset.json", _raw_json({**dataset_json(1, 3, 4), **change}))
    assert _refused("--fingerprint", fp, "--dataset", ds) == message


FIGURES = ["--shape", "64,64,64", "--spacing", "1,1,1"]
BAD_OPTIONS = [
    (["--fit", "1e400GB"], "--fit=1e400GB: must be between 1 byte and 1,000,000,000,000 bytes (1 TB)"),
    (["--fit", "99999999999999999999GB"],
     "--fit=99999999999999999999GB: must be between 1 byte and 1,000,000,000,000 bytes (1 TB)"),
    (["--fit", "1" + "0" * 400 + "B"], f"--fit={format_value('1' + '0' * 400 + 'B')}: must be between 1 byte and "
                                       "1,000,000,000,000 bytes (1 TB)"),
    (["--fit", "2TB"], "--fit=2TB: must be between 1 byte and 1,000,000,000,000 bytes (1 TB)"),
    (["--fit", "0.5B"], "--fit=0.5B: must be between 1 byte and 1,000,000,000,000 bytes (1 TB)"),
    (["--classes", "1000000"], "--classes=1000000: counts the labels with the background (nnU-Net's len(labels)): "
                               "from 2 to 65,536 (heads[].filters allows 1 to 65,536)"),
    (["--classes", "65537"], "--classes=65537: counts the labels with the background (nnU-Net's len(labels)): "
                             "from 2 to 65,536 (heads[].filters allows 1 to 65,536)"),
    (["--channels", "65537"], "--channels=65537: must be from 1 to 65,536 (archgen's limit for channels)"),
    (["--cases", "1" + "0" * 22], "--cases=10000000000000000000000: must be from 1 to 10,000,000"),
]


@pytest.mark.parametrize("extra,message", BAD_OPTIONS, ids=[m.split("=")[0] + str(i) for i, (_, m) in
                                                            enumerate(BAD_OPTIONS)])
def test_an_option_out_of_range_is_named_with_the_range(extra, message):
    argv = FIGURES + ["--classes", "2"] + extra
    assert _refused(*argv) == message


@pytest.mark.parametrize("option", ["--classes", "--channels", "--cases"])
def test_counts_are_checked_at_the_option_with_a_fingerprint_too(tmp_path, option):
    path = _write(tmp_path / "fp.json", _fp())
    assert _refused("--fingerprint", path, "--classes", "2", option, "100000000").startswith(f"{option}=100000000: ")


BAD_FIGURES = [
    (["--shape", "64,64," + BIG, "--spacing", "1,1,1"],
     f"--shape={format_value('64,64,' + BIG)}: axis 2 has 5,000 digits: an image edge is at most 1,000,000 voxels"),
    (["--shape", "64,64,1000001", "--spacing", "1,1,1"],
     "--shape=64,64,1000001: axis 2 is 1,000,001: an image edge is at most 1,000,000 voxels"),
    (["--shape", "64,64,64", "--spacing", "1,1e-300,1"],
     "--spacing=1,1e-300,1: axis 1 is 1e-300: every spacing must be a number of mm per voxel from 1e-06 to 1e+06"),
    (["--shape", "64,64,64", "--spacing", "1,1,1e400"],
     "--spacing=1,1,1e400: axis 2 is inf: every spacing must be a number of mm per voxel from 1e-06 to 1e+06"),
    (["--shape", "64,64,64", "--spacing", "1,nan,1"],
     "--spacing=1,nan,1: axis 1 is nan: every spacing must be a number of mm per voxel from 1e-06 to 1e+06"),
]


@pytest.mark.parametrize("argv,message", BAD_FIGURES, ids=[str(i) for i in range(len(BAD_FIGURES))])
def test_figures_on_the_command_line_are_bounded(argv, message):
    assert _refused(*argv, "--classes", "2") == message


def test_a_spacing_too_anisotropic_to_plan_is_named(tmp_path):
    err = _refused("--shape", "64,64,64", "--spacing", "1,1,20000", "--classes", "2")
    assert err == ("--spacing: is too anisotropic to plan: at the target spacing [20000.0, 1.0, 1.0] the 3D initial "
                   "patch (1/spacing aspect) would have 0 voxels on axis 0; nnU-Net's rules need the axes' spacings "
                   "within a factor of ~10,000")
    path = _write(tmp_path / "fp.json", _fp(spacings=[[1, 1, 20000]] * 4))
    code, _, err = run("--fingerprint", path, "--classes", "2")
    assert code == 2 and err.startswith("error: fingerprint.spacings: is too anisotropic to plan")


def test_a_thin_slab_gets_no_3d_lowres_instead_of_an_empty_patch():
    """Its lowres median image would lose its thin axis: nnU-Net itself would divide by zero."""
    for memory in ("nnunet", "archgen"):
        confs = plans("--shape", "8,20000,20000", "--spacing", "1,1,1", "--classes", "2", "--memory", memory)
        assert set(confs) == {"2d", "3d_fullres"}
    err = _refused("--shape", "8,20000,20000", "--spacing", "1,1,1", "--classes", "2", "--configuration",
                   "3d_lowres", "--memory", "nnunet")
    assert err.startswith("--configuration=3d_lowres: was not made: at the spacing [")
    assert "the median image would be [0, " in err


def test_the_name_must_be_a_config_name(tmp_path):
    out = tmp_path / "plan.yaml"
    for name in ("a\nb: 1", "1abc", "a" * 65, "a-b", ""):
        assert _refused(*FIGURES, "--classes", "2", "--name", name, "-o", out).startswith("--name=")
        assert not out.exists()
    assert run(*FIGURES, "--classes", "2", "--name", "a" * 64, "-o", out)[0] == 0
    assert read_config_file(out)["name"] == "a" * 64


# --- 4. the YAML written: emitted, its comments one line each -----------------------------------

BREAKS = ["\n", "\r", "\r\n", "\x85", "\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1b[31m",
          "\x7f", "\t", "\ufeff", "\u200e", "\ud800"]


def _config_part(text: str) -> tuple[list[str], str]:
    """(the comment lines before ``name:``, the rest)."""
    lines = text.split("\n")
    first = next(i for i, line in enumerate(lines) if line.startswith("name:"))
    return lines[:first], "\n".join(lines[first:])


def _check_written(out: Path, clean: Path, cli) -> None:
    """``out`` holds exactly the data ``clean`` holds, below comment lines that each start with '#'."""
    text = out.read_text(encoding="utf-8")
    assert text.splitlines() == text.split("\n")[:-1]  # no line break but "\n", in Python's sense or YAML's
    comments, config = _config_part(text)
    assert comments and all(line.startswith("#") and line.isprintable() for line in comments)
    assert config == _config_part(clean.read_text(encoding="utf-8"))[1]
    assert "pwned" not in config and "evil" not in config
    data = read_config_file(out)
    assert list(data) == KEYS and data == read_config_file(clean) and data == yaml.safe_load(text)
    code, summary, err = cli("summary", out)
    assert code == 0, err
    assert "auto_3d_fullres" in summary


@pytest.mark.parametrize("char", BREAKS, ids=[repr(c) for c in BREAKS])
def test_a_line_break_or_control_in_a_path_stays_inside_its_comment(tmp_path, cli, char):
    evil = f"fp{char}evil: 1{char}name: pwned{char}- x{char}.json"
    fp = tmp_path / "d" / evil
    fp.parent.mkdir()
    with open(os.fsencode(str(fp)) if char != "\ud800" else os.fsencode(str(fp.parent)) + b"/fp\xed\xa0\x80"
              b"\nevil: 1\nname: pwned.json", "w") as fh:
        fh.write(json.dumps(_fp()))
    if char == "\ud800":  # a name that is not UTF-8 (here, an encoded surrogate) reaches Python as surrogates
        fp = Path(os.fsdecode(os.fsencode(str(fp.parent)) + b"/fp\xed\xa0\x80\nevil: 1\nname: pwned.json"))
    out, clean = tmp_path / "plan.yaml", tmp_path / "clean.yaml"
    code, _, err = cli("auto", "--fingerprint", fp, "--classes", "2", "-o", out)
    assert code == 0, err
    assert cli("auto", "--fingerprint", _write(tmp_path / "fp.json", _fp()), "--classes", "2", "-o", clean)[0] == 0
    _check_written(out, clean, cli)


@pytest.mark.parametrize("char", ["\n", "\r", "\x85", "\u2028", "\u2029", "\x1c", "\x0b"])
def test_a_line_break_in_the_figures_stays_inside_its_comment(tmp_path, cli, char):
    """int() and float() read past surrounding white space, line breaks included: the figures as
    given go into the comments."""
    out, clean = tmp_path / "plan.yaml", tmp_path / "clean.yaml"
    code, _, err = cli("auto", "--shape", f"64,64,64{char}name: pwned", "--spacing", "1,1,1", "--classes", "2",
                       "-o", out)
    assert code == 2 and "expected integers" in err  # words after the break are no number
    code, _, err = cli("auto", "--shape", f"64,64,{char}64", "--spacing", f"1,1,1{char}", "--classes", "2",
                       "--cases", "100", "-o", out)
    assert code == 0, err
    assert cli("auto", *FIGURES, "--classes", "2", "--cases", "100", "-o", clean)[0] == 0
    _check_written(out, clean, cli)


def test_the_printed_result_line_escapes_the_output_path(tmp_path):
    out = tmp_path / "pl\u2028an\x1b[2J.yaml"
    code, stdout, err = run(*FIGURES, "--classes", "2", "-o", out)
    assert code == 0, err
    assert stdout.count("\n") == 1 and stdout[:-1].isprintable() and "\\u2028an\\x1b[2J.yaml: 3d_fullres" in stdout


def test_a_path_that_is_not_utf8_is_written_escaped(tmp_path):
    raw = os.fsencode(tmp_path) + b"/fp\xff\xfe\n.json"
    with open(raw, "w") as fh:
        fh.write(json.dumps(_fp()))
    out = tmp_path / "plan.yaml"
    code, _, err = run("--fingerprint", os.fsdecode(raw), "--classes", "2", "-o", out)
    assert code == 0, err
    text = out.read_text(encoding="utf-8")
    assert "fp\\udcff\\udcfe\\n.json" in text
    assert list(read_config_file(out)) == KEYS


def test_escape_writes_every_unprintable_character_as_a_repr_does():
    assert escape("a\nb\u2028c\x85d\re\x00f") == "a\\nb\\u2028c\\x85d\\re\\x00f"
    assert escape("plain é ü [1, 2]") == "plain é ü [1, 2]"
    for c in map(chr, range(0x3000)):
        assert len(escape(f"x{c}y").splitlines()) == 1


@pytest.mark.parametrize("family", ["plain", "resenc_m", "resenc_xl"])
@pytest.mark.parametrize("spacing", ["1,1,1", "0.7,0.7,5.0", "0.7,3,0.7"])
def test_the_yaml_is_the_emitters_and_reads_back_as_the_data(family, spacing):
    """A stage a line, every line within COMMENT_WIDTH and no list split: the YAML reads back as
    the data it was emitted from."""
    confs = plans("--shape", "512,512,384", "--spacing", spacing, "--classes", "3", "--family", family,
                  "--memory", "nnunet")
    for conf in confs.values():
        text = network_yaml(conf, FAMILIES[family], 2, 3, "net")
        data = network_data(conf, FAMILIES[family], 2, 3, "net")
        assert yaml.safe_load(text) == data and list(data) == NETWORK_KEYS
        assert [line for line in text.splitlines() if line.startswith("    - {")] and all(
            len(line) <= COMMENT_WIDTH and line.count("[") == line.count("]") for line in text.splitlines())


def test_a_compact_stage_line_appears_only_where_a_spaced_one_would_be_too_long():
    confs = plans("--shape", "512,512,384", "--spacing", "0.7,0.7,5.0", "--classes", "3", "--family", "resenc_xl",
                  "--memory", "nnunet")
    text = network_yaml(confs["3d_fullres"], FAMILIES["resenc_xl"], 1, 3, "net")
    stages = [line for line in text.splitlines() if line.startswith("    - {")]
    compact = [line for line in stages if "[1,3,3]" in line or "[1,2,2]" in line]
    assert compact
    for line in stages:
        spaced = line.replace("[1,3,3]", "[1, 3, 3]").replace("[1,2,2]", "[1, 2, 2]")
        assert len(line) <= COMMENT_WIDTH and (line in compact) == (len(spaced) > COMMENT_WIDTH), line


# --- 5. nothing half-written -------------------------------------------------------------------

def test_a_failure_leaves_no_file_and_an_old_file_untouched(tmp_path):
    out = tmp_path / "plan.yaml"
    bad = _write(tmp_path / "fp.json", '{"spacings": [[1, 1, NaN]], "shapes_after_crop": [[64, 64, 64]]}')
    assert run("--fingerprint", bad, "--classes", "2", "-o", out)[0] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fp.json"]
    out.write_text("keep")
    assert run("--fingerprint", bad, "--classes", "2", "-o", out, "--force")[0] == 2
    assert out.read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == ["fp.json", "plan.yaml"]


def test_a_write_that_fails_midway_leaves_nothing(tmp_path, monkeypatch):
    out = tmp_path / "plan.yaml"
    out.write_text("keep")
    real = Path.write_text

    def half(self, text, *args, **kwargs):
        real(self, text[:100], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half)
    code, _, err = run(*FIGURES, "--classes", "2", "-o", out, "--force")
    monkeypatch.undo()
    assert code == 2 and err.startswith("error: --output") and "cannot be written: No space left on device" in err
    assert out.read_text() == "keep" and [p.name for p in tmp_path.iterdir()] == ["plan.yaml"]


def test_the_output_goes_through_the_atomic_writer(tmp_path, monkeypatch):
    import archgen.output

    calls = []
    real = archgen.output.write_atomic

    def spy(path, write, **kwargs):
        calls.append((path, kwargs))
        return real(path, write, **kwargs)

    monkeypatch.setattr(archgen.output, "write_atomic", spy)
    out = tmp_path / "plan.yaml"
    assert run(*FIGURES, "--classes", "2", "-o", out)[0] == 0
    assert calls == [(out, {"suffix": ".yaml", "force": False})]
