"""Calibrate a memory profile (archgen.planner.profiles) on one back end and device: measure the
peak memory of real Keras training steps and inferences on a fixed suite of networks, set it beside
the profile's estimate, and (``--fit``) search the profile's constants that fit the measurements.

    python benchmarks/calibrate_memory.py --backend jax --device cpu [--quick] [--only NAME] [--fit]

Each case runs in a fresh subprocess (Keras fixes its back end per process; peaks are per process).
What is measured:

- ``--device cpu``: peak RSS above a baseline. The child imports Keras on the back end and runs one
  tiny op (the runtime exists), reads VmRSS (the baseline), resets VmHWM (``/proc/self/clear_refs``),
  builds the model, compiles it (Keras's defaults: XLA on JAX, eager on PyTorch and on TensorFlow's
  CPU) and runs two training steps (``train_on_batch``) or two inferences (``predict_on_batch``).
  Measured = the highest VmHWM - baseline: the model, its step, compilation and allocator slack.
- ``--device gpu``: the device allocator's peak over the same (JAX ``peak_bytes_in_use``, PyTorch
  ``max_memory_allocated``, TensorFlow ``get_memory_info``), XLA's conv autotuning off (its scratch
  grows to the free memory and says nothing about the model).

The suite: 2D and 3D, plain and residual, batch and instance norm, valid and same padding, float32
and mixed bfloat16, Adam and SGD, training and inference, nnU-Net's networks of conf/peers among
them. CPU sizes are small, plus memory.py's three U-Nets at full size (a 2-core machine runs the suite in ~20 minutes a back end); the GPU suite
runs the same networks at their configured sizes.

Results go to ``benchmarks/results/memory_<backend>_<device>_<date>.json``: the machine, the
versions, each case's estimate, measurement and ratio, and (``--fit``) the constants found.
No thresholds: the target is estimate / measured within 1.00 +- 0.15.
"""

from __future__ import annotations

import datetime
import itertools
import json
import math
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from common import ROOT, parse_args, reset_peak_rss, rss_status

MiB = 2**20


def config_path(config: str):
    """A case's config: a name under conf/ (``peers/nnunet_plain_2d``), or a YAML file's path."""
    return Path(config) if config.endswith(".yaml") else ROOT / "conf" / f"{config}.yaml"


@dataclass(frozen=True)
class Case:
    name: str
    config: str  # under conf/, or a .yaml path
    overrides: tuple[str, ...]
    batch: int  # training batch
    infer_batch: int | None = None  # inference batch (None: no inference case)
    precision: str = "float32"  # Keras dtype policy
    optimizer: str = "adam"
    what: str = ""  # what the case stands for

    @property
    def dtype(self) -> str:
        return "bfloat16" if self.precision == "mixed_bfloat16" else "float32"


def _suite(sizes: dict[str, tuple[list[str], int, int]]) -> list[Case]:
    """The fixed suite, with each network's ``(overrides, training batch, inference batch)``."""
    def case(name, config, precision="float32", optimizer="adam", what="", base=None):
        overrides, batch, infer = sizes[base or name]
        return Case(name, config, tuple(overrides), batch, infer, precision, optimizer, what)

    return [
        case("seed_2d_valid", "unet", what="2D plain, valid, no norm, ReLU"),
        case("same_2d", "unet_same", what="2D plain, same"),
        case("bn_residual_2d", "unet_bn_residual", what="2D residual, batch norm, sigmoid head"),
        case("bn_residual_3d", "unet_bn_residual", what="3D residual, batch norm"),
        case("unet3d_valid", "unet3d", what="3D plain, valid, batch norm"),
        case("nnunet_2d", "peers/nnunet_plain_2d", what="nnU-Net 2D: instance norm, leaky ReLU, deep supervision"),
        case("nnunet_3d", "peers/nnunet_plain_3d", what="nnU-Net 3D: instance norm, 6 stages"),
        case("resenc_2d", "peers/nnunet_resenc_m_2d", what="nnU-Net ResEnc M 2D: residual, instance norm"),
        case("seed_2d_bf16", "unet", "mixed_bfloat16", what="as seed_2d_valid, mixed bfloat16",
             base="seed_2d_valid"),
        case("nnunet_2d_bf16", "peers/nnunet_plain_2d", "mixed_bfloat16", what="as nnunet_2d, mixed bfloat16",
             base="nnunet_2d"),
        case("nnunet_3d_bf16", "peers/nnunet_plain_3d", "mixed_bfloat16", what="as nnunet_3d, mixed bfloat16",
             base="nnunet_3d"),
        case("bn_residual_2d_sgd", "unet_bn_residual", optimizer="sgd", what="as bn_residual_2d, SGD",
             base="bn_residual_2d"),
    ]


