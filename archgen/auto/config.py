"""An nnU-Net configuration -> an archgen config in the stage form (``encoder.stages``/``decoder.stages``).

The network is dynamic-network-architectures' ``PlainConvUNet`` (or ``ResidualEncoderUNet``) as
nnU-Net builds it from its plans: each stage's first conv strides (no pooling layer), transposed
convs with kernel = stride, instance norm (eps 1e-5, affine), leaky ReLU 0.01, conv bias, a 1x1
segmentation head on every decoder stage (deep supervision). Axes are in nnU-Net's order after
``transpose_forward`` (the coarsest axis first), channels last as in every archgen config.
"""

from __future__ import annotations

from typing import Any

from archgen.auto.nnunet import Dataset, Family


def _axis(values: list[int]) -> int | list[int]:
    """One int where every axis agrees, else one per axis."""
    return values[0] if len(set(values)) == 1 else list(values)


def _flow(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def stage_lists(conf: dict, family: Family) -> tuple[list[dict], list[dict]]:
    """The encoder and decoder stages (level 1 first) of one nnU-Net configuration."""
    n = conf["n_stages"]
    enc_blocks = conf[family.blocks_key]
    encoder = []
    for s in range(n):
        stage = {"filters": conf["features_per_stage"][s]}
        if family.residual:
            stage.update(convs=2, blocks=enc_blocks[s])  # BasicBlockD: two convs per block
        else:
            stage["convs"] = enc_blocks[s]
        stage.update(kernel_size=_axis(conf["kernel_sizes"][s]), stride=_axis(conf["strides"][s]))
        encoder.append(stage)
    dec_convs = conf["n_conv_per_stage_decoder"]  # deepest first, as nnU-Net lists it
    decoder = [{"filters": conf["features_per_stage"][level], "convs": dec_convs[n - 2 - level],
                "kernel_size": _axis(conf["kernel_sizes"][level])} for level in range(n - 1)]
    return encoder, decoder


def network_lines(conf: dict, family: Family, channels: int, classes: int, name: str) -> list[str]:
    """The config's YAML lines (no comments) for one nnU-Net configuration: what `auto` writes and
    what its archgen memory model plans."""
    encoder, decoder = stage_lists(conf, family)
    n = conf["n_stages"]
    lines = [
        f"name: {name}",
        "input:",
        f"  shape: {_flow([*conf['patch_size'], channels])}",
        "padding: same",
        "encoder:",
        *(["  stem: {convs: 1}"] if family.residual else []),
        "  block:",
        *(["    type: residual", "    shortcut: resnet_d"] if family.residual else []),
        "    norm: instance",
        "    norm_epsilon: 1.0e-5",
        "    activation: leaky_relu",
        "    negative_slope: 0.01",
        "    bias: true",
        "  downsample:",
        "    type: stride",
        "  stages:",
        *("    - {" + ", ".join(f"{k}: {_flow(v)}" for k, v in st.items()) + "}" for st in encoder),
        "decoder:",
        "  align: none",
    ]
    if family.residual:
        lines += ["  block:", "    type: conv", "    norm: instance", "    norm_epsilon: 1.0e-5",
                  "    activation: leaky_relu", "    negative_slope: 0.01", "    bias: true"]
    lines += [
        "  upsample:",
        "    type: transpose",
        "    bias: true",
        "  stages:                      # level 1 (full resolution) first" if decoder else "  stages: []",
        *("    - {" + ", ".join(f"{k}: {_flow(v)}" for k, v in st.items()) + "}" for st in decoder),
        "heads:",
        "  - name: logits",
        f"    filters: {classes}",
    ]
    if n > 2:
        lines.append(f"    deep_supervision: {_flow(list(range(2, n)))}")
    return lines


def _gib(n: int) -> str:
    return f"{n:,} bytes ({n / 2**30:.2f} GiB)"


def _memory_lines(result: dict, conf: dict, family: Family, dim: int) -> list[str]:
    """Which memory model sized the patch and batch, and its figures."""
    why = conf["_why"]
    at = f"{family.name} at {result['gpu_memory_target_in_gb']:g} GB"
    capped = f"{'#   doubling, capped at ' + str(320 if dim == 3 else 512)}; patch shrunk {why['shrink_steps']} step(s) until"
    nnunet = (f"{why['vram_estimate']:,} feature-map elements vs reference {why['vram_reference']:,.0f} ({at})")
    if why["memory_model"] == "nnunet":
        return [f"{capped} nnU-Net's VRAM estimate fits:", f"#   {nnunet}.",
                "# Memory model: nnunet (--memory nnunet): nnU-Net's reference-VRAM heuristic, its decisions exactly."]
    return [
        f"{capped} archgen's training estimate of this network for a",
        f"#   batch of 2 fits the budget: {_gib(why['memory_estimate_batch_2_bytes'])} <= "
        f"{_gib(why['memory_budget_bytes'])} (--fit, {at}).",
        "# Memory model: archgen (--memory archgen, the default): the training estimate `archgen summary --fit`",
        f"#   reports ({why['memory_dtype']}, {why['memory_optimizer']}: weights, gradients, optimizer state, activations "
        "at the step's peak,",
        "#   TensorFlow's runtime), calibrated against TensorFlow 2.21 on CPU; not measured on a GPU. The batch is",
        f"#   the largest that fits: {_gib(why['memory_estimate_bytes'])} at batch {conf['batch_size']}. nnU-Net's "
        "heuristic (--memory nnunet)",
        f"#   counts {nnunet} for this patch.",
    ]


def render(result: dict, configuration: str, dataset: Dataset, name: str, command: str) -> str:
    """The YAML text, with a comment block saying which inputs and rules produced it."""
    family_name = result["family"]
    from archgen.auto.nnunet import FAMILIES

    family = FAMILIES[family_name]
    conf = result["configurations"][configuration]
    why = conf["_why"]
    dim = len(conf["patch_size"])
    net = "ResidualEncoderUNet" if family.residual else "PlainConvUNet"
    lines = [
        f"# Written by `archgen auto` ({command}).",
        (f"# nnU-Net's {configuration} configuration as its {family.planner} (nnunetv2 2.8.1) plans it, for"
         if why["memory_model"] == "nnunet" else
         f"# nnU-Net's {configuration} configuration by its {family.planner}'s rules (nnunetv2 2.8.1), patch and "
         "batch sized by archgen's memory model, for"),
        f"# dynamic_network_architectures' {net}: input channels {dataset.channels}, classes {dataset.classes} "
        f"(len(labels), background included).",
        f"# Inputs: {dataset.source}",
        *(f"#   note: {note}" for note in dataset.notes),
        f"#   target spacing {_flow([round(s, 6) for s in result['fullres_target_spacing']])} (median per axis; "
        f"a much coarser axis with few voxels takes its 10th percentile)",
        f"#   axis order: transpose_forward {result['transpose_forward']} (coarsest axis first); "
        f"median shape after resampling {_flow([round(m, 2) for m in result['median_shape_after_resampling']])}",
        f"# Rules: spacing {_flow([round(s, 6) for s in conf['spacing']])}; initial patch "
        f"{_flow([round(p, 2) for p in why['initial_patch_size']])} (1/spacing aspect, "
        f"{'2048^2' if dim == 2 else '256^3'} voxels, clipped to the median shape);",
        "#   pool an axis while its feature map stays >= 4 (>= 8 before the pool) and its spacing is within 2x",
        "#   of the finest; kernel 1 on an axis until its spacing is within 2x of the finest; features 32",
        *_memory_lines(result, conf, family, dim),
        f"# Patch size {conf['patch_size']}, batch size {conf['batch_size']} (from memory {why['batch_size_from_memory']}, "
        f"dataset cap {why['batch_size_cap_dataset']} = {why['max_dataset_covered']:g} of its voxels, minimum 2).",
    ]
    if family.residual:
        lines.append("# ResidualEncoderUNet: a stem (one conv to features_per_stage[0]) and BasicBlockD stages "
                     "(ResNet-D shortcuts: avg-pool + 1x1 conv + norm where the shape changes).")
    lines += network_lines(conf, family, dataset.channels, dataset.classes, name)
    return "\n".join(lines) + "\n"
