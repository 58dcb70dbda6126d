"""archgen auto --memory archgen (the default): patch and batch sized by archgen's own training estimate.

The invariant, on many fingerprints and budgets: the chosen patch and batch fit the budget by the
training estimate of the network archgen plans from them, and the next larger candidate (the patch
before the last shrink step at a batch of 2; one more sample in the batch) does not.
"""

from __future__ import annotations

import contextlib
import io
import json
from math import prod

import pytest

import archgen
from archgen.auto.cli import main
from archgen.auto.config import stage_lists
from archgen.auto.inputs import from_figures, from_files
from archgen.auto.memory import spec_of
from archgen.auto.nnunet import FAMILIES, plan_dataset
from archgen.planner.build import make_plan
from archgen.planner.cost import training_bytes
from archgen.planner.fit import max_batch
from archgen.planner.profiles import memory_profile
from tests.auto.fingerprints import named_datasets, random_datasets

GPU = memory_profile("tensorflow", "gpu")  # what auto sizes patches by where KERAS_BACKEND is unset


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def answer(*argv) -> dict:
    code, out, err = run(*argv, "--json")
    assert code == 0, err
    return json.loads(out)


def estimate(conf: dict, family: str, channels: int, classes: int, patch=None, batch: int = 2) -> int:
    """The training estimate of a freshly read and planned config (no cache, no patch swapping)."""
    conf = dict(conf, patch_size=list(patch or conf["patch_size"]))
    if patch is not None:  # the larger patch has its own topology: nnU-Net's rules give it
        from archgen.auto.memory import topology_configuration
        from archgen.auto.nnunet import pool_and_conv_props

        conf = topology_configuration(pool_and_conv_props(conf["spacing"], patch), FAMILIES[family])
    plan = make_plan(spec_of(conf, FAMILIES[family], channels, classes))
    return training_bytes(plan, batch, profile=GPU)


def check_invariant(result: dict, family: str, channels: int, classes: int, budget: int) -> list[str]:
    bad = []
    for name, conf in result["configurations"].items():
        why = conf["_why"]
        assert why["memory_model"] == "archgen" and why["memory_budget_bytes"] == budget
        got = estimate(conf, family, channels, classes, batch=conf["batch_size"])
        if got != why["memory_estimate_bytes"] or got > budget:
            bad.append(f"{name}: estimate {got:,} (reported {why['memory_estimate_bytes']:,}) vs budget {budget:,}")
        one_more = estimate(conf, family, channels, classes, batch=why["batch_size_from_memory"] + 1)
        if one_more <= budget or not 2 <= conf["batch_size"] <= why["batch_size_from_memory"]:
            bad.append(f"{name}: batch {conf['batch_size']} of {why['batch_size_from_memory']}, one more needs "
                       f"{one_more:,} <= {budget:,}")
        if why["shrink_steps"]:
            larger = why["previous_patch_size"]
            grown = [a for a, (p, q) in enumerate(zip(larger, conf["patch_size"])) if p != q]
            if len(grown) != 1 or larger[grown[0]] <= conf["patch_size"][grown[0]]:
                bad.append(f"{name}: {larger} is not one step larger than {conf['patch_size']}")
            before = estimate(conf, family, channels, classes, patch=larger)
            if before <= budget:
                bad.append(f"{name}: the larger patch {larger} fits too ({before:,} <= {budget:,})")
        else:
            assert why["previous_patch_size"] is None
    return bad


def _datasets(tmp_path, datasets):
    for ds in datasets:
        fp, dj = tmp_path / f"{ds['name']}_fp.json", tmp_path / f"{ds['name']}_ds.json"
        fp.write_text(json.dumps(ds["fingerprint"]))
        dj.write_text(json.dumps(ds["dataset_json"]))
        yield ds["name"], from_files(str(fp), str(dj), None, None, None)


BUDGETS = [(4e9, 4.0), (8e9, 8.0), (12 * 2**30, 12 * 2**30 / 1e9), (24e9, 24.0)]


