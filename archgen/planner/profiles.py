"""Memory profiles: what each back end keeps, on each device, as the constants of the memory model.

The memory model (``archgen.planner.cost``) simulates a training step over the plan: what each layer
keeps for its backward pass, the gradients in flight, the temporaries of the layer being
differentiated. How much a back end really holds differs: TensorFlow's oneDNN convs on CPU copy
their input and output, XLA (JAX; TensorFlow on a GPU) fuses a norm into its neighbours and
rematerialises, eager PyTorch keeps autograd's saved tensors, and a process or an allocator holds
more than its live tensors. A ``MemoryProfile`` is one back end on one device: the constants the
simulation uses, each measured, and where they were measured.

``memory_profile(backend, device)`` answers every pair; a pair measured nowhere (TensorFlow on a GPU)
borrows the constants of the nearest one and says so in its ``status`` and ``measured`` (and every
report that uses it prints them). Pure Python: no back end is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from math import prod

from archgen.errors import ArchgenError
from archgen.kinds.memory import (
    CONV_COPIES,
    GRAD_FROM_OUTPUT,
    NORM_KEPT,
    NORM_TEMPORARIES,
)

BACKENDS = ("tensorflow", "jax", "torch")
DEVICES = ("cpu", "gpu")

CALIBRATED, PROVISIONAL, NOT_CALIBRATED = "calibrated", "provisional", "not calibrated"


@dataclass(frozen=True)
class MemoryProfile:
    """The constants of the memory model for one back end on one device.

    Training estimate = float32 parameter-sized buffers (weights, gradients, the optimizer's slots,
    ``update_buffers`` more while the update runs) + the simulated step's peak activations x
    ``activation_scale`` (x ``half_scale`` for 16-bit activations) + ``runtime_bytes``.
    Inference peak = weights + the live outputs in build order, with what a layer holds while it runs
    (``inference_extra``), x ``inference_scale`` + ``inference_runtime_bytes``.
    """

    backend: str
    device: str
    status: str  # calibrated | provisional | not calibrated
    conv_copies: Fraction = Fraction(CONV_COPIES)
    """A conv's backward: copies of its input and output it holds (halves of the pair; TensorFlow on
    CPU: 2, oneDNN's reorders)."""
    norm_kept: Fraction = Fraction(NORM_KEPT)
    """A norm keeps this many normalised copies of its output for backprop."""
    norm_temporaries: Fraction = Fraction(NORM_TEMPORARIES)
    """A norm's backward holds this many temporaries of its output's size."""
    fuses_activations: bool = False
    """A standalone activation keeps nothing for its backward pass: XLA fuses it with its neighbours and
    recomputes it from the tensors they keep (TensorFlow's graph keeps its output or input)."""
    grad_from_input: bool = False
    """Every activation's backward reads its input, relu too (JAX differentiates relu by the sign of its
    input; TensorFlow's ReluGrad reads the output): a conv with a fused relu keeps its pre-activation."""
    valid_im2col: Fraction = Fraction(0)
    """Scratch of a valid-padded 1D/2D conv while it runs, forward and backward, per kernel tap x input
    channel x output position: XLA on CPU unrolls such a conv's input into a matrix (im2col; measured: 1;
    its 3D and same-padded convs do not)."""
    max_pool_index_copies: Fraction = Fraction(0)
    """A max pool's backward: int32 index tensors of its input's size, per axis of the batch tensor (XLA on
    CPU expands select-and-scatter into a scatter with an iota per axis, all alive at once: measured 1)."""
    activation_scale: Fraction = Fraction(1)
    """Measured activations over simulated ones: fusion and rematerialisation (XLA), the allocator."""
    half_scale: Fraction = Fraction(1)
    """Bytes of a 16-bit activation element, over 2: more where a back end computes in float32 inside
    (casts, float32 accumulators) under mixed precision."""
    update_buffers: int = 0
    """Parameter-sized float32 temporaries of the optimizer's update, beyond its slots."""
    keeps_outputs: bool = False
    """Every layer's output lives until the forward pass returns (Keras's functional model run eagerly,
    as on PyTorch, holds them all), not only until its last reader has run."""
    runtime_bytes: int = 200 * 2**20
    """A training process's memory beyond its tensors (runtime, traced graphs, compilation, arenas)."""
    inference_input_copies: Fraction = Fraction(0)
    """While a conv of any rank and padding runs (inference): copies of its input (TensorFlow on CPU: 1,
    oneDNN reorders it into its blocked layout; PyTorch on CPU: 1)."""
    inference_same_output_copies: Fraction = Fraction(0)
    """While a same-padded conv runs (inference): copies of its output (TensorFlow on CPU: 1, measured
    on chains of convs: a valid-padded conv makes none; PyTorch on CPU: 2)."""
    inference_norm_float32: Fraction = Fraction(0)
    """Under a 16-bit policy Keras computes a norm in float32: float32 copies of its output it holds while
    it runs (inference; TensorFlow on CPU: measured 2 on a chain, fitted 3 on the suite)."""
    inference_scale: Fraction = Fraction(1)
    inference_runtime_bytes: int = 0
    measured: str = ""
    """Where, when and on what the constants were measured, or why they were not."""
    results: tuple[str, ...] = field(default=())
    """The calibration records (``benchmarks/results/``) the constants come from."""

    @property
    def key(self) -> str:
        return f"{self.backend}/{self.device}"

    @property
    def runtime_label(self) -> str:
        """What ``runtime_bytes`` stands for, in the summary's words."""
        name = {"tensorflow": "TF", "jax": "JAX", "torch": "PyTorch"}[self.backend]
        return f"{name} runtime" if self.device == "cpu" else f"{name} on the GPU"

    def workspace(self, kind, layer, elements: dict[str, int]) -> int:
        """``kind.workspace`` with this profile's conv copies and norm temporaries (the kind's own
        figure is TensorFlow's on CPU)."""
        base = kind.workspace(layer, elements)
        if _is_conv(kind) and self.conv_copies != CONV_COPIES:
            return int(base * self.conv_copies / CONV_COPIES)
        if _is_norm(kind) and self.norm_temporaries != NORM_TEMPORARIES:
            return int(base * self.norm_temporaries / NORM_TEMPORARIES)
        if layer.kind == "maxpool" and self.max_pool_index_copies:
            rank = len(layer.shape) + 1  # the batch axis too
            return base + int(self.max_pool_index_copies * rank * elements[layer.inputs[0]])
        return base

    def scratch(self, layer, shapes: dict[str, tuple]) -> int:
        """Elements a conv allocates while it runs beyond its input, output and ``workspace``
        (``valid_im2col``); 0 for other layers."""
        if (not self.valid_im2col or layer.kind != "conv" or layer.attrs.get("padding") != "valid"
                or len(layer.shape) > 3):  # measured: a 3D conv makes no such matrix
            return 0
        kernel = layer.attrs["kernel"]
        taps = prod(kernel) if isinstance(kernel, (tuple, list)) else kernel ** (len(layer.shape) - 1)
        if taps == 1:
            return 0
        return int(self.valid_im2col * taps * shapes[layer.inputs[0]][-1] * prod(layer.shape[:-1]))

    def inference_extra(self, layer, elements: dict[str, int], half: bool) -> int:
        """Elements ``layer`` holds while it runs at inference beyond its output and ``scratch``
        (``half``: 16-bit activations, so a float32 copy is two elements)."""
        if layer.kind == "conv":
            extra = self.inference_input_copies * sum(elements[m] for m in layer.inputs)
            if layer.attrs.get("padding") == "same":
                extra += self.inference_same_output_copies * elements[layer.name]
            return int(extra)
        if layer.kind == "norm" and half:
            return int(2 * self.inference_norm_float32 * elements[layer.name])
        return 0

    def saved(self, kind, layer, elements: dict[str, int]) -> tuple[list[str], int]:
        """``kind.saved`` with this profile's norm copies."""
        if self.fuses_activations and _is_activation(kind):
            return [], 0
        names, extra = kind.saved(layer, elements)
        act = layer.attrs.get("activation") or "linear"
        if self.grad_from_input and act in GRAD_FROM_OUTPUT:
            if _is_activation(kind):
                return list(layer.inputs), extra
            if _is_conv(kind):
                return names, extra + elements[layer.name]
        if _is_norm(kind) and self.norm_kept != NORM_KEPT:
            extra = int(extra * self.norm_kept / NORM_KEPT) if NORM_KEPT else extra
        return names, extra

    def as_dict(self) -> dict:
        """JSON-ready: fractions as floats."""
        out = {"name": self.key}
        for name, value in self.__dict__.items():
            out[name] = float(value) if isinstance(value, Fraction) else list(value) if isinstance(value, tuple) else value
        return out

    def note(self) -> str:
        """One line for reports: the profile, its status, where it was measured."""
        return f"memory profile {self.key}: {self.status}; {self.measured}"


