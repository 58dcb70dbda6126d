"""--json: one JSON object per command, the same key meaning the same thing everywhere (README, "JSON output")."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import CONF, ROOT
from tests.reference.seed_unet_counts import seed_unet_output, seed_unet_params

UNET = CONF / "unet.yaml"
SAME = CONF / "unet_same.yaml"
TINY = ["input.shape=[32,32,1]", "encoder.filters=2", "encoder.depth=2"]
VARIANTS = ["input.shape=[32,32,1],[30,30,1]", "encoder.filters=2,4", "encoder.depth=2"]

SHAPE = list  # of int (or None for a size left open)
PLAN_KEYS = {"name": str, "input_shape": list, "outputs": dict, "total_params": int, "total_flops": int,
             "flops_convention": str, "legal_sizes": (dict, type(None)), "layers": list}
LAYER_KEYS = {"name": str, "kind": str, "group": str, "inputs": list, "output_shape": list, "params": int,
              "flops": (int, type(None))}
ROW_KEYS = {"job": int, "overrides": str, "swept": dict, "status": str, "seconds": float}
OK_ROW_KEYS = {"total_params": int, "outputs": dict, "total_flops": int, "activation_bytes": int}
SWEEP_KEYS = {"command": str, "sweep_dir": str, "swept": list, "fixed": list, "variants": int, "failed": int,
              "results": dict, "rows": list}


def has(data: dict, keys: dict) -> None:
    for key, kind in keys.items():
        assert key in data, key
        assert isinstance(data[key], kind), (key, data[key])


def check_outputs(outputs: dict) -> None:
    """``outputs`` is always {head name: shape}, never files."""
    assert outputs and all(isinstance(k, str) and isinstance(v, list) and all(isinstance(n, int) for n in v)
                           for k, v in outputs.items())


def run_json(cli, *argv) -> tuple[int, dict]:
    code, out, err = cli(*argv, "--json")
    return code, json.loads(out)


def test_summary_json_schema(cli):
    code, data = run_json(cli, "summary", UNET)
    assert code == 0 and data["command"] == "summary"
    has(data, PLAN_KEYS)
    check_outputs(data["outputs"])
    has(data["layers"][1], LAYER_KEYS)
    has(data["cost"], {"batch": int, "dtype": str, "optimizer": str, "params": int, "flops": int,
                       "weight_bytes": int, "activation_bytes": int, "training_bytes": int, "receptive_field": int,
                       "receptive_fields": list})


def test_summary_fit_and_sizes_json_schema(cli):
    code, data = run_json(cli, "summary", UNET, "--fit", "24GiB")
    assert code == 0
    has(data["fit"], {"budget_bytes": int, "dtype": str, "optimizer": str, "max_batch": int, "at_input_shape": list,
                      "batch": int, "max_input_shape": list, "max_input_training_bytes": int})
    code, data = run_json(cli, "summary", UNET, "--sizes", "3")
    assert code == 0 and data["command"] == "summary"
    has(data, {"rule": str, "sizes": list})
    first = next(n for n in range(1, 300) if seed_unet_output(n))  # the paper's network, walked by hand
    assert data["sizes"][0] == {"input": first, "outputs": {"logits": seed_unet_output(first)}}


def test_validate_json_schema(cli):
    code, data = run_json(cli, "validate", UNET)
    assert code == 0
    assert data == {"command": "validate", "config": str(UNET), "valid": True, "name": "unet",
                    "total_params": seed_unet_params(), "outputs": {"logits": [388, 388, 2]}}


def test_diagram_json_names_the_file_it_wrote(cli, tmp_path):
    code, data = run_json(cli, "diagram", UNET, "-o", tmp_path / "u.svg")
    assert code == 0 and data == {"command": "diagram", "name": "unet", "files": {"svg": str(tmp_path / "u.svg")}}
    code, _, err = cli("diagram", UNET, "-o", "-", "--json")
    assert code == 2 and "--output=-" in err


def test_schema_accepts_json(cli):
    code, out, _ = cli("schema", "--json")
    assert code == 0 and "properties" in json.loads(out)


def test_build_json_files_are_files_and_outputs_are_shapes(cli, tmp_path):
    pytest.importorskip("keras")
    code, data = run_json(cli, "build", SAME, *TINY, "-o", tmp_path / "m.keras")
    assert code == 0 and data["command"] == "build"
    has(data, {**PLAN_KEYS, "files": dict, "build_seconds": float, "keras_params": int, "backend": str})
    check_outputs(data["outputs"])
    assert data["files"] == {"keras": str(tmp_path / "m.keras")}
    assert data["keras_params"] == data["total_params"] == seed_unet_params(depth=2, filters=2)


def check_sweep(data: dict, command: str) -> None:
    has(data, SWEEP_KEYS)
    assert data["command"] == command and data["variants"] == 4 and data["failed"] == 2
    assert data["swept"] == ["input.shape", "encoder.filters"] and data["fixed"] == ["encoder.depth=2"]
    assert set(data["results"]) == {"json", "csv"}
    for row in data["rows"]:
        has(row, ROW_KEYS)
        assert row["swept"] == {"input.shape": row["swept"]["input.shape"],
                                "encoder.filters": row["swept"]["encoder.filters"]}
        if row["status"] == "ok":
            has(row, OK_ROW_KEYS)
            check_outputs(row["outputs"])
        else:
            assert isinstance(row["error"], str) and "nearest: 28 (output 28), 32 (output 32)" in row["error"]
    assert [r["swept"] for r in data["rows"]] == [
        {"input.shape": [32, 32, 1], "encoder.filters": 2}, {"input.shape": [32, 32, 1], "encoder.filters": 4},
        {"input.shape": [30, 30, 1], "encoder.filters": 2}, {"input.shape": [30, 30, 1], "encoder.filters": 4}]
    assert json.loads(open(data["results"]["json"]).read()) == data["rows"]


def test_summary_sweep_json_is_one_object(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("summary", SAME, "-m", "-q", "--json", *VARIANTS, "hydra.sweep.dir=s")
    assert code == 1 and "2 of 4 variants failed" in err
    data = json.loads(out)  # nothing but the object on stdout
    check_sweep(data, "summary")
    assert data["sweep_dir"] == "s"


def test_build_sweep_json_rows_name_their_files(cli, tmp_path, monkeypatch):
    pytest.importorskip("keras")
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("build", SAME, "-m", "-q", "--json", *VARIANTS, "hydra.sweep.dir=s")
    assert code == 1
    data = json.loads(out)
    check_sweep(data, "build")
    for row in data["rows"][:2]:
        has(row, {"files": dict, "keras_params": int, "model": str})
        assert set(row["files"]) == {"keras"}


def test_a_closed_pipe_ends_quietly(tmp_path):
    """``archgen ... --json | head -1``: the reader goes away early; exit 0, nothing on stderr."""
    script = (f"{sys.executable} -m archgen.cli summary {UNET} --sizes 10000 --json | head -1; "
              "exit ${PIPESTATUS[0]}")
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout == "{\n"
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


PREDICT_KEYS = {"model": str, "image": str, "config": (str, type(None)), "image_shape": list, "outputs": dict,
                "arrays": dict, "files": dict, "predict_seconds": float}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """unet_same.yaml with TINY, built (32x32x1 in, 2 channels out), and two .npy images."""
    pytest.importorskip("keras")
    import numpy as np

    from archgen.cli import main

    folder = tmp_path_factory.mktemp("predict")
    assert main(["build", str(SAME), *TINY, "-o", str(folder / "m.keras"), "--json"]) == 0
    rng = np.random.default_rng(3)
    np.save(folder / "batch.npy", rng.normal(size=(2, 40, 36, 1)).astype("float32"))
    np.save(folder / "one.npy", rng.normal(size=(40, 36, 1)).astype("float32"))
    return folder


def test_predict_json_gives_shapes_per_image_and_in_the_file(cli, tiny_model, tmp_path):
    import numpy as np

    code, data = run_json(cli, "predict", tiny_model / "m.keras", tiny_model / "batch.npy", "-o", tmp_path / "p.npz")
    assert code == 0 and data["command"] == "predict"
    has(data, PREDICT_KEYS)
    check_outputs(data["outputs"])
    assert {k: v for k, v in data.items() if k != "predict_seconds"} == {
        "command": "predict", "model": str(tiny_model / "m.keras"), "image": str(tiny_model / "batch.npy"),
        "config": None, "image_shape": [2, 40, 36, 1], "outputs": {"logits": [40, 36, 2]},
        "arrays": {"logits": [2, 40, 36, 2]}, "files": {"npz": str(tmp_path / "p.npz")}}
    with np.load(tmp_path / "p.npz") as saved:  # "arrays" is what the file holds
        assert {name: list(saved[name].shape) for name in saved.files} == data["arrays"]
    code, data = run_json(cli, "predict", tiny_model / "m.keras", tiny_model / "one.npy", "-o", tmp_path / "p.npy",
                          "--config", SAME, *[a for o in TINY for a in ("--override", o)])
    assert code == 0
    assert (data["outputs"], data["arrays"], data["config"]) == ({"logits": [40, 36, 2]}, {"logits": [40, 36, 2]},
                                                                 str(SAME))
    assert data["files"] == {"npy": str(tmp_path / "p.npy")} and np.load(tmp_path / "p.npy").shape == (40, 36, 2)


def test_predict_json_errors_stay_on_stderr(cli, tiny_model, tmp_path):
    code, out, err = cli("predict", tiny_model / "m.keras", tiny_model / "one.npy", "-o", tmp_path / "p.txt", "--json")
    assert code == 2 and out == "" and err.startswith("error: --output")
    # predict cannot sweep: an override with several values is refused without suggesting -m
    code, out, err = cli("predict", tiny_model / "m.keras", tiny_model / "one.npy", "-o", tmp_path / "p.npy", "--json",
                         "--config", SAME, "--override", "encoder.filters=2,4")
    assert code == 2 and out == "" and "-m?" not in err
    assert err.startswith("error: encoder.filters=2,4: looks like a sweep, but archgen predict takes one value per "
                          "key and cannot sweep (for a list write encoder.filters=[2,4]")
    assert not (tmp_path / "p.npy").exists()


@pytest.mark.slow
def test_predict_json_to_a_closed_pipe_ends_quietly(tiny_model, tmp_path):
    """The reader is gone before predict prints (`| true`): exit 0, nothing on stderr, the file written."""
    script = (f"{sys.executable} -m archgen.cli predict {tiny_model / 'm.keras'} {tiny_model / 'one.npy'} "
              f"-o {tmp_path / 'p.npy'} --json | true; exit ${{PIPESTATUS[0]}}")
    # Buffered stdout, as a user's shell has it: the write happens at exit unless archgen flushes first.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert (tmp_path / "p.npy").exists()
