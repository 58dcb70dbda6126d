"""Synthetic nnU-Net fingerprints: the datasets archgen auto is checked on against nnU-Net itself."""

from __future__ import annotations

import random


def fingerprint(spacings: list[list[float]], shapes: list[list[int]], channels: int = 1) -> dict:
    """A dataset_fingerprint.json with the keys nnU-Net's planner reads."""
    props = {"max": 1000.0, "mean": 100.0, "median": 90.0, "min": -1000.0, "percentile_00_5": -900.0,
             "percentile_99_5": 900.0, "std": 50.0}
    return {"spacings": spacings, "shapes_after_crop": shapes,
            "foreground_intensity_properties_per_channel": {str(c): props for c in range(channels)},
            "median_relative_size_after_cropping": 1.0}


def dataset_json(channels: int, classes: int, cases: int) -> dict:
    names = ["CT", "T2", "ADC", "noNorm"]
    return {"channel_names": {str(c): names[c % len(names)] for c in range(channels)},
            "labels": {"background": 0, **{f"l{i}": i for i in range(1, classes)}},
            "numTraining": cases, "file_ending": ".nii.gz"}


def _cases(rng: random.Random, n: int, spacing_ranges, shape_ranges):
    spacings, shapes = [], []
    for _ in range(n):
        spacings.append([round(rng.uniform(*r), 4) for r in spacing_ranges])
        shapes.append([rng.randint(*r) for r in shape_ranges])
    return spacings, shapes


def named_datasets() -> list[dict]:
    """The hand-picked kinds: isotropic CT, anisotropic MRI, small and large volumes, a 2D set."""
    rng = random.Random(1234)
    out = []

    def add(name, n, spacing_ranges, shape_ranges, channels=1, classes=2, planners=(("plain", 8), ("resenc_m", 8))):
        sp, sh = _cases(rng, n, spacing_ranges, shape_ranges)
        out.append({"name": name, "fingerprint": fingerprint(sp, sh, channels),
                    "dataset_json": dataset_json(channels, classes, n), "planners": [list(p) for p in planners]})

    add("ct_isotropic", 40, [(0.7, 1.0)] * 3, [(180, 260), (200, 260), (200, 260)], classes=3)
    # coarse axis in the middle: nnU-Net moves it first (transpose_forward)
    add("mri_anisotropic", 30, [(0.6, 0.8), (4.0, 7.0), (0.6, 0.8)], [(220, 320), (14, 26), (220, 320)],
        channels=2, classes=4)
    add("small_volume", 60, [(0.9, 1.1)] * 3, [(30, 48), (36, 52), (30, 44)])
    add("large_volume", 20, [(2.0, 3.0), (0.7, 0.8), (0.7, 0.8)], [(250, 400), (480, 512), (480, 512)],
        classes=5, planners=(("plain", 8), ("resenc_m", 8), ("resenc_l", 24), ("plain", 24)))
    add("images_2d", 100, [(999, 999), (0.5, 0.5), (0.5, 0.5)], [(1, 1), (380, 620), (400, 700)], channels=3)
    return out


def random_datasets(seed: int, count: int) -> list[dict]:
    """Independent fingerprints: spacing, anisotropy, sizes, channels, classes, cases and budget drawn."""
    rng = random.Random(seed)
    out = []
    for k in range(count):
        base = rng.uniform(0.4, 2.0)
        coarse = rng.choice([1.0, 1.0, rng.uniform(1.5, 3.5), rng.uniform(3.5, 10.0)])
        axis = rng.randrange(3)
        spacing_ranges, shape_ranges = [], []
        for a in range(3):
            s = base * (coarse if a == axis else 1.0)
            spacing_ranges.append((s * 0.9, s * 1.1))
            edge = rng.randint(24, 400) if a != axis else max(8, int(rng.randint(24, 400) / coarse))
            shape_ranges.append((edge, int(edge * rng.uniform(1.0, 1.4))))
        n = rng.randint(5, 200)
        channels, classes = rng.randint(1, 3), rng.randint(2, 6)
        sp, sh = _cases(rng, n, spacing_ranges, shape_ranges)
        family = rng.choice(["plain", "resenc_m"])
        gb = rng.choice([4, 8, 11, 16]) if family == "plain" else 8
        out.append({"name": f"random_{seed}_{k}", "fingerprint": fingerprint(sp, sh, channels),
                    "dataset_json": dataset_json(channels, classes, n), "planners": [[family, gb]]})
    return out


def thin_datasets() -> list[dict]:
    """Axes thinner than a feature map's least edge: a slab whose patch nnU-Net shrinks below 4
    voxels, a thin case among ordinary ones, and a 2D set 3 pixels wide."""
    def one(name, spacings, shapes, planners, channels=1):
        return {"name": name, "fingerprint": fingerprint(spacings, shapes, channels),
                "dataset_json": dataset_json(channels, 2, len(shapes)), "planners": planners}

    return [one("thin_slab", [[10.0, 1.0, 1.0]], [[4, 400, 400]], [["plain", 2], ["resenc_m", 8]]),
            one("thin_case", [[1.0, 1.0, 1.0]] * 6, [[100, 100, 100]] * 5 + [[3, 100, 100]], [["plain", 8]]),
            one("images_2d_thin", [[999.0, 1.0, 1.0]] * 4, [[1, 3000, 3]] * 4, [["plain", 8]])]
