"""Memory profiles (archgen.planner.profiles): one per back end and device, each with where it was
measured; the default is TensorFlow on CPU, unchanged; a calibrated profile still fits the
measurements it was calibrated on (benchmarks/results/), recomputed here without a back end."""

from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction

import pytest

from archgen.config import load_spec
from archgen.errors import ArchgenError
from archgen.planner import make_plan
from archgen.planner.cost import (
    RUNTIME_BYTES,
    inference_peak_elements,
    layer_elements,
    plan_cost,
    train_peak_elements,
    training_bytes,
)
from archgen.planner.fit import max_batch
from archgen.planner.profiles import (
    BACKENDS,
    CALIBRATED,
    DEFAULT,
    DEVICES,
    NOT_CALIBRATED,
    PROFILES,
    PROVISIONAL,
    TENSORFLOW_CPU,
    MemoryProfile,
    memory_profile,
    profile_named,
)
from tests.conftest import CONF, ROOT
from tests.planner.test_cost import BY_HAND, _tiny_plan

RESULTS = ROOT / "benchmarks" / "results"


def test_the_default_is_tensorflow_on_cpu(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert memory_profile() is DEFAULT is TENSORFLOW_CPU and DEFAULT.key == "tensorflow/cpu"
    plan = make_plan(load_spec(CONF / "unet.yaml"))
    assert plan_cost(plan, 2) == plan_cost(plan, 2, profile=TENSORFLOW_CPU)
    assert DEFAULT.runtime_bytes == RUNTIME_BYTES


def test_the_back_end_defaults_to_keras_backend(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert memory_profile().key == "jax/cpu" and memory_profile(device="gpu").key == "jax/gpu"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("device", DEVICES)
def test_every_pair_has_a_profile_that_says_how_far_it_was_calibrated(backend, device):
    profile = memory_profile(backend, device)
    assert (profile.backend, profile.device) == (backend, device)
    assert profile.status in (CALIBRATED, PROVISIONAL, NOT_CALIBRATED) and profile.measured
    assert profile_named(profile.key) == profile
    if profile.status == NOT_CALIBRATED:  # no constants of its own: those of the profile it names, and it says so
        assert (backend, device) == ("tensorflow", "gpu") and not profile.results
        jax = PROFILES["jax", "gpu"]
        assert replace(profile, backend="jax", status=jax.status, measured=jax.measured, results=jax.results) == jax
        assert "not measured" in profile.measured and "jax/gpu" in profile.measured and "XLA" in profile.measured
    else:
        assert profile.results and all((ROOT / path).is_file() for path in profile.results)


@pytest.mark.parametrize("option, value, message", [
    ("--backend", "jaxx", "unknown back end; expected one of tensorflow, jax, torch (did you mean 'jax'?)"),
    ("--device", "gpus", "unknown device; expected one of cpu, gpu (did you mean 'gpu'?)"),
])
def test_an_unknown_back_end_or_device_names_its_option(option, value, message):
    with pytest.raises(ArchgenError) as info:
        memory_profile(value, "cpu") if option == "--backend" else memory_profile("jax", value)
    assert (info.value.path, info.value.value, info.value.message) == (option, value, message)


def test_each_constant_changes_what_it_says():
    """The tiny network of test_cost (conv+relu, max pool, conv head): its step peaks at c1's
    backward with the conv's two copies (48 of 160 elements); no copies -> 112."""
    plan, tf = _tiny_plan(), BY_HAND
    elements = layer_elements(plan)
    assert train_peak_elements(plan, elements, tf) == 160
    assert train_peak_elements(plan, elements, replace(tf, conv_copies=Fraction(0))) == 112
    assert train_peak_elements(plan, elements, replace(tf, conv_copies=Fraction(1))) == 136
    three = replace(tf, activation_scale=Fraction(3, 2), half_scale=Fraction(2), update_buffers=1,
                    runtime_bytes=0)
    cost = plan_cost(plan, 3, profile=three)
    assert cost.activation_bytes == 160 * 4 * 3 * 3 // 2 and cost.profile == "tensorflow/cpu"
    assert cost.training_bytes == 29 * 4 * 5 + cost.activation_bytes  # weights, grads, 2 moments, 1 update buffer
    assert plan_cost(plan, 3, "bfloat16", profile=three).activation_bytes == 160 * 2 * 3 * 3  # 16-bit scale 2
    # inference: the input, c1 and its copies (96) -> with every output kept: 16 + 32 + 8 + 12 = 68, no copies
    assert inference_peak_elements(plan, elements, keep_outputs=True) == 68
    eager = replace(tf, inference_input_copies=0, inference_same_output_copies=0, keeps_outputs=True,
                    inference_runtime_bytes=7)
    assert plan_cost(plan, 2, profile=eager).inference_peak_bytes == 29 * 4 + 7 + 2 * 68 * 4


def test_a_max_pools_backward_holds_an_index_tensor_per_axis():
    """XLA on CPU differentiates a max pool by a scatter with an int32 index tensor per axis of its input
    (batch, rows, columns, channels: 4 of 32 elements in the tiny network), alive together: its backward
    step (96, test_cost) grows by 128 and becomes the peak."""
    plan, tf = _tiny_plan(), BY_HAND
    elements = layer_elements(plan)
    indexed = replace(tf, max_pool_index_copies=Fraction(1))
    assert train_peak_elements(plan, elements, indexed) == 96 + 4 * 32
    assert MemoryProfile("jax", "cpu", "calibrated").max_pool_index_copies == 0  # measured on JAX's CPU only
    assert memory_profile("jax", "cpu").max_pool_index_copies == 1


def test_what_a_running_layer_holds_at_inference():
    """The tiny network: c1 (same-padded, 32 elements) runs with the input (16) alive: 48; a copy of its
    input (16) and of its output (32) -> 96; a valid-padded conv copies no output. A norm's float32
    copies count under a 16-bit policy only (two 16-bit elements each)."""
    plan, tf = _tiny_plan(), BY_HAND
    elements = layer_elements(plan)
    tf = replace(tf, inference_input_copies=0, inference_same_output_copies=0)
    copies = replace(tf, inference_input_copies=Fraction(1), inference_same_output_copies=Fraction(1))
    assert inference_peak_elements(plan, elements, profile=tf) == 48
    assert inference_peak_elements(plan, elements, profile=copies) == 96
    assert inference_peak_elements(plan, elements, profile=replace(copies, inference_same_output_copies=0)) == 64
    normed = make_plan(load_spec(CONF / "peers" / "nnunet_plain_2d.yaml", ["input.shape=[64,64,1]"]))
    elements = layer_elements(normed)
    f32 = replace(tf, inference_norm_float32=Fraction(2))
    assert inference_peak_elements(normed, elements, profile=f32) == inference_peak_elements(normed, elements, profile=tf)
    first_norm = next(layer for layer in normed.layers if layer.kind == "norm")
    assert f32.inference_extra(first_norm, elements, half=True) == 4 * elements[first_norm.name]
    assert inference_peak_elements(normed, elements, profile=f32, half=True) > inference_peak_elements(
        normed, elements, profile=tf, half=True)
    assert plan_cost(normed, 2, "bfloat16", profile=f32).inference_peak_bytes > plan_cost(
        normed, 2, "bfloat16", profile=tf).inference_peak_bytes


def test_an_eager_forward_keeps_every_output_until_it_returns():
    """The seed U-Net keeps more at its training peak when every output lives through the forward pass."""
    plan = make_plan(load_spec(CONF / "unet.yaml", ["input.shape=[188,188,1]"]))
    elements = layer_elements(plan)
    kept = replace(DEFAULT, keeps_outputs=True)
    assert train_peak_elements(plan, elements, kept) >= train_peak_elements(plan, elements, DEFAULT)
    assert inference_peak_elements(plan, elements, keep_outputs=True) == sum(elements.values())


def test_fused_activations_keep_nothing():
    plan = make_plan(load_spec(CONF / "peers" / "nnunet_plain_2d.yaml", ["input.shape=[64,64,1]"]))
    elements = layer_elements(plan)
    fused = replace(DEFAULT, fuses_activations=True)
    assert train_peak_elements(plan, elements, fused) < train_peak_elements(plan, elements, DEFAULT)


@pytest.mark.parametrize("key", ["jax/cpu", "torch/gpu", "tensorflow/gpu"])
def test_max_batch_under_a_profile_is_the_largest_that_fits(key):
    profile = profile_named(key)
    plan = make_plan(load_spec(CONF / "unet_same.yaml", ["input.shape=[256,256,1]"]))
    budget = 6 * 2**30
    n = max_batch(plan, budget, profile=profile)
    assert n >= 1 and training_bytes(plan, n, profile=profile) <= budget < training_bytes(plan, n + 1, profile=profile)


def _records():
    for profile in PROFILES.values():
        for path in profile.results:
            yield pytest.param(profile, path, id=f"{profile.key}:{path.rsplit('/', 1)[-1]}")


@pytest.mark.parametrize("profile, path", list(_records()))
def test_a_profile_still_fits_what_it_was_calibrated_on(profile, path):
    """Each measurement recorded in benchmarks/results/ against the profile's estimate, recomputed
    now: a change to the simulation, a kind's memory facts or a config of the suite that moves an
    estimate out of the recorded bound needs a new calibration (benchmarks/calibrate_memory.py)."""
    record = json.loads((ROOT / path).read_text())
    assert (record["machine"]["backend"], record["machine"]["device"]) == (profile.backend, profile.device)
    # the profile holds the constants the recorded fit found, or (a record without a fit) those it was measured with
    constants = [part for part in record["fit"].values()] if "fit" in record else [record["profile"]]
    for part in constants:
        for name, value in part.items():
            if name not in ("worst", "name", "status", "measured", "results", "backend", "device"):
                mine = getattr(profile, name)
                assert (float(mine) if isinstance(mine, Fraction) else mine) == value, (profile.key, name)
    suite = {case["name"]: case for case in record["suite"]}
    bound = record["bound"]  # the worst |estimate / measured - 1| the record accepted
    worst = 0.0
    for row in record["cases"]:
        case = suite[row["case"]]
        plan = make_plan(load_spec(CONF / f"{case['config']}.yaml", case["overrides"]))
        dtype = "bfloat16" if case["precision"] == "mixed_bfloat16" else "float32"
        cost = plan_cost(plan, row["batch"], dtype, case["optimizer"], profile)
        est = cost.training_bytes if row["mode"] == "train" else cost.inference_peak_bytes
        worst = max(worst, abs(est / row["measured"] - 1))
    assert worst <= bound + 1e-9, (profile.key, path, worst)


# --- the command line -----------------------------------------------------------------------------------

UNET = CONF / "unet.yaml"


def test_summary_names_the_profile_it_used(cli, monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    code, out, err = cli("summary", UNET, "--backend", "jax", "--fit", "8GiB", "--json")
    data = json.loads(out)
    assert code == 0 and data["cost"]["profile"] == data["fit"]["profile"] == "jax/cpu"
    assert data["memory_profile"]["status"] == CALIBRATED and data["memory_profile"]["results"]
    plan = make_plan(load_spec(UNET))
    assert data["cost"]["training_bytes"] == training_bytes(plan, profile=memory_profile("jax", "cpu"))
    assert data["fit"]["max_batch"] == max_batch(plan, 8 * 2**30, profile=memory_profile("jax", "cpu"))
    code, out, err = cli("summary", UNET, "--json")
    assert json.loads(out)["cost"]["profile"] == "tensorflow/cpu"


def test_summary_text_says_a_profile_only_when_it_is_not_the_default(cli, monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    code, out, err = cli("summary", UNET)
    assert code == 0 and "memory profile" not in out and "+ TF runtime)" in out
    code, out, err = cli("summary", UNET, "--backend", "torch", "--device", "gpu")
    text = " ".join(out.split())
    assert code == 0 and "memory profile torch/gpu: provisional" in text and "PyTorch on the GPU)" in text


@pytest.mark.parametrize("argv, line", [
    (["--device", "tpu"], "error: --device=tpu: unknown device; expected one of cpu, gpu (did you mean 'gpu'?)\n"),
    (["--backend", "pytorch"], "error: --backend=pytorch: unknown back end; expected one of tensorflow, jax, torch "
                               "(did you mean 'torch'?)\n"),
])
def test_summary_refuses_an_unknown_back_end_or_device(cli, argv, line):
    assert cli("summary", UNET, *argv)[::2] == (2, line)


AUTO = ["auto", "--shape", "96,96,96", "--spacing", "1,1,1", "--classes", "2", "--json"]


def test_auto_sizes_for_the_gpu_by_default_and_names_the_profile(cli, monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    code, out, err = cli(*AUTO)
    why = json.loads(out)["configurations"]["3d_fullres"]["archgen"]
    assert code == 0 and why["memory_profile"] == "tensorflow/gpu" and "not calibrated" in why["memory_calibration"]
    code, out, err = cli(*AUTO, "--backend", "jax", "--device", "cpu")
    why = json.loads(out)["configurations"]["3d_fullres"]["archgen"]
    assert why["memory_profile"] == "jax/cpu" and "calibrated against JAX" in why["memory_calibration"]


def test_auto_refuses_a_profile_with_nnunets_memory_model(cli):
    code, out, err = cli(*AUTO, "--memory", "nnunet", "--device", "gpu")
    assert code == 2 and err == ("error: --device=gpu: chooses the memory profile of --memory archgen; --memory "
                                 "nnunet sizes the patch by nnU-Net's reference values\n")


def test_summary_with_a_profile_imports_no_back_end():
    import subprocess
    import sys

    code = ("import sys; from archgen.cli import main; rc = main(['summary', 'conf/unet.yaml', '--backend', 'jax', "
            "'--device', 'gpu', '--fit', '8GiB']); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'jax', 'torch')]; "
            "sys.exit(rc or bool(bad))")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True).returncode == 0