def _is_conv(kind) -> bool:
    from archgen.kinds.conv import conv_workspace

    return kind.workspace is conv_workspace


def _is_activation(kind) -> bool:
    from archgen.kinds.pointwise import activation_saved

    return kind.saved is activation_saved


def _is_norm(kind) -> bool:
    from archgen.kinds.pointwise import norm_saved

    return kind.saved is norm_saved


TENSORFLOW_CPU = MemoryProfile(
    "tensorflow", "cpu", CALIBRATED,
    conv_copies=Fraction(0), norm_kept=Fraction(1), norm_temporaries=Fraction(3), activation_scale=Fraction(9, 10),
    half_scale=Fraction(23, 20), update_buffers=2, runtime_bytes=109 * 2**20,
    inference_input_copies=Fraction(1), inference_same_output_copies=Fraction(1),
    inference_norm_float32=Fraction(3), inference_scale=Fraction(19, 20), inference_runtime_bytes=41 * 2**20,
    measured="calibrated against TensorFlow 2.21 on CPU (peak RSS of Keras 3.15.1 training steps and inferences in "
             "graph mode, oneDNN on; 2-core x86-64 (AMD EPYC), 2026-12-05) on the 15 networks of "
             "benchmarks/calibrate_memory.py (its 12 and memory.py's three U-Nets at full size): training "
             "0.87-1.14 of the measured peak; inference 0.81-1.19 (the 15 at their batch and 11 at half of it: "
             "TensorFlow's peak is not linear in the batch)",
    results=("benchmarks/results/memory_tensorflow_cpu_2026-12-05.json",),
)