CPU_SIZES = {
    "seed_2d_valid": (["input.shape=[252,252,1]", "encoder.filters=32"], 4, 16),
    "same_2d": (["input.shape=[192,192,1]", "encoder.filters=32"], 4, 16),
    "bn_residual_2d": (["input.shape=[128,128,3]"], 4, 16),
    "bn_residual_3d": (["input.shape=[48,48,48,1]", "encoder.filters=16"], 2, 8),
    "unet3d_valid": (["input.shape=[92,92,92,1]", "encoder.filters=[16,32,64,128]"], 1, 4),
    "nnunet_2d": (["input.shape=[192,192,1]"], 4, 16),
    "nnunet_3d": (["input.shape=[64,64,64,1]"], 1, 4),
    "resenc_2d": (["input.shape=[128,128,1]"], 4, 16),
}
GPU_SIZES = {
    "seed_2d_valid": ([], 8, 32),
    "same_2d": ([], 8, 32),
    "bn_residual_2d": ([], 16, 64),
    "bn_residual_3d": (["input.shape=[96,96,96,1]"], 2, 8),
    "unet3d_valid": ([], 2, 8),
    "nnunet_2d": (["input.shape=[512,512,1]"], 12, 48),
    "nnunet_3d": ([], 2, 8),
    "resenc_2d": (["input.shape=[512,512,1]"], 12, 48),
}
# On the CPU the suite's networks are small, where the runtime's constant weighs most; benchmarks/memory.py's
# three U-Nets at their full sizes hold the estimate to the activations that dominate real steps.
CPU_FULL_SIZE = [
    Case("seed_2d_572", "unet", ("input.shape=[572,572,1]",), 2, 2, what="the seed U-Net at 572x572 (memory.py)"),
    Case("bn_residual_2d_256", "unet_bn_residual", ("input.shape=[256,256,3]",), 4, 4,
         what="2D residual, batch norm, at 256x256 (memory.py)"),
    Case("unet3d_full", "unet3d", ("input.shape=[116,132,132,3]",), 1, 2,
         what="the 3D U-Net at 116x132x132 (memory.py)"),
]
SUITES = {"cpu": _suite(CPU_SIZES) + CPU_FULL_SIZE, "gpu": _suite(GPU_SIZES)}
QUICK = ("seed_2d_valid", "nnunet_2d")  # --quick: two networks, training only


# --- the child: one case in a fresh process -----------------------------------------------------------

def _device_peak(backend: str) -> int:
    if backend == "jax":
        import jax

        return jax.devices()[0].memory_stats()["peak_bytes_in_use"]
    if backend == "torch":
        import torch

        return torch.cuda.max_memory_allocated()
    import tensorflow as tf

    return tf.config.experimental.get_memory_info("GPU:0")["peak"]


def _labels(keras, plan, model, batch: int, rng):
    """One target per output, and the loss each head's training would use: sparse cross-entropy for
    several classes, binary cross-entropy for one channel (from logits where the head is linear)."""
    names = list(model.output_names)
    shapes = [tuple(t.shape[1:]) for t in model.outputs]
    by_layer = {layer.name: layer for layer in plan.layers}
    ys, losses = {}, {}
    for name, shape in zip(names, shapes):
        layer = by_layer.get(name)
        act = (layer.attrs.get("activation") or "linear") if layer is not None else "linear"
        logits = act == "linear"
        if shape[-1] == 1:
            ys[name] = (rng.random(size=(batch, *shape)) > 0.5).astype("float32")
            losses[name] = keras.losses.BinaryCrossentropy(from_logits=logits)
        else:
            ys[name] = rng.integers(0, shape[-1], size=(batch, *shape[:-1])).astype("int32")
            losses[name] = keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
    return ys, losses


