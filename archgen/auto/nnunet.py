"""nnU-Net's experiment planning, ported: from a dataset fingerprint to patch size, topology, batch size.

Source (read and re-written here, not copied): nnU-Net v2.8.1 by Isensee et al., Apache-2.0,
``nnunetv2/experiment_planning/experiment_planners/``:

- ``network_topology.py``: ``get_pool_and_conv_props`` and ``pad_shape`` -> :func:`pool_and_conv_props`;
- ``default_experiment_planner.py`` (``ExperimentPlanner``): ``determine_fullres_target_spacing``,
  ``determine_transpose``, ``get_plans_for_configuration``, ``plan_experiment`` ->
  :func:`target_spacing`, :func:`plan_configuration`, :func:`plan_dataset`;
- ``residual_unets/residual_encoder_unet_planners.py``: the ResEnc M/L/XL constants and their
  shrink loop (which, unlike the plain planner's, does not correct for the reference batch size);
- ``static_estimate_VRAM_usage`` instantiates dynamic-network-architectures' network and calls
  ``compute_conv_feature_map_size``; :func:`feature_map_elements` computes the same sum without
  PyTorch (``PlainConvEncoder``/``ResidualEncoder``/``UNetDecoder``/``BasicBlockD`` in
  dynamic-network-architectures 0.4.4).

The rules, in the order the planner applies them:

1. Target spacing: the median spacing per axis. If one axis is both coarser than 3x the others
   (``ANISO_THRESHOLD``) and has fewer than a third of their voxels, it takes the 10th percentile
   of that axis's spacings instead (but never finer than the other axes).
2. Axis order: the coarsest axis first (``transpose_forward``); every figure is in that order.
3. Median shape after resampling every case to the target spacing.
4. Initial patch: the aspect ratio of 1/spacing scaled to 256^3 voxels (2D: 2048^2), clipped to
   the median shape.
5. Topology (``get_pool_and_conv_props``): pool (stride 2) every axis whose feature map is still
   >= 2 x 4 voxels and whose current spacing is < 2x the finest current spacing; an axis pooled
   alone must also be >= 3 x 4. A kernel is 1 on an axis until its spacing comes within 2x of
   the finest, then 3 for good; the bottleneck is all 3s. The patch is padded up to a multiple of
   2^(pools per axis).
6. Features: 32 doubling per stage, capped at 320 (3D) / 512 (2D). Plain: 2 convs per stage, 2
   per decoder stage; ResEnc: (1, 3, 4, 6, 6, ...) residual blocks, 1 conv per decoder stage.
7. Memory: the estimate is the number of conv output elements of one sample; the budget is a
   reference value (plain 3D 560e6 / 2D 85e6 at 8 GB; ResEnc M 680e6 / 135e6 at 8 GB; L 2.1e9 /
   380e6 at 24 GB; XL 3.6e9 / 560e6 at 40 GB) scaled linearly to the GPU target. While the
   estimate does not fit (plain: estimate / reference batch x 2, i.e. for a batch of 2), the
   axis whose patch is largest relative to the median shape shrinks by one divisibility step and
   the topology is recomputed.
8. Batch size: round(reference / estimate x reference batch (3D: 2, 2D: 12)), capped so a batch
   covers at most 5% of the dataset's voxels (plain; ResEnc M/L/XL: 100%), at least 2.
   (7 and 8 are nnU-Net's memory model, ``memory_model="nnunet"``; the default, "archgen", keeps
   the shrink steps, the cap and the minimum but asks archgen's training estimate of the planned
   network instead: ``archgen.auto.memory``.)
9. 3d_lowres: if the 3D patch covers < 25% of the median image, the spacing grows by 3% a step
   (anisotropic axes first) until it does; dropped if that image is not at least half the size.
   2d: the last two axes of the full-resolution spacing and median shape.

Pure Python with numpy (numpy's rounding, percentiles and argsort are what nnU-Net uses; matching
them bit for bit is why numpy is used rather than ``statistics``). No TensorFlow, no PyTorch.
"""

from __future__ import annotations

from copy import deepcopy
from math import prod
from typing import Any

import numpy as np

from archgen.auto.calibration import DTYPE, OPTIMIZER, calibration
from archgen.auto.memory import ArchgenMemory
from archgen.auto.records import FAMILIES, Dataset, Family, Topology, features_per_stage  # noqa: F401  (re-exported)
from archgen.errors import SpecError

