"""Run nnU-Net's own planners on synthetic fingerprints (a helper of test_nnunet_equivalence).

``python -m tests.auto.nnunet_reference JOB.json OUT.json``: JOB lists datasets (fingerprint,
dataset.json) and the planners to run; OUT gets nnU-Net's plans per dataset and planner. Run as a
subprocess because nnunetv2.paths reads nnUNet_raw / nnUNet_preprocessed once, at import.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path


def write_dataset(root: Path, dataset_id: int, fingerprint: dict, dataset_json: dict) -> str:
    """nnUNet_raw/DatasetNNN_x/{dataset.json, imagesTr, labelsTr} and the fingerprint beside it."""
    import nibabel
    import numpy as np

    name = f"Dataset{dataset_id:03d}_auto"
    raw = root / "raw" / name
    (raw / "imagesTr").mkdir(parents=True, exist_ok=True)
    (raw / "labelsTr").mkdir(parents=True, exist_ok=True)
    img = nibabel.Nifti1Image(np.zeros((2, 2, 2), dtype=np.float32), np.eye(4))
    for c in range(len(dataset_json["channel_names"])):
        nibabel.save(img, raw / "imagesTr" / f"case_000_{c:04d}.nii.gz")
    nibabel.save(nibabel.Nifti1Image(np.zeros((2, 2, 2), dtype=np.uint8), np.eye(4)), raw / "labelsTr" / "case_000.nii.gz")
    (raw / "dataset.json").write_text(json.dumps(dataset_json))
    pre = root / "preprocessed" / name
    pre.mkdir(parents=True, exist_ok=True)
    (pre / "dataset_fingerprint.json").write_text(json.dumps(fingerprint))
    return name


def main(job_path: str, out_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    root = Path(job["root"])
    os.environ["nnUNet_raw"] = str(root / "raw")
    os.environ["nnUNet_preprocessed"] = str(root / "preprocessed")
    os.environ["nnUNet_results"] = str(root / "results")
    import warnings

    import torch

    torch.set_num_threads(1)
    from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
    from nnunetv2.experiment_planning.experiment_planners.residual_unets.residual_encoder_unet_planners import (
        nnUNetPlannerResEncL, nnUNetPlannerResEncM)

    classes = {"plain": ExperimentPlanner, "resenc_m": nnUNetPlannerResEncM, "resenc_l": nnUNetPlannerResEncL}
    out = {}
    for i, ds in enumerate(job["datasets"]):
        name = write_dataset(root, 100 + i, ds["fingerprint"], ds["dataset_json"])
        for family, gb in ds["planners"]:
            # nnU-Net merges a plans file already there into what it returns: each planner starts clean
            for old in (root / "preprocessed" / name).glob("nnUNet*Plans*.json"):
                old.unlink()
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                plans = classes[family](name, gpu_memory_target_in_gb=gb).plan_experiment()
            confs = {}
            for key, conf in plans["configurations"].items():
                if "architecture" not in conf:
                    continue
                arch = conf["architecture"]["arch_kwargs"]
                confs[key] = {"patch_size": list(conf["patch_size"]), "batch_size": conf["batch_size"],
                              "spacing": list(conf["spacing"]), **{k: arch[k] for k in arch if k in (
                                  "n_stages", "features_per_stage", "kernel_sizes", "strides", "n_conv_per_stage",
                                  "n_blocks_per_stage", "n_conv_per_stage_decoder")}}
            out[f"{ds['name']}/{family}/{gb}"] = {"transpose_forward": plans["transpose_forward"],
                                                   "configurations": confs}
    Path(out_path).write_text(json.dumps(out, default=lambda o: o.tolist() if hasattr(o, "tolist") else int(o)))


if __name__ == "__main__":
    main(*sys.argv[1:3])