# Calibrated here by benchmarks/calibrate_memory.py --fit on its 15 CPU networks (see the results files for each
# case's estimate and measurement): the constants are the fit's.
JAX_CPU = MemoryProfile(
    "jax", "cpu", CALIBRATED,
    conv_copies=Fraction(0), norm_kept=Fraction(0), norm_temporaries=Fraction(1), fuses_activations=True,
    valid_im2col=Fraction(1), max_pool_index_copies=Fraction(1),
    activation_scale=Fraction(11, 10), half_scale=Fraction(43, 20), update_buffers=2, runtime_bytes=455 * 2**20,
    inference_same_output_copies=Fraction(2), inference_scale=Fraction(4, 5),
    inference_runtime_bytes=151 * 2**20,
    measured="calibrated against JAX 0.10.2 (XLA) on CPU (peak RSS, 2-core x86-64 (AMD EPYC), Keras 3.15.1, "
             "2026-12-05) on the 15 networks of benchmarks/calibrate_memory.py (its 12 and memory.py's three U-Nets "
             "at full size): training 0.88-1.12 of the measured peak (a max pool's backward counted as XLA's "
             "buffer assignment shows it: an int32 index tensor per axis of its input), inference 0.63-1.37: "
             "peak RSS sits up to 0.9 GiB above XLA's own buffers (memory_analysis) for the seed U-Net's "
             "valid-padded 2D convs: XLA hands them to YNNPACK, whose scratch benchmarks/conv_scratch.py "
             "measures on single convs at 0.8-1.3 of an im2col matrix for small images but 0.1-0.25 at "
             "256-570 pixels a side, and none at 16->16 channels or fewer; a same-padded conv has none. The networks "
             "without a valid 2D conv sit 0.18-0.46 GiB above XLA's buffers, the runtime's among it. "
             "Measured again 2026-12-06 with these constants, "
             "nothing fitted: training 0.87-1.10, inference 0.61-1.38",
    results=("benchmarks/results/memory_jax_cpu_2026-12-05.json",
             "benchmarks/results/memory_jax_cpu_2026-12-06.json"),
)

TORCH_CPU = MemoryProfile(
    "torch", "cpu", CALIBRATED,
    conv_copies=Fraction(0), norm_kept=Fraction(0), norm_temporaries=Fraction(0), keeps_outputs=True,
    activation_scale=Fraction(2), half_scale=Fraction(6, 5), update_buffers=0, runtime_bytes=209 * 2**20,
    inference_input_copies=Fraction(1), inference_same_output_copies=Fraction(2), inference_norm_float32=Fraction(3),
    inference_scale=Fraction(1), inference_runtime_bytes=154 * 2**20,
    measured="calibrated against PyTorch 2.13 (eager) on CPU (peak RSS, 2-core x86-64 (AMD EPYC), Keras 3.15.1, "
             "2026-12-05) on the 15 networks of benchmarks/calibrate_memory.py (its 12 and memory.py's three U-Nets "
             "at full size): training 0.84-1.15 of the measured peak, inference 0.92-1.08 (one case's training peak "
             "measured 1,711-1,982 MiB over four runs: eager PyTorch's RSS varies by about +-8% run to run)",
    results=("benchmarks/results/memory_torch_cpu_2026-12-05.json",),
)

