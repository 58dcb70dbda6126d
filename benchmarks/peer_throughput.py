"""Training speed and peak memory: nnU-Net's own network as nnU-Net trains it, against the same
network built by archgen and trained by Keras, side by side in one run.

The network: nnU-Net's PlainConvUNet (dynamic-network-architectures), 3D (6 stages, conf/peers/
nnunet_plain_3d.yaml) and 2D (conf/peers/nnunet_plain_2d.yaml), 3 classes, deep supervision.
Variants, each in a fresh process (Keras fixes its back end per process; peaks are per process):

- ``nnU-Net (PyTorch)``: the dynamic-network-architectures module, channels-last, bfloat16 autocast,
  nnU-Net's training step: SGD (lr 1e-2, momentum 0.99, Nesterov, weight decay 3e-5), Dice + CE over
  the deep-supervision outputs (nnU-Net's own ``DC_and_CE_loss`` and ``DeepSupervisionWrapper``),
  gradients clipped to norm 12;
- ``nnU-Net + torch.compile``: the same, the module compiled;
- ``archgen, Keras on JAX``: archgen's plan of the same network, Keras mixed bfloat16, XLA, the
  same optimizer (Keras's SGD, ``global_clipnorm=12``) and loss (``archgen.losses.DiceCE``, nnU-Net's
  deep-supervision weights);
- ``archgen, Keras on PyTorch``: the same on Keras's PyTorch back end (eager).

Each process builds its network, runs warm-up steps (compilation), then times training steps on one
random batch: steps/s. Peak memory: on a GPU the allocator's peak (PyTorch ``max_memory_allocated``,
JAX ``peak_bytes_in_use``); on CPU the peak RSS above the process's baseline (its framework imported,
one op run). Each figure is printed as a ratio to nnU-Net's (eager), and the Keras variants also with
archgen's memory estimate for their back end and device (``archgen.planner.profiles``).

    python benchmarks/peer_throughput.py [--quick] [--only 2d|3d] [--rounds N] [--json FILE]

Sizes: on a GPU the 3D network at 128^3, batch 2, and the 2D at 256^2, batch 12; on CPU 64^3 batch 2
and 128^2 batch 4; ``--quick`` on CPU the 2D network at 64^2 batch 2 only (``--only 3d``: 32x32x64 batch 1;
PyTorch's instance norm needs more than one voxel at the bottleneck), 2 timed steps, and no torch.compile
(inductor's compile takes minutes on a small machine; ``--compile`` forces it).
No thresholds.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

from common import ROOT, parse_args, reset_peak_rss, rss_status

MiB = 2**20
CLASSES = 3

# network -> (config under conf/peers, {device: (spatial size, batch)}), plus --quick's CPU size
NETWORKS = {
    "3d": ("nnunet_plain_3d", {"gpu": ([128] * 3, 2), "cpu": ([64] * 3, 2), "quick": ([32, 32, 64], 1)}),
    "2d": ("nnunet_plain_2d", {"gpu": ([256] * 2, 12), "cpu": ([128] * 2, 4), "quick": ([64] * 2, 2)}),
}
FEATURES = {"3d": [32, 64, 128, 256, 320, 320], "2d": [32, 64, 128, 256, 512, 512]}
VARIANTS = {
    "nnunet": "nnU-Net (PyTorch)",
    "nnunet_compiled": "nnU-Net + torch.compile",
    "keras_jax": "archgen, Keras on JAX",
    "keras_torch": "archgen, Keras on PyTorch",
}
LR, MOMENTUM, WEIGHT_DECAY, CLIP = 1e-2, 0.99, 3e-5, 12.0


# --- shared by the children ----------------------------------------------------------------------------

def _timed(step, warmup: int, steps: int, sync=lambda: None) -> float:
    for _ in range(warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return steps / (time.perf_counter() - start)


def _deep_supervision_shapes(size: list[int], n: int = 5) -> list[list[int]]:
    """The outputs' spatial sizes, full resolution first (strides of 2 per stage)."""
    return [[s // 2**i for s in size] for i in range(n)]


def _batch_dice(network: str) -> bool:
    return network == "2d"  # nnU-Net's plans: batch Dice for 2d, per-sample Dice for 3d_fullres


# --- nnU-Net's side -------------------------------------------------------------------------------------

def nnunet_child(network: str, size: list[int], batch: int, warmup: int, steps: int, compiled: bool) -> dict:
    import numpy as np
    import torch
    from dynamic_network_architectures.architectures.unet import PlainConvUNet
    from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
    from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    (torch.ones(2, device=device) * 2).sum().item()  # start the runtime
    base = rss_status()["VmRSS"]
    reset_peak_rss()
    ndim = len(size)
    net = PlainConvUNet(
        input_channels=1, n_stages=6, features_per_stage=FEATURES[network],
        conv_op={2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[ndim], kernel_sizes=3, strides=[1, 2, 2, 2, 2, 2],
        n_conv_per_stage=2, num_classes=CLASSES, n_conv_per_stage_decoder=2, conv_bias=True,
        norm_op={2: torch.nn.InstanceNorm2d, 3: torch.nn.InstanceNorm3d}[ndim],
        norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=torch.nn.LeakyReLU,
        nonlin_kwargs={"negative_slope": 0.01, "inplace": True}, deep_supervision=True)
    layout = torch.channels_last if ndim == 2 else torch.channels_last_3d
    net = net.to(device).to(memory_format=layout)
    optimizer = torch.optim.SGD(net.parameters(), LR, weight_decay=WEIGHT_DECAY, momentum=MOMENTUM, nesterov=True)
    loss = DC_and_CE_loss({"batch_dice": _batch_dice(network), "smooth": 1e-5, "do_bg": False, "ddp": False}, {},
                          weight_ce=1, weight_dice=1, ignore_label=None, dice_class=MemoryEfficientSoftDiceLoss)
    weights = np.array([1 / 2**i for i in range(5)])
    weights[-1] = 0
    loss = DeepSupervisionWrapper(loss, weights / weights.sum())
    model = torch.compile(net) if compiled else net
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(batch, 1, *size)).astype("float32")).to(device)
    x = x.contiguous(memory_format=layout)
    targets = [torch.from_numpy(rng.integers(0, CLASSES, size=(batch, 1, *s)).astype("float32")).to(device)
               for s in _deep_supervision_shapes(size)]

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            output = model(x)
            value = loss(output, targets)
        value.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
        optimizer.step()
        return value.detach().cpu().item()

    if gpu:
        torch.cuda.reset_peak_memory_stats()
    rate = _timed(step, warmup, steps, torch.cuda.synchronize if gpu else (lambda: None))
    peak = torch.cuda.max_memory_allocated() if gpu else rss_status()["VmHWM"] - base
    return {"steps_per_s": rate, "peak_bytes": peak, "device": torch.cuda.get_device_name(0) if gpu else "cpu",
            "torch": torch.__version__}


# --- archgen's side -------------------------------------------------------------------------------------

def keras_child(network: str, size: list[int], batch: int, warmup: int, steps: int, backend: str) -> dict:
    import numpy as np

    from archgen.backend import import_keras, select_backend

    select_backend(backend)
    keras = import_keras()
    from archgen.emit import emit_model
    from archgen.losses import DiceCE, deep_supervision_weights
    from archgen.planner import make_plan
    from archgen.planner.cost import plan_cost
    from archgen.planner.profiles import memory_profile
    from archgen.config import load_spec

    gpu = _keras_gpu(backend)
    float(keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.ones((2,)) * 2.0)))  # start the runtime
    base = rss_status()["VmRSS"]
    reset_peak_rss()
    config, _ = NETWORKS[network]
    plan = make_plan(load_spec(ROOT / "conf" / "peers" / f"{config}.yaml", [f"input.shape=[{','.join(map(str, size))},1]"]))
    model = emit_model(plan, "mixed_bfloat16")
    names = list(model.output_names)
    weights = deep_supervision_weights(len(names))
    dice = {"include_background": False, "batch": _batch_dice(network), "smooth": 1e-5}
    model.compile(optimizer=keras.optimizers.SGD(LR, momentum=MOMENTUM, nesterov=True, weight_decay=WEIGHT_DECAY,
                                                 global_clipnorm=CLIP),
                  loss={n: DiceCE(**dice) for n in names}, loss_weights=dict(zip(names, weights)))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, *size, 1)).astype("float32")
    shapes = {n: tuple(t.shape[1:-1]) for n, t in zip(names, model.outputs)}
    y = {n: rng.integers(0, CLASSES, size=(batch, *shapes[n])).astype("int32") for n in names}
    if gpu:
        _reset_device_peak(backend)
    rate = _timed(lambda: model.train_on_batch(x, y), warmup, steps)
    peak = _device_peak(backend) if gpu else rss_status()["VmHWM"] - base
    profile = memory_profile(backend, "gpu" if gpu else "cpu")
    estimate = plan_cost(plan, batch, "bfloat16", "momentum", profile=profile).training_bytes
    return {"steps_per_s": rate, "peak_bytes": peak, "device": gpu or "cpu", "estimate_bytes": estimate,
            "profile": f"{profile.key} ({profile.status})", "keras": keras.__version__}