def child(backend: str, device: str, case: dict, mode: str, steps: int = 2) -> dict:
    import numpy as np

    from archgen.backend import import_keras, select_backend

    select_backend(backend)
    keras = import_keras()
    from archgen.emit import emit_model
    from archgen.planner import make_plan
    from archgen.config import load_spec

    float(keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.ones((2,)) * 2.0)))  # start the runtime
    base = rss_status()["VmRSS"]
    reset_peak_rss()
    device_before = _device_peak(backend) if device == "gpu" else 0

    plan = make_plan(load_spec(config_path(case["config"]), list(case["overrides"])))
    batch = case["batch"] if mode == "train" else case["infer_batch"]
    model = emit_model(plan, case["precision"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, *plan.input_shape)).astype("float32")
    if mode == "train":
        ys, losses = _labels(keras, plan, model, batch, rng)
        optimizer = keras.optimizers.Adam(1e-4) if case["optimizer"] == "adam" else keras.optimizers.SGD(1e-3)
        model.compile(optimizer=optimizer, loss=losses)
        y = ys if len(ys) > 1 else next(iter(ys.values()))
        run = lambda: model.train_on_batch(x, y)  # noqa: E731
    else:
        run = lambda: model.predict_on_batch(x)  # noqa: E731
    peaks = []
    for _ in range(steps):
        run()
        peaks.append((rss_status()["VmHWM"] - base) if device == "cpu" else _device_peak(backend))
        if device == "cpu":
            reset_peak_rss()
    row = {"case": case["name"], "mode": mode, "batch": batch, "input": list(plan.input_shape), "baseline": base,
           "device_before": device_before, "peaks": peaks, "measured": max(peaks)}
    if backend == "jax":  # after the measured steps: XLA's own buffer assignment of the step
        row["xla"] = _xla_memory(model, x, y if mode == "train" else None)
    return row


def _xla_memory(model, x, y=None) -> dict:
    """XLA's memory analysis of the compiled training step (``y`` given) or inference (bytes): its
    temporaries are the activations after fusion and rematerialisation. Compiles the step once more."""
    import jax
    from keras.src.backend.jax.trainer import _distribute_data

    if y is None:
        state = model._get_jax_state(trainable_variables=True, non_trainable_variables=True,
                                     purge_model_variables=False)
        lowered = jax.jit(model.predict_step).lower(tuple(state[:2]), (x,))
    else:
        state = model._get_jax_state(trainable_variables=True, non_trainable_variables=True,
                                     optimizer_variables=True, metrics_variables=True, purge_model_variables=False)
        lowered = jax.jit(model.train_step, donate_argnums=0).lower(state, _distribute_data((x, y, None)))
    analysis = lowered.compile().memory_analysis()
    return {name: int(getattr(analysis, f"{name}_size_in_bytes")) for name in ("argument", "output", "alias", "temp")}


# --- the parent --------------------------------------------------------------------------------------

def _env(backend: str, device: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=backend)
    if device == "cpu":
        env.update(CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
    else:
        env.update(XLA_PYTHON_CLIENT_PREALLOCATE="false", TF_FORCE_GPU_ALLOW_GROWTH="true",
                   XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " --xla_gpu_autotune_level=0").strip())
    return env