@pytest.mark.parametrize("family", ["plain", "resenc_m"])
def test_choice_fits_and_the_next_larger_does_not(tmp_path, family):
    """Named fingerprints (isotropic CT, anisotropic MRI, small, large with 3d_lowres, 2D) and
    random ones, at 4 GB, 8 GB, 12 GiB and 24 GB."""
    bad, checked = [], 0
    datasets = list(_datasets(tmp_path, named_datasets() + random_datasets(11, 3)))
    for k, (name, ds) in enumerate(datasets):
        for budget, gb in (BUDGETS[k % 4], BUDGETS[(k + 2) % 4]):
            result = plan_dataset(ds, FAMILIES[family], gb, "archgen")
            bad += [f"{name} {gb:g}GB {line}" for line in
                    check_invariant(result, family, ds.channels, ds.classes, round(budget))]
            checked += len(result["configurations"])
    assert bad == [] and checked >= 30


@pytest.mark.slow
@pytest.mark.parametrize("family", ["plain", "resenc_m", "resenc_l"])
def test_choice_fits_and_the_next_larger_does_not_on_random_fingerprints(tmp_path, family):
    bad = []
    for k, (name, ds) in enumerate(_datasets(tmp_path, random_datasets(7, 6) + random_datasets(2024, 6))):
        budget, gb = BUDGETS[k % 4]
        result = plan_dataset(ds, FAMILIES[family], gb, "archgen")
        bad += [f"{name} {gb:g}GB {line}" for line in
                check_invariant(result, family, ds.channels, ds.classes, round(budget))]
    assert bad == []


def test_default_fills_the_budget_nnunets_choice_fits_and_shrinks_where_it_does_not(monkeypatch):
    """128^3 at 1 mm: at 8 GB nnU-Net's 128^3 at batch 2 fits archgen's GPU estimate, and the default
    keeps it; at 4 GB it does not, and the default shrinks the patch until a batch of 2 fits. On a
    48^3 dataset both keep the whole image, and archgen's larger batch is the dataset cap."""
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    argv = ["--shape", "128,128,128", "--spacing", "1,1,1", "--classes", "3"]
    nnunet = answer(*argv, "--fit", "8GB", "--memory", "nnunet")["configurations"]["3d_fullres"]
    mine = answer(*argv, "--fit", "8GB")["configurations"]["3d_fullres"]
    assert nnunet["patch_size"] == mine["patch_size"] == [128, 128, 128] and nnunet["batch_size"] == 2
    assert estimate(nnunet, "plain", 1, 3) <= 8e9 and mine["archgen"]["memory_profile"] == "tensorflow/gpu"
    nnunet = answer(*argv, "--fit", "4GB", "--memory", "nnunet")["configurations"]["3d_fullres"]
    mine = answer(*argv, "--fit", "4GB")["configurations"]["3d_fullres"]
    assert estimate(nnunet, "plain", 1, 3) > 4e9  # nnU-Net's choice, by archgen's estimate
    assert mine["archgen"]["memory_estimate_bytes"] <= 4e9 and prod(mine["patch_size"]) < prod(nnunet["patch_size"])
    small = ["--shape", "48,48,48", "--spacing", "1,1,1", "--classes", "2", "--cases", "50", "--fit", "24GB"]
    nnunet, mine = (answer(*small, "--memory", m)["configurations"]["3d_fullres"] for m in ("nnunet", "archgen"))
    assert mine["patch_size"] == nnunet["patch_size"] == [48, 48, 48]
    assert mine["batch_size"] == mine["archgen"]["batch_size_cap_dataset"]