ANISO_THRESHOLD = 3  # nnunetv2.configuration.ANISO_THRESHOLD
MIN_EDGE = 4  # UNet_featuremap_min_edge_length
REF_BATCH = {2: 12, 3: 2}  # UNet_reference_val_corresp_bs_2d / _3d
MIN_BATCH = 2
LOWRES_THRESHOLD = 0.25
LOWRES_STEP = 1.03
MAX_NUMPOOL = 999999


def pad_shape(shape, divisible_by):
    """Each size up to the next multiple (a multiple already stays): ``network_topology.pad_shape``."""
    out = []
    for s, m in zip(shape, divisible_by):
        new = s + m - s % m
        if s % m == 0:
            new -= m
        out.append(new)
    return [int(v) for v in np.array(out).astype(int)]


def pool_and_conv_props(spacing, patch, min_edge: int = MIN_EDGE, max_numpool: int = MAX_NUMPOOL) -> Topology:
    """Strides, kernels and the padded patch for a spacing and patch (``get_pool_and_conv_props``)."""
    dim = len(spacing)
    cur_spacing = list(spacing)
    cur_size = list(patch)
    strides = [[1] * dim]
    kernels = []
    pools = [0] * dim
    kernel = [1] * dim
    while True:
        valid = [i for i in range(dim) if cur_size[i] >= 2 * min_edge]
        if not valid:
            break
        finest = min(cur_spacing[i] for i in valid)
        # the 2x rule: only axes within a factor 2 of the finest (poolable) spacing pool
        valid = [i for i in valid if cur_spacing[i] / finest < 2]
        valid = [i for i in valid if pools[i] < max_numpool]
        if len(valid) == 1 and not cur_size[valid[0]] >= 3 * min_edge:
            break
        if not valid:
            break
        # a kernel becomes 3 once its axis is within 2x of the finest spacing, and stays 3
        for d in range(dim):
            if kernel[d] != 3 and cur_spacing[d] / min(cur_spacing) < 2:
                kernel[d] = 3
        stride = [1] * dim
        for v in valid:
            stride[v] = 2
            pools[v] += 1
            cur_spacing[v] *= 2
            cur_size[v] = np.ceil(cur_size[v] / 2)
        strides.append(stride)
        kernels.append(list(kernel))
    divisible_by = [int(2 ** p) for p in pools]
    kernels.append([3] * dim)  # the bottleneck
    return Topology(pools, strides, kernels, pad_shape(patch, divisible_by), divisible_by)


