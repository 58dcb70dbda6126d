"""archgen auto --memory nnunet against nnU-Net's own planners (nnunetv2 2.8.1), run on the same
synthetic fingerprints: every configuration's patch size, strides, kernel sizes, features,
convs or blocks per stage and batch size must be equal.

nnU-Net runs in a subprocess (tests/auto/nnunet_reference.py) because it reads its folders from the
environment once, at import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.auto.fingerprints import named_datasets, random_datasets, thin_datasets

pytest.importorskip("nnunetv2")
pytest.importorskip("nibabel")

ROOT = Path(__file__).resolve().parents[2]
KEYS = ["patch_size", "batch_size", "spacing", "n_stages", "features_per_stage", "kernel_sizes", "strides",
        "n_conv_per_stage", "n_blocks_per_stage", "n_conv_per_stage_decoder"]


def nnunet_plans(tmp_path: Path, datasets: list[dict]) -> dict:
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"root": str(tmp_path), "datasets": datasets}))
    out = tmp_path / "out.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "tests.auto.nnunet_reference", str(job), str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def archgen_plans(tmp_path: Path, ds: dict, family: str, gb: float) -> dict:
    """Through the command line, from the same files nnU-Net read."""
    from archgen.auto.cli import main

    fp, dj = tmp_path / f"{ds['name']}_fp.json", tmp_path / f"{ds['name']}_ds.json"
    fp.write_text(json.dumps(ds["fingerprint"]))
    dj.write_text(json.dumps(ds["dataset_json"]))
    out = tmp_path / f"{ds['name']}_{family}_{gb}.json"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["--fingerprint", str(fp), "--dataset", str(dj), "--family", family, "--fit", f"{gb}GB",
                     "--memory", "nnunet", "--json"])
    assert code == 0
    out.write_text(buf.getvalue())
    return json.loads(buf.getvalue())


def compare(tmp_path: Path, datasets: list[dict]) -> list[str]:
    theirs = nnunet_plans(tmp_path, datasets)
    rows, bad = [], []
    for ds in datasets:
        for family, gb in ds["planners"]:
            ref = theirs[f"{ds['name']}/{family}/{gb}"]
            mine = archgen_plans(tmp_path, ds, family, gb)
            assert mine["transpose_forward"] == ref["transpose_forward"], ds["name"]
            assert sorted(mine["configurations"]) == sorted(ref["configurations"]), (ds["name"], family)
            for name, conf in ref["configurations"].items():
                got = mine["configurations"][name]
                for key in KEYS:
                    if key not in conf:
                        continue
                    want = conf[key]
                    if key == "spacing":
                        if got[key] != pytest.approx(want, rel=1e-12):
                            bad.append(f"{ds['name']} {family} {gb} {name} {key}: {got[key]} != {want}")
                    elif json.loads(json.dumps(got[key])) != json.loads(json.dumps(want)):
                        bad.append(f"{ds['name']} {family} {gb} {name} {key}: {got[key]} != {want}")
                rows.append(f"{ds['name']:16} {family:9} {gb:>3}GB {name:10} patch {conf['patch_size']} "
                            f"batch {conf['batch_size']} stages {conf['n_stages']}")
    print("\n".join(rows))
    return bad


def test_small_and_2d_datasets_match_nnunet(tmp_path):
    """The fast case: a small volume (plain and ResEnc M) and a 2D dataset."""
    datasets = [d for d in named_datasets() if d["name"] in ("small_volume", "images_2d")]
    assert compare(tmp_path, datasets) == []


def test_thin_axes_match_nnunet(tmp_path):
    """Axes under a feature map's least edge: never pooled, a patch shrunk below 4 voxels."""
    assert compare(tmp_path, thin_datasets()) == []


@pytest.mark.slow
def test_every_named_and_random_fingerprint_matches_nnunet(tmp_path):
    """Isotropic CT, anisotropic MRI (coarse axis in the middle), a large volume with 3d_lowres under
    plain, ResEnc M and ResEnc L at 8 and 24 GB, and independently drawn fingerprints."""
    datasets = [d for d in named_datasets() if d["name"] not in ("small_volume", "images_2d")]
    datasets += random_datasets(7, 6) + random_datasets(2024, 6)
    assert compare(tmp_path, datasets) == []