@pytest.mark.parametrize("family", ["plain", "resenc_m"])
def test_default_takes_at_least_nnunets_patch_where_it_fits(tmp_path, family):
    """On every named fingerprint and budget: where nnU-Net's 3d_fullres choice fits the budget by
    archgen's estimate, the default's patch holds at least as many voxels; where it does not, fewer."""
    for name, ds in _datasets(tmp_path, named_datasets()):
        for gb in (8.0, 24.0):
            theirs = plan_dataset(ds, FAMILIES[family], gb, "nnunet")["configurations"].get("3d_fullres")
            if theirs is None:
                continue
            mine = plan_dataset(ds, FAMILIES[family], gb, "archgen")["configurations"]["3d_fullres"]
            fits = estimate(theirs, family, ds.channels, ds.classes, batch=2) <= gb * 1e9
            assert mine["_why"]["memory_estimate_bytes"] <= gb * 1e9, (name, gb)
            if fits:
                assert prod(mine["patch_size"]) >= prod(theirs["patch_size"]), (name, gb)
            else:
                assert prod(mine["patch_size"]) < prod(theirs["patch_size"]), (name, gb)


def test_json_names_the_memory_model_and_its_figures():
    argv = ["--shape", "96,96,96", "--spacing", "1,1,1", "--classes", "2", "--fit", "8GiB"]
    mine, theirs = answer(*argv), answer(*argv, "--memory", "nnunet")
    assert mine["memory_model"] == "archgen" and theirs["memory_model"] == "nnunet"
    for conf in mine["configurations"].values():
        a = conf["archgen"]
        assert a["memory_model"] == "archgen"
        assert a["memory_budget_bytes"] == 8 * 2**30  # GiB read as GiB
        assert isinstance(a["memory_estimate_bytes"], int) and a["memory_estimate_bytes"] <= 8 * 2**30
        assert a["memory_estimate_batch_2_bytes"] <= a["memory_estimate_bytes"]
        assert (a["memory_dtype"], a["memory_optimizer"]) == ("float32", "adam")
        assert a["memory_profile"] == "tensorflow/gpu" and "jax/gpu" in a["memory_calibration"]
        assert "vram_estimate" in a and "previous_patch_size" in a
    for conf in theirs["configurations"].values():
        assert conf["archgen"]["memory_model"] == "nnunet" and "memory_estimate_bytes" not in conf["archgen"]
    assert answer(*argv[:-1], "8GB")["configurations"]["3d_fullres"]["archgen"]["memory_budget_bytes"] == 8 * 10**9


@pytest.mark.parametrize("family", ["plain", "resenc_m"])
def test_written_config_plans_within_the_budget(tmp_path, family, cli):
    """The config written with the default model: archgen plans it, its training estimate at the
    written batch is the one reported and fits --fit; `summary --fit` finds the same largest batch."""
    out = tmp_path / "plan.yaml"
    argv = ["--shape", "160,160,160", "--spacing", "1,1,1", "--classes", "3", "--channels", "2", "--cases", "500",
            "--family", family, "--fit", "10GB"]
    code, stdout, err = cli("auto", *argv, "-o", out)
    assert code == 0, err
    conf = answer(*argv)["configurations"]["3d_fullres"]
    plan = archgen.plan(str(out))
    assert plan.input_shape == (*conf["patch_size"], 2)
    assert training_bytes(plan, conf["batch_size"], profile=GPU) == conf["archgen"]["memory_estimate_bytes"] <= 10**10
    assert max_batch(plan, 10**10, profile=GPU) == conf["archgen"]["batch_size_from_memory"]
    assert training_bytes(plan, conf["archgen"]["batch_size_from_memory"] + 1, profile=GPU) > 10**10
    text = out.read_text()
    assert "# Memory model: archgen (--memory archgen, the default)" in text
    assert "not measured on TensorFlow on a GPU: the constants of jax/gpu" in " ".join(text.replace("#", " ").split())
    assert f"{conf['archgen']['memory_estimate_bytes']:,} bytes" in text
    assert "memory model archgen" in stdout
    code, stdout, err = cli("summary", out, "--fit", "10GB", "--device", "gpu")
    assert code == 0 and f"training batch up to {conf['archgen']['batch_size_from_memory']} at" in stdout