def feature_map_elements(patch, channels_in: int, classes: int, features, strides, blocks_encoder,
                         blocks_decoder, residual: bool) -> int:
    """``PlainConvUNet`` / ``ResidualEncoderUNet.compute_conv_feature_map_size(patch)`` (deep
    supervision off, as the planner builds it): the elements of every conv output of one sample.

    Encoder: each conv of a stage at the stage's (strided) size; ResEnc adds its stem conv at full
    size and, per ``BasicBlockD``, two convs plus the projection when channels or size change.
    Decoder: per stage its convs, the transposed conv (skip's channels, skip's size) and, at level 1
    only, the segmentation layer. ``channels_in`` does not enter the sum (nnU-Net's neither).
    """
    del channels_in
    n = len(features)
    size = [int(s) for s in patch]
    total = 0
    if residual:
        total += features[0] * prod(size)  # the stem: one conv, stride 1, features[0] channels
        in_ch = features[0]
    for s in range(n):
        after = [a // b for a, b in zip(size, strides[s])]
        vox = prod(after)
        if residual:
            first = 2 * features[s] * vox
            if in_ch != features[s] or after != size:
                first += features[s] * vox  # the 1x1 projection of the shortcut
            total += first + (blocks_encoder[s] - 1) * 2 * features[s] * vox
            in_ch = features[s]
        else:
            total += blocks_encoder[s] * features[s] * vox
        size = after
    skip_sizes = []
    size = [int(s) for s in patch]
    for s in range(n - 1):
        size = [a // b for a, b in zip(size, strides[s])]
        skip_sizes.append(size)
    for s in range(n - 1):  # decoder stages, deepest first
        vox = prod(skip_sizes[-(s + 1)])
        f = features[-(s + 2)]
        total += blocks_decoder[s] * f * vox + f * vox
        if s == n - 2:
            total += classes * vox
    return int(total)


def _round(x) -> int:
    """Python's round of a float (half to even), as nnU-Net calls it."""
    return int(round(float(x)))


def plan_configuration(family: Family, spacing, median_shape, n_voxels_dataset: float, channels: int,
                       classes: int, gpu_gb: float, cache: dict | None = None, memory=None,
                       keys: tuple[str, str] = ("--shape", "--spacing")) -> dict[str, Any]:
    """One configuration (``get_plans_for_configuration``): nnU-Net's keys and axis order.

    ``memory``: None for nnU-Net's reference-VRAM heuristic; an ``archgen.auto.memory.ArchgenMemory``
    to shrink the patch until a batch of 2 fits its budget by archgen's training estimate, and to take
    the largest batch that fits (the other rules, the dataset cap and the minimum 2 included, stay).
    """
    cache = {} if cache is None else cache
    spacing = np.asarray(spacing, dtype=float)
    dim = len(spacing)
    median = list(median_shape)[:dim]
    tmp = 1 / spacing
    if dim == 3:
        initial = [round(i) for i in tmp * (256 ** 3 / np.prod(tmp)) ** (1 / 3)]
    else:
        initial = [round(i) for i in tmp * (2048 ** 2 / np.prod(tmp)) ** (1 / 2)]
    initial = np.array([min(i, j) for i, j in zip(initial, median)])  # clipped to the median shape
    if min(initial) < 1:  # nnU-Net would divide by an estimate of 0
        axis = int(np.argmin(initial))
        raise SpecError(f"is too anisotropic to plan: at the target spacing {[round(float(v), 6) for v in spacing]} "
                        f"the {dim}D initial patch (1/spacing aspect) would have 0 voxels on axis {axis}; nnU-Net's "
                        "rules need the axes' spacings within a factor of ~10,000", path=keys[1])
    topo = pool_and_conv_props(spacing, initial)
    if len(topo.strides) == 1:  # nnU-Net would plan a network with no decoder, whose forward pass fails
        raise SpecError(f"is too small for a U-Net: the {dim}D median image {[int(m) for m in median]} at the spacing "
                        f"{[round(float(v), 6) for v in spacing]} allows no down-sampling (an axis pools while its "
                        f"feature map stays >= {MIN_EDGE})", path=keys[0], value=[int(m) for m in median])
    blocks_enc, blocks_dec = family.blocks_encoder, family.blocks_decoder

    def estimate_of(t: Topology) -> int:
        n = len(t.strides)
        if n > len(blocks_enc):
            raise SpecError(f"the plan would need {n} stages; nnU-Net's {family.planner} has block counts "
                            f"for {len(blocks_enc)}", path=keys[0], value=[int(m) for m in median])
        key = (tuple(t.patch), tuple(map(tuple, t.strides)))
        if key not in cache:
            cache[key] = feature_map_elements(t.patch, channels, classes, features_per_stage(n, dim), t.strides,
                                              blocks_enc[:n], blocks_dec[:n - 1], family.residual)
        return cache[key]

    estimate = estimate_of(topo)
    reference = (family.reference_2d if dim == 2 else family.reference_3d) * (gpu_gb / family.reference_gb)
    ref_bs = REF_BATCH[dim]
    steps = 0
    previous = None  # the patch before the last shrink step: the next larger candidate

    def too_big(t: Topology, e: int) -> bool:
        if memory is not None:
            return not memory.fits(t, MIN_BATCH)
        # the plain planner asks that a batch of 2 fits; ResEnc's planners compare the estimate itself
        return (e / ref_bs * 2) > reference if not family.residual else e > reference

    while too_big(topo, estimate):
        # shrink the axis largest relative to the median shape by one divisibility step
        axis = int(np.argsort([i / j for i, j in zip(topo.patch, median)])[-1])
        patch = list(topo.patch)
        trial = deepcopy(patch)
        trial[axis] -= topo.divisible_by[axis]
        step = pool_and_conv_props(spacing, trial).divisible_by
        patch[axis] -= step[axis]
        shrunk = pool_and_conv_props(spacing, patch)
        if patch[axis] < 1 or len(shrunk.strides) == 1:
            # nnU-Net would go on to an empty patch (and divide by 0), or to a network without a decoder
            needs = (f"{estimate:,} feature-map elements (budget {reference:,.0f})" if memory is None else
                     f"{memory.training_bytes(topo, MIN_BATCH):,} bytes for a batch of {MIN_BATCH} by archgen's "
                     f"training estimate (budget {memory.budget:,})")
            raise SpecError(
                f"no patch fits: at {gpu_gb:g} GB the {'2D' if dim == 2 else '3D'} {family.name} network "
                f"still needs {needs} with the patch "
                f"{topo.patch}; a smaller patch " + (f"is empty (axis {axis} would be {patch[axis]})" if patch[axis] < 1 else
                                       f"leaves no down-sampling ({patch})"),
                path="--fit", value=f"{gpu_gb:g}GB", hint="give a larger --fit")
        previous, topo = topo.patch, shrunk
        estimate = estimate_of(topo)
        steps += 1

    batch = _round((reference / estimate) * ref_bs) if memory is None else memory.max_batch(topo)
    cap = _round(n_voxels_dataset * family.max_dataset_covered / np.prod(topo.patch, dtype=np.float64))
    batch_size = max(min(batch, cap), MIN_BATCH)
    n = len(topo.strides)
    return {
        "batch_size": batch_size,
        "patch_size": [int(p) for p in topo.patch],
        "median_image_size_in_voxels": [float(m) for m in median],
        "spacing": [float(s) for s in spacing],
        "n_stages": n,
        "features_per_stage": features_per_stage(n, dim),
        "kernel_sizes": [list(map(int, k)) for k in topo.kernels],
        "strides": [list(map(int, s)) for s in topo.strides],
        family.blocks_key: list(blocks_enc[:n]),
        "n_conv_per_stage_decoder": list(blocks_dec[:n - 1]),
        # archgen's own record of why: not nnU-Net keys
        "_why": {"initial_patch_size": [float(i) for i in initial], "vram_estimate": int(estimate),
                 "vram_reference": float(reference), "reference_batch_size": ref_bs,
                 "batch_size_from_memory": batch, "batch_size_cap_dataset": cap,
                 "max_dataset_covered": family.max_dataset_covered, "shrink_steps": steps,
                 "previous_patch_size": None if previous is None else [int(p) for p in previous],
                 **_memory_why(memory, topo, batch_size)},
    }


def _memory_why(memory, topo: Topology, batch_size: int) -> dict[str, Any]:
    """Which memory model decided, and with archgen's, its estimate for the chosen patch and batch."""
    if memory is None:
        return {"memory_model": "nnunet"}
    return {"memory_model": "archgen", "memory_estimate_bytes": memory.training_bytes(topo, batch_size),
            "memory_estimate_batch_2_bytes": memory.training_bytes(topo, MIN_BATCH),
            "memory_budget_bytes": memory.budget, "memory_dtype": DTYPE, "memory_optimizer": OPTIMIZER,
            "memory_profile": memory.profile.key, "memory_calibration": calibration(memory.profile)}


def target_spacing(ds: Dataset) -> np.ndarray:
    """``determine_fullres_target_spacing`` (no overwrite_target_spacing)."""
    spacings = np.asarray(ds.spacings, dtype=np.float64)  # np.vstack's array, without a call per case
    target = np.percentile(spacings, 50, 0)
    target_size = np.percentile(np.asarray(ds.shapes), 50, 0)
    worst = int(np.argmax(target))
    others = [i for i in range(len(target)) if i != worst]
    other_spacings = [target[i] for i in others]
    other_sizes = [target_size[i] for i in others]
    aniso_spacing = target[worst] > ANISO_THRESHOLD * max(other_spacings)
    aniso_voxels = target_size[worst] * ANISO_THRESHOLD < min(other_sizes)
    if aniso_spacing and aniso_voxels:
        that_axis = np.percentile(spacings[:, worst], 10)
        if that_axis < max(other_spacings):
            that_axis = max(max(other_spacings), that_axis) + 1e-5
        target[worst] = that_axis
    return target


def compute_new_shape(old_shape, old_spacing, new_spacing) -> list[int]:
    """The shape after resampling (``default_resampling.compute_new_shape``)."""
    return [int(round(i / j * k)) for i, j, k in zip(old_spacing, new_spacing, old_shape)]


def plan_dataset(ds: Dataset, family: Family, gpu_gb: float, memory_model: str = "archgen",
                 profile=None) -> dict[str, Any]:
    """``plan_experiment``: the 3d_fullres, 3d_lowres (when made) and 2d configurations.

    ``memory_model``: "nnunet" (its reference-VRAM heuristic, nnU-Net's decisions exactly) or
    "archgen" (archgen's training estimate against ``gpu_gb`` x 10^9 bytes, by the memory ``profile``:
    default the GPU's of ``$KERAS_BACKEND``, else TensorFlow's; ``archgen.planner.profiles``).
    """
    cache: dict = {}
    memory = None
    if memory_model == "archgen":
        memory = ArchgenMemory(family, ds.channels, ds.classes, round(gpu_gb * 1e9), profile)
    elif memory_model != "nnunet":
        raise SpecError("expected archgen or nnunet", path="--memory", value=memory_model)
    fullres = target_spacing(ds)
    worst = int(np.argmax(fullres))
    forward = [worst] + [i for i in range(3) if i != worst]
    fullres_t = fullres[forward]
    # compute_new_shape per case, for all at once: the same float operations, numpy rounds half to even too
    new_shapes = np.round(np.asarray(ds.spacings, dtype=np.float64) / fullres * np.asarray(ds.shapes, dtype=np.float64))
    median_t = np.median(new_shapes, 0)[forward]
    n_vox = float(np.prod(median_t, dtype=np.float64) * ds.num_training)
    configs: dict[str, Any] = {}
    not_made: dict[str, SpecError] = {}  # a configuration nnU-Net's rules cannot plan: the others still can
    lowres_trail = []
    no_lowres = "the dataset is 2D"
    full = None
    if median_t[0] != 1:
        try:
            full = plan_configuration(family, fullres_t, median_t, n_vox, ds.channels, ds.classes, gpu_gb, cache,
                                      memory, ds.keys)
        except SpecError as exc:
            not_made["3d_fullres"] = exc
            no_lowres = "3d_fullres was not made"
    if full is not None:
        median_vox = np.prod(median_t, dtype=np.float64)
        patch_vox = np.prod(full["patch_size"], dtype=np.float64)
        lowres = None
        no_lowres = "the 3d_fullres patch already covers 25% of the median image"
        low_spacing = deepcopy(fullres_t)
        while patch_vox / median_vox < LOWRES_THRESHOLD:
            biggest = max(low_spacing)
            if np.any((biggest / low_spacing) > 2):
                low_spacing[(biggest / low_spacing) > 2] *= LOWRES_STEP
            else:
                low_spacing *= LOWRES_STEP
            median_vox = np.prod(fullres_t / low_spacing * median_t, dtype=np.float64)
            low_median = tuple(round(i) for i in fullres_t / low_spacing * median_t)
            if min(low_median) < 1:  # a thin slab: nnU-Net would plan an empty patch (and divide by 0)
                lowres, no_lowres = None, (f"at the spacing {[round(float(v), 6) for v in low_spacing]} the median "
                                           f"image would be {list(low_median)} voxels")
                break
            try:
                lowres = plan_configuration(family, low_spacing, low_median,
                                            float(np.prod(median_vox) * ds.num_training), ds.channels, ds.classes,
                                            gpu_gb, cache, memory, ds.keys)
            except SpecError as exc:  # nnU-Net's search would fail here: no cascade
                lowres, no_lowres = None, f"at the spacing {[round(float(v), 6) for v in low_spacing]}: {exc.message}"
                break
            patch_vox = np.prod(lowres["patch_size"], dtype=np.int64)
            lowres_trail.append([float(s) for s in low_spacing])
        if lowres is not None and np.prod(median_t, dtype=np.float64) / median_vox < 2:
            lowres = None  # too close to 3d_fullres to be worth a cascade
            no_lowres = "its median image would not be half the size of 3d_fullres's"
        if lowres is not None:
            lowres["_why"]["lowres_spacing_steps"] = len(lowres_trail)
            configs["3d_lowres"] = lowres
        configs["3d_fullres"] = full
    try:
        configs["2d"] = plan_configuration(family, fullres_t[1:], median_t[1:], n_vox, ds.channels, ds.classes,
                                           gpu_gb, cache, memory, ds.keys)
    except SpecError as exc:
        not_made["2d"] = exc
    return {
        "planner": family.planner,
        "family": family.name,
        "gpu_memory_target_in_gb": gpu_gb,
        "memory_model": memory_model,
        "transpose_forward": forward,
        "fullres_target_spacing": [float(s) for s in fullres],
        "median_shape_after_resampling": [float(m) for m in median_t],
        "approximate_n_voxels_dataset": n_vox,
        "configurations": {k: configs[k] for k in ("2d", "3d_fullres", "3d_lowres") if k in configs},
        "_why_no_3d_lowres": None if "3d_lowres" in configs else no_lowres,
        "_not_made": not_made,  # the error each configuration that could not be planned raised
    }