def _keras_gpu(backend: str) -> str | None:
    if backend == "jax":
        import jax

        devices = [d for d in jax.devices() if d.platform == "gpu"]
        return devices[0].device_kind if devices else None
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def _reset_device_peak(backend: str) -> None:
    if backend == "torch":
        import torch

        torch.cuda.reset_peak_memory_stats()


def _device_peak(backend: str) -> int:
    if backend == "jax":
        import jax

        return jax.devices()[0].memory_stats()["peak_bytes_in_use"]
    import torch

    return torch.cuda.max_memory_allocated()


# --- the parent -----------------------------------------------------------------------------------------

def child(variant: str, network: str, size: list[int], batch: int, warmup: int, steps: int) -> dict:
    if variant.startswith("nnunet"):
        return nnunet_child(network, size, batch, warmup, steps, compiled=variant == "nnunet_compiled")
    return keras_child(network, size, batch, warmup, steps, variant.removeprefix("keras_"))


def run_variant(variant: str, network: str, size: list[int], batch: int, warmup: int, steps: int,
                gpu: bool) -> dict | str:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if variant.startswith("keras_"):
        env["KERAS_BACKEND"] = variant.removeprefix("keras_")
    if gpu:
        env.update(XLA_PYTHON_CLIENT_PREALLOCATE="false",
                   XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " --xla_gpu_autotune_level=0").strip())
    else:
        env.update(CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
    argv = [sys.executable, __file__, "--child", json.dumps([variant, network, size, batch, warmup, steps])]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return (lines[-1] if lines else f"exit {done.returncode}")[:200]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _has_gpu() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                           capture_output=True, text=True)
    return probe.stdout.strip() == "True"


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(*json.loads(sys.argv[2]))))
        return
    args = parse_args(__doc__, only=dict(choices=tuple(NETWORKS), default=None, help="one network"),
                      rounds=dict(type=int, default=None, help="runs of every variant, alternating (default 2; "
                                                               "--quick 1)"),
                      compile=dict(action="store_true", help="torch.compile on CPU with --quick too"),
                      json=dict(default=None, help="also write the results to this file"))
    missing = [name for name in ("torch", "dynamic_network_architectures", "nnunetv2")
               if importlib.util.find_spec(name) is None]
    if missing:
        print(f"peer_throughput needs {', '.join(missing)}: pip install -e '.[peers]' (see .ci/run)")
        return
    gpu = _has_gpu()
    device = "gpu" if gpu else "cpu"
    rounds = args.rounds or (1 if args.quick else 2)
    warmup, steps = (1, 2) if args.quick else (3, 20) if gpu else (2, 5)
    variants = [v for v in VARIANTS if (gpu or not args.quick or args.compile or v != "nnunet_compiled")
                and (v != "keras_jax" or importlib.util.find_spec("jax") is not None)]
    results = {"device": device, "rounds": rounds, "warmup": warmup, "steps": steps, "networks": {}}
    networks = [args.only] if args.only else ["2d"] if args.quick and not gpu else list(NETWORKS)
    for network in networks:
        config, sizes = NETWORKS[network]
        size, batch = sizes["quick" if args.quick and not gpu else device]
        runs: dict[str, list[dict]] = {v: [] for v in variants}
        errors: dict[str, str] = {}
        for r in range(rounds):
            for variant in variants if r % 2 == 0 else variants[::-1]:
                if variant in errors:
                    continue
                out = run_variant(variant, network, size, batch, warmup, steps, gpu)
                if isinstance(out, str):
                    errors[variant] = out
                else:
                    runs[variant].append(out)
        results["networks"][network] = _report(network, config, size, batch, runs, errors, device, rounds, steps)
    if "nnunet_compiled" not in variants and not gpu:
        print("\n(torch.compile left out: --quick on CPU; --compile runs it)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


def _report(network: str, config: str, size: list[int], batch: int, runs: dict, errors: dict, device: str,
            rounds: int, steps: int) -> dict:
    shape = "x".join(map(str, size))
    first = next((r[0] for r in runs.values() if r), {})
    where = first.get("device", device)
    print(f"\n{config} ({network}), {shape} x1, batch {batch}, {CLASSES} classes, deep supervision; {where}; "
          f"{steps} timed steps x {rounds} round(s), median")
    memory = "allocator peak" if device == "gpu" else "peak RSS"
    print(f"  {'variant':<28} {'steps/s':>9} {'ratio':>7} {memory:>15} {'ratio':>7}   estimate (profile)")
    base = runs.get("nnunet") or []
    base_rate = statistics.median(r["steps_per_s"] for r in base) if base else None
    base_peak = statistics.median(r["peak_bytes"] for r in base) if base else None
    rows = {}
    for variant, label in VARIANTS.items():
        if variant in errors:
            print(f"  {label:<28} failed: {errors[variant]}")
            rows[variant] = {"error": errors[variant]}
            continue
        if not runs.get(variant):
            continue
        rate = statistics.median(r["steps_per_s"] for r in runs[variant])
        peak = statistics.median(r["peak_bytes"] for r in runs[variant])
        rate_ratio = rate / base_rate if base_rate else None
        peak_ratio = peak / base_peak if base_peak else None
        est = runs[variant][0].get("estimate_bytes")
        note = (f"{est / MiB:8.0f} MiB = {est / peak:.2f}x measured ({runs[variant][0]['profile']})"
                if est else "")
        print(f"  {label:<28} {rate:>9.3f} {_fmt(rate_ratio):>7} {peak / MiB:>11.0f} MiB {_fmt(peak_ratio):>7}   {note}")
        rows[variant] = {"steps_per_s": rate, "peak_bytes": peak, "steps_ratio": rate_ratio, "peak_ratio": peak_ratio,
                         "estimate_bytes": est, "runs": runs[variant]}
    return {"config": config, "size": size, "batch": batch, "variants": rows}


def _fmt(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.3f}"


if __name__ == "__main__":
    main()