def test_nnunet_config_says_its_memory_model(tmp_path):
    out = tmp_path / "plan.yaml"
    assert run("--shape", "64,64,64", "--spacing", "1,1,1", "--classes", "2", "--memory", "nnunet", "-o", out)[0] == 0
    text = out.read_text()
    assert "# Memory model: nnunet (--memory nnunet): nnU-Net's reference-VRAM heuristic" in text
    assert "archgen's training estimate" not in text


def test_the_cached_patch_swap_plans_what_a_fresh_read_plans():
    """The model reads a topology's spec once and swaps the patch: every layer equals a fresh plan's."""
    from archgen.auto.memory import ArchgenMemory, with_patch
    from archgen.auto.nnunet import pool_and_conv_props

    family = FAMILIES["resenc_m"]
    memory = ArchgenMemory(family, 2, 4, 8 * 10**9)
    conf = plan_dataset(from_figures("40,200,200", "3,0.8,0.8", 2, 4, 50), family, 8.0, "nnunet")
    conf = conf["configurations"]["3d_fullres"]
    seen = set()
    for patch in ([40, 192, 160], [32, 160, 192], [40, 96, 96], [24, 64, 64]):
        topo = pool_and_conv_props(conf["spacing"], patch)
        fresh_conf = dict(conf, patch_size=topo.patch, strides=topo.strides, kernel_sizes=topo.kernels,
                          n_stages=len(topo.strides))
        fresh_conf["features_per_stage"] = [min(320, 32 * 2 ** i) for i in range(len(topo.strides))]
        fresh_conf["n_blocks_per_stage"] = list(family.blocks_encoder[:len(topo.strides)])
        fresh_conf["n_conv_per_stage_decoder"] = list(family.blocks_decoder[:len(topo.strides) - 1])
        fresh = make_plan(spec_of(fresh_conf, family, 2, 4))
        key = (tuple(map(tuple, topo.strides)), tuple(map(tuple, topo.kernels)))
        if key in memory._specs:
            swapped = make_plan(with_patch(memory._specs[key], topo.patch))
            assert swapped.layers == fresh.layers
            seen.add(key)
        assert memory.training_bytes(topo, 3) == training_bytes(fresh, 3, profile=memory.profile)
        assert stage_lists(fresh_conf, family)  # the conf is a whole configuration
    assert seen  # at least one topology was reused with another patch
    assert memory.plans_made == 4 and len(memory._specs) < 4


BAD = [
    (["--memory", "gpu"], "argument --memory: invalid choice: 'gpu' (choose from 'archgen', 'nnunet')"),
    (["--memory", "nnunet", "--fit", "1MB"], "--fit=1MB: no patch fits"),
    (["--fit", "100MB"], "--fit=100MB: no patch fits: at 0.1 GB the 3D plain network still needs"),
]


@pytest.mark.parametrize("extra,message", BAD, ids=["bad-model", "nnunet-tiny", "archgen-tiny"])
def test_bad_memory_and_budget_exit_2(extra, message, cli):
    argv = ["--shape", "128,128,128", "--spacing", "1,1,1", "--classes", "2", *extra]
    code, out, err = run(*argv)
    assert code == 2 and out == "" and message in err and "Traceback" not in err, err
    code, out, err = cli("auto", *argv)
    assert code == 2 and out == "" and message in err and "Traceback" not in err, err
    if extra[-1] == "100MB":
        assert "by archgen's training estimate" in err


def test_plan_dataset_refuses_an_unknown_memory_model():
    from archgen.errors import SpecError

    with pytest.raises(SpecError, match="--memory=gpu: expected archgen or nnunet"):
        plan_dataset(from_figures("64,64,64", "1,1,1", 1, 2, None), FAMILIES["plain"], 8.0, "gpu")


def test_readme_table_is_what_auto_decides():
    """The README's side-by-side table is the output of tests/auto/memory_table.py, row for row."""
    from pathlib import Path

    from tests.auto.memory_table import rows

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "\n".join(rows()) in readme
