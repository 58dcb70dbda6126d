"""The README's table of nnU-Net's and archgen's memory models side by side, from real runs.

``python -m tests.auto.memory_table`` prints it; ``test_archgen_memory`` checks that the README holds
exactly this text, so the table cannot drift from what ``archgen auto`` decides.
"""

from __future__ import annotations

from archgen.auto.inputs import from_figures
from archgen.auto.memory import spec_of
from archgen.auto.nnunet import FAMILIES, Dataset, plan_dataset
from archgen.planner.build import make_plan
from archgen.planner.cost import training_bytes
from archgen.planner.profiles import memory_profile
from tests.auto.fingerprints import named_datasets

FIGURES = [  # (label, shape, spacing, classes)
    ("128³, 1 mm", "128,128,128", "1,1,1", 3),
    ("20×256², 5×0.7×0.7 mm", "20,256,256", "5,0.7,0.7", 2),
    ("512² 2D, 0.5 mm", "512,512", "0.5,0.5", 2),
]
PLANNERS = [("plain", 8.0), ("resenc_m", 8.0), ("resenc_l", 24.0)]
NAMED = {"ct_isotropic": PLANNERS, "mri_anisotropic": PLANNERS[:2], "small_volume": PLANNERS[:1],
         "large_volume": PLANNERS, "images_2d": PLANNERS[:2]}


def datasets() -> list[tuple[str, Dataset]]:
    out = [(label, from_figures(shape, spacing, 1, classes, 100)) for label, shape, spacing, classes in FIGURES]
    for ds in named_datasets():
        fp, dj = ds["fingerprint"], ds["dataset_json"]
        out.append((f"`{ds['name']}`", Dataset(fp["spacings"], fp["shapes_after_crop"], len(dj["channel_names"]),
                                              len(dj["labels"]), dj["numTraining"])))
    return out


def _cell(conf: dict) -> str:
    return f"{'×'.join(map(str, conf['patch_size']))} × {conf['batch_size']}"


def rows() -> list[str]:
    lines = ["| dataset | family, --fit | config | nnunet: patch × batch | its archgen estimate | "
             "archgen: patch × batch | its estimate |",
             "|---|---|---|---|---|---|---|"]
    for label, ds in datasets():
        for family, gb in NAMED.get(label.strip("`"), PLANNERS):
            theirs = plan_dataset(ds, FAMILIES[family], gb, "nnunet")["configurations"]
            mine = plan_dataset(ds, FAMILIES[family], gb, "archgen")["configurations"]
            name = "3d_fullres" if "3d_fullres" in theirs else "2d"
            t, m = theirs[name], mine[name]
            t_bytes = training_bytes(make_plan(spec_of(t, FAMILIES[family], ds.channels, ds.classes)),
                                     t["batch_size"], profile=memory_profile("tensorflow", "gpu"))
            lines.append(f"| {label} | {family}, {gb:g}GB | {name} | {_cell(t)} | {t_bytes / 1e9:.1f} GB | "
                         f"{_cell(m)} | {m['_why']['memory_estimate_bytes'] / 1e9:.1f} GB |")
    return lines


if __name__ == "__main__":
    print("\n".join(rows()))