# No GPU was at hand to calibrate these on the suite. Provisional, fitted to the few peaks one H200 gave
# (benchmarks/gpu_throughput.py, recorded in benchmarks/results/h200.txt): JAX's by the same search as the
# CPU profiles (5 training peaks: over-fitted, surely); PyTorch's keeps what torch/cpu's simulation keeps and
# scales it to the 2 peaks of one network (refitted whenever torch/cpu's simulation changes:
# calibrate_memory.py --replay <its record> --fit --scales-only).
_H200 = ("one NVIDIA H200 (driver 580.159.04), Keras 3.15.1, float32, Keras SGD without momentum, XLA's conv "
         "autotuning off, 2026-11-26")

JAX_GPU = MemoryProfile(
    "jax", "gpu", PROVISIONAL,
    conv_copies=Fraction(0), norm_kept=Fraction(0), norm_temporaries=Fraction(1), fuses_activations=True,
    grad_from_input=True, activation_scale=Fraction(4, 5), half_scale=Fraction(1), update_buffers=0,
    runtime_bytes=131 * 2**20, inference_scale=Fraction(5, 4), inference_runtime_bytes=0,
    measured=f"provisional, not calibrated: JAX 0.11.2 (XLA) on {_H200}: fitted to 5 training peaks (seed U-Net "
             f"at batch 1 and 8, same-padded U-Net, 3D U-Net, nnU-Net 2D: 0.90-1.10) and scaled to 1 inference "
             f"peak; bfloat16 (taken as 2 bytes), Adam, 3D instance norm and residual networks not measured on a GPU",
    results=("benchmarks/results/memory_jax_gpu_2026-11-26.json",),
)

TORCH_GPU = replace(
    TORCH_CPU, device="gpu", status=PROVISIONAL, activation_scale=Fraction(7, 4), runtime_bytes=0,
    measured=f"provisional, not calibrated: PyTorch 2.11 (CUDA 13) on {_H200}: the simulation of torch/cpu, its "
             f"activation scale and bytes fitted to 2 training peaks of the seed U-Net (batch 1 and 8); "
             f"inference, 16-bit scale, norms, 3D and residual networks not measured on a GPU (their "
             f"constants are torch/cpu's)",
    results=("benchmarks/results/memory_torch_gpu_2026-11-26.json",),
)

# Keras compiles TensorFlow's training step with XLA where a GPU is present (jit_compile="auto"), as it
# compiles JAX's: the same fusion and rematerialisation, so JAX's GPU constants, until measured.
TENSORFLOW_GPU = replace(
    JAX_GPU, backend="tensorflow", status=NOT_CALIBRATED, results=(),
    measured="not measured on TensorFlow on a GPU: the constants of jax/gpu (provisional), since Keras compiles "
             "TensorFlow's training step with XLA where a GPU is present (jit_compile='auto'), as it does JAX's",
)

PROFILES: dict[tuple[str, str], MemoryProfile] = {
    ("tensorflow", "cpu"): TENSORFLOW_CPU,
    ("jax", "cpu"): JAX_CPU,
    ("torch", "cpu"): TORCH_CPU,
    ("tensorflow", "gpu"): TENSORFLOW_GPU,
    ("jax", "gpu"): JAX_GPU,
    ("torch", "gpu"): TORCH_GPU,
}

DEFAULT = TENSORFLOW_CPU


def profile_named(key: str) -> MemoryProfile:
    """``"jax/cpu"`` -> that profile (``Cost.profile`` holds the key)."""
    backend, _, device = key.partition("/")
    return memory_profile(backend, device)


def memory_profile(backend: str | None = None, device: str = "cpu") -> MemoryProfile:
    """The profile of ``backend`` (default: ``$KERAS_BACKEND``, else tensorflow, as training picks
    it) on ``device``; ``ArchgenError`` naming ``--backend`` or ``--device`` for an unknown one."""
    import os

    from archgen.errors import did_you_mean

    backend = backend or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if backend not in BACKENDS:
        raise ArchgenError(f"unknown back end; expected one of {', '.join(BACKENDS)}{did_you_mean(backend, BACKENDS)}",
                           path="--backend", value=backend)
    if device not in DEVICES:
        raise ArchgenError(f"unknown device; expected one of {', '.join(DEVICES)}{did_you_mean(device, DEVICES)}",
                           path="--device", value=device)
    return PROFILES[backend, device]