def measure(backend: str, device: str, case: Case, mode: str, timeout: int = 900) -> dict:
    argv = [sys.executable, __file__, "--child", json.dumps([backend, device, asdict(case), mode])]
    proc = subprocess.run(argv, cwd=ROOT, env=_env(backend, device), capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{case.name} {mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def plan_of(case: Case):
    from archgen.planner import make_plan
    from archgen.config import load_spec

    return make_plan(load_spec(config_path(case.config), list(case.overrides)))


def estimate(case: Case, mode: str, profile, plan=None, batch: int | None = None) -> int:
    """The profile's estimate of ``case`` at ``batch`` (default: the case's batch for ``mode``)."""
    from archgen.planner.cost import plan_cost

    plan = plan or plan_of(case)
    batch = batch or (case.batch if mode == "train" else case.infer_batch)
    cost = plan_cost(plan, batch, case.dtype, case.optimizer, profile=profile)
    return cost.training_bytes if mode == "train" else cost.inference_peak_bytes


def machine(backend: str, device: str) -> dict:
    """Where the figures were measured: enough to redo them."""
    import importlib.metadata as md

    def version(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    mem = next((int(line.split()[1]) * 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal")), None)
    info = {"device": device, "backend": backend, "cpu": cpu, "cores": os.cpu_count(), "memory_bytes": mem,
            "os": platform.platform(), "python": platform.python_version(),
            "versions": {name: version(name) for name in ("keras", "numpy", "tensorflow", "jax", "jaxlib", "torch")}}
    if device == "gpu":
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            smi = None
        info["gpu"] = smi
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True).stdout.strip() or None
    except OSError:
        info["commit"] = None
    return info


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(*json.loads(sys.argv[2]))))
        return
    args = parse_args(__doc__, backend=dict(choices=("tensorflow", "jax", "torch"), default="jax"),
                      device=dict(choices=("cpu", "gpu"), default="cpu"),
                      only=dict(default=None, help="comma-separated case names"),
                      fit=dict(action="store_true", help="search the profile constants that fit the measurements"),
                      scales_only=dict(action="store_true", help="with --fit: keep what the profile's simulation keeps "
                                                                 "(conv copies, norms, outputs); solve only its scales "
                                                                 "and runtime bytes (a few measurements)"),
                      structure_from=dict(default=None, help="with --scales-only: take what the simulation keeps "
                                                             "from this profile, e.g. jax/cpu"),
                      out=dict(default=None, help="results file (default benchmarks/results/memory_<backend>_"
                                                  "<device>_<date>.json; '-' for none)"),
                      replay=dict(default=None, help="a results file: fit and print its measurements again, "
                                                     "measuring nothing"))
    from archgen.planner.profiles import memory_profile

    profile = memory_profile(args.backend, args.device)
    suite = SUITES[args.device]
    if args.replay:
        with open(args.replay) as f:
            recorded = json.load(f)
        rows = recorded["cases"]
        suite = [Case(**{**c, "overrides": tuple(c["overrides"])}) for c in recorded["suite"]]
        info = recorded["machine"]
    else:
        if args.device == "cpu" and not os.path.exists("/proc/self/clear_refs"):
            print("calibrate_memory.py reads peak RSS from Linux's /proc/self; not available here")
            return
        if args.quick:
            suite = [c for c in suite if c.name in QUICK]
        if args.only:
            wanted = set(args.only.split(","))
            suite = [c for c in suite if c.name in wanted]
        info = machine(args.backend, args.device)
        rows = []
    by_name = {c.name: c for c in suite}
    what = "peak RSS above the baseline" if args.device == "cpu" else "the device allocator's peak"
    print(f"Memory, estimate (profile {profile.key}: {profile.status}) vs measured ({what}), {args.backend} on "
          f"{args.device}")
    print(f"  {'case':<40} {'estimate':>12} {'measured':>12} {'ratio':>7}")
    plans = {c.name: plan_of(c) for c in suite}
    if not args.replay:
        for case in suite:
            modes = ("train",) if args.quick or case.infer_batch is None else ("train", "infer")
            for mode in modes:
                try:
                    rows.append(measure(args.backend, args.device, case, mode))
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    print(f"  {case.name} {mode}: failed: {str(exc).strip().splitlines()[-1]}", flush=True)
                    continue
                _print_row(rows[-1], by_name, profile, plans)
    else:
        for row in rows:
            _print_row(row, by_name, profile, plans)
    ratios = [estimate(by_name[r["case"]], r["mode"], profile, plans[r["case"]], r["batch"]) / r["measured"]
              for r in rows]
    print(f"  worst |estimate / measured - 1| = {max(abs(r - 1) for r in ratios):.3f} (target <= 0.15)")
    result = {"machine": info, "date": datetime.date.today().isoformat(), "profile": profile.as_dict(),
              "suite": [asdict(c) for c in suite], "cases": rows}
    for row, ratio in zip(rows, ratios):
        row["estimate"] = round(ratio * row["measured"])
        row["ratio"] = round(ratio, 4)
    if args.fit:
        base = profile
        if args.structure_from:
            from archgen.planner.profiles import profile_named

            other = profile_named(args.structure_from)
            base = replace(profile, **{name: getattr(other, name) for name in STRUCTURE})
        result["fit"] = fit(rows, by_name, plans, base, scales_only=args.scales_only)
    out = args.out or str(ROOT / "benchmarks" / "results" /
                          f"memory_{args.backend}_{args.device}_{result['date']}.json")
    # What the record promises: the target, or the worst (the fit's, or the profile's) where it was missed.
    worst = max(part["worst"] for part in result["fit"].values()) if args.fit else max(abs(r - 1) for r in ratios)
    result["bound"] = max(0.15, math.ceil(worst * 100) / 100)
    if args.replay and args.out != "-":  # the record, its estimates by the profile as it is now (and the fit) written back
        with open(args.replay) as f:
            recorded = json.load(f)
        recorded.update(profile=result["profile"], cases=rows, bound=result["bound"])
        if args.fit:
            recorded["fit"] = result["fit"]
        with open(args.replay, "w") as f:
            json.dump(recorded, f, indent=1)
        print(f"  updated {os.path.relpath(args.replay, ROOT)}")
    elif out != "-" and not args.quick and not args.replay:  # --replay --out -: print only
        with open(out, "w") as f:
            json.dump(result, f, indent=1)
        print(f"  wrote {os.path.relpath(out, ROOT)}")


def _print_row(row: dict, by_name: dict, profile, plans: dict) -> None:
    case = by_name[row["case"]]
    est = estimate(case, row["mode"], profile, plans[case.name], row["batch"])
    shape = "x".join(map(str, row["input"]))
    label = f"{case.name} {shape} {row['mode']} b{row['batch']}"
    print(f"  {label:<40} {est / MiB:>8.1f} MiB {row['measured'] / MiB:>8.1f} MiB {est / row['measured']:>7.3f}",
          flush=True)


# --- fitting the profile's constants --------------------------------------------------------------------

STRUCTURE = {  # what the simulation keeps: searched over; the scales and constants are solved for each choice
    "conv_copies": (0, 1, 2),
    "norm_kept": (0, 1),
    "norm_temporaries": (0, 1, 3),
    "keeps_outputs": (False, True),
    "fuses_activations": (False, True),
    "grad_from_input": (False, True),
    "valid_im2col": (0, 1),
    "max_pool_index_copies": (0, 1),
}


INFERENCE_STRUCTURE = {  # what a running layer holds at inference: searched over, as STRUCTURE
    "inference_input_copies": (0, 1, 2),
    "inference_same_output_copies": (0, 1, 2),
    "inference_norm_float32": (0, 1, 2, 3),
}


def fit(rows: list[dict], by_name: dict, plans: dict, profile, scales_only: bool = False) -> dict:
    """The profile constants that minimise the worst |estimate / measured - 1| over the suite.

    For each choice of what the simulation keeps (``STRUCTURE``) and of the optimizer's update
    buffers (0-2), the activation scale, the 16-bit scale and the runtime bytes are solved exactly
    (a linear programme: the worst relative error is linear in them), then rounded (scales to 0.05,
    bytes to MiB) and checked again with the profile itself. Inference: what a running layer holds
    (``INFERENCE_STRUCTURE``), its scale and runtime bytes, the same way. Printed and recorded; archgen.planner.profiles is set by hand.
    """
    from fractions import Fraction

    from archgen.planner.cost import OPTIMIZER_SLOTS, activation_bytes

    train = [r for r in rows if r["mode"] == "train"]
    infer = [r for r in rows if r["mode"] == "infer"]
    best = None
    structure = ([[getattr(profile, name)] for name in STRUCTURE] if scales_only else STRUCTURE.values())
    for picked in itertools.product(*structure):
        trial = replace(profile, **{name: v if isinstance(v, bool) else Fraction(v) for name, v in zip(STRUCTURE, picked)},
                        activation_scale=Fraction(1),
                        half_scale=Fraction(1), update_buffers=0, runtime_bytes=0)
        points = []
        for r in train:
            case, plan = by_name[r["case"]], plans[r["case"]]
            state = plan.total_params * 4 * (2 + OPTIMIZER_SLOTS[case.optimizer])
            points.append((state, plan.total_params * 4, activation_bytes(plan, r["batch"], case.dtype, trial),
                           case.dtype != "float32", r["measured"]))
        for update in (profile.update_buffers,) if scales_only else (0, 1, 2):
            solved = _minimax([(s + update * p, a, half, m) for s, p, a, half, m in points])
            if solved is None:
                continue
            scale, half_scale, runtime = _rounded(*solved[:3])
            if not any(point[3] for point in points):  # nothing 16-bit measured: the profile's own stays
                half_scale = profile.half_scale
            candidate = replace(trial, activation_scale=scale, half_scale=half_scale, update_buffers=update,
                                runtime_bytes=runtime)
            worst = max(abs(estimate(by_name[r["case"]], "train", candidate, plans[r["case"]], r["batch"])
                            / r["measured"] - 1)
                        for r in train)
            simpler = (*picked, update)
            if best is None or (round(worst, 3), simpler) < (round(best[0], 3), best[2]):
                best = (worst, candidate, simpler)
    worst, chosen, _ = best
    names = (*STRUCTURE, "activation_scale", "half_scale", "update_buffers", "runtime_bytes")
    result = {"train": {"worst": round(worst, 4), **{n: _plain(getattr(chosen, n)) for n in names}}}
    print(f"  fit, training: {result['train']}")
    if infer:
        choice = None
        structures = itertools.product(*INFERENCE_STRUCTURE.values()) if len(infer) > 2 else [(False, 0, 0, 0)]
        for structure in structures:
            trial = replace(chosen, **{name: v if isinstance(v, bool) else Fraction(v)
                                       for name, v in zip(INFERENCE_STRUCTURE, structure)},
                            inference_scale=Fraction(1), inference_runtime_bytes=0)
            points = []
            for r in infer:
                case, plan = by_name[r["case"]], plans[r["case"]]
                weights = plan.total_params * 4
                raw = estimate(case, "infer", trial, plan, r["batch"]) - weights
                points.append((weights, raw, False, r["measured"]))
            solved = _minimax(points)
            if solved is None:
                continue
            scale, _, runtime = _rounded(*solved[:3])
            candidate = replace(trial, inference_scale=scale, inference_runtime_bytes=runtime)
            worst = max(abs(estimate(by_name[r["case"]], "infer", candidate, plans[r["case"]], r["batch"])
                            / r["measured"] - 1)
                        for r in infer)
            if choice is None or (round(worst, 3), structure) < (round(choice[0], 3), choice[2]):
                choice = (worst, candidate, structure)
        names = (*INFERENCE_STRUCTURE, "inference_scale", "inference_runtime_bytes")
        result["infer"] = {"worst": round(choice[0], 4), **{n: _plain(getattr(choice[1], n)) for n in names}}
        print(f"  fit, inference: {result['infer']}")
    return result


def _plain(value):
    from fractions import Fraction

    return float(value) if isinstance(value, Fraction) else value


def _rounded(scale: float, half_scale_times_scale: float, runtime: float):
    """Scales to 0.05, bytes to MiB, as a profile holds them."""
    from fractions import Fraction

    a = Fraction(round(scale * 20), 20)
    h = Fraction(round(half_scale_times_scale / scale * 20), 20) if scale else Fraction(1)
    return a, h, max(0, round(runtime / MiB)) * MiB


FLOOR = 0.8  # the least activation scale a fit may take: no back end keeps much less than the simulation


def _minimax(points: list[tuple[float, float, bool, int]]):
    """(a, b, c) minimising max_i |(fixed_i + (b if half_i else a) * act_i + c) / measured_i - 1|, and that
    worst: a linear programme in (a, b, c, t). ``points``: (fixed, act, half, measured). Without a
    16-bit point, b = a; with fewer than 3 points, c = 0 (the scale alone: a correction, not a fit)."""
    from scipy.optimize import linprog

    any_half = any(half for _, _, half, _ in points)
    rows, bounds = [], []
    for fixed, act, half, measured in points:
        f, x, m = fixed / MiB, act / MiB, measured / MiB
        coef = [0.0 if half and any_half else x, x if half and any_half else 0.0, 1.0]
        rows.append(([*coef, -m], m - f))  # estimate - m <= t m
        rows.append(([-v for v in coef] + [-m], f - m))  # m - estimate <= t m
    if any_half:  # a 16-bit element holds 2 to 5 bytes (float32 copies where a back end computes in float32)
        rows += [([1.0, -1.0, 0.0, 0.0], 0.0), ([-2.5, 1.0, 0.0, 0.0], 0.0)]
    a_ub = [r[0] for r in rows]
    b_ub = [r[1] for r in rows]
    # The simulation's activations are a floor: no back end keeps much less than a simulated step's peak.
    bounds = [(FLOOR, 5.0), (FLOOR, 12.5) if any_half else (0.0, 0.0), (0.0, 8192.0 if len(points) > 2 else 0.0),
              (0.0, None)]
    done = linprog([0, 0, 0, 1], A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
    if not done.success:
        return None
    a, b, c, t = done.x
    return a, (b if any_half else a), c * MiB, t


if __name__ == "__main__":
    main()
