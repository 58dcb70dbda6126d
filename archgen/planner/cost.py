"""What a planned network costs: FLOPs, memory for a batch and dtype, receptive field.

Conventions (also printed by ``summary``):

- FLOPs: 2 x multiply-adds of the convolutions (and transposed convolutions) for the batch;
  bias adds, activations, norms and pools are left out (well under 1% of a U-Net).
- Weights are float32 variables whatever the compute dtype (Keras mixed precision keeps
  float32 variables); activations are stored in the compute dtype.
- Activations kept for backprop: every layer's output (what TensorFlow's gradient tape holds
  on to for a conv net), times the batch.
- Training estimate = weights + gradients (float32) + optimizer state (Adam: 2 float32 moments
  per parameter) + activations kept for backprop. Framework workspace (cuDNN scratch, allocator
  slack) is not modelled.
- Inference peak: the largest set of layer outputs alive at once when the layers run in build
  order (a tensor lives until its last consumer has run), times the batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from math import floor, prod

from archgen.errors import ArchgenError
from archgen.planner.ir import LayerPlan, Plan

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
WEIGHT_BYTES = 4
OPTIMIZER_SLOTS = {"adam": 2, "sgd": 0, "momentum": 1}


@dataclass(frozen=True)
class Cost:
    batch: int
    dtype: str
    optimizer: str
    params: int
    flops: int | None
    weight_bytes: int
    activation_bytes: int | None
    inference_peak_bytes: int | None
    training_bytes: int | None
    receptive_field: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def layer_elements(plan: Plan) -> dict[str, int] | None:
    """Elements of each layer's output for one sample; None when a size is left open."""
    out = {}
    for layer in plan.layers:
        if any(s is None for s in layer.shape):
            return None
        out[layer.name] = prod(layer.shape)
    return out


def inference_peak_elements(plan: Plan, elements: dict[str, int]) -> int:
    last_use = {}
    for i, layer in enumerate(plan.layers):
        for name in layer.inputs:
            last_use[name] = i
    outputs = set(plan.outputs.values())
    live, peak = 0, 0
    for i, layer in enumerate(plan.layers):
        live += elements[layer.name]
        peak = max(peak, live)
        for name in set(layer.inputs):
            if last_use[name] == i and name not in outputs:
                live -= elements[name]
    return peak


def _first_axis(attrs: dict) -> dict:
    """Per-axis attributes (kernel, stride, factor as tuples) on the first spatial axis."""
    return {k: (v[0] if k in ("kernel", "stride", "factor") and isinstance(v, tuple) else v) for k, v in attrs.items()}


def _input_span(layer: LayerPlan, lo: int, hi: int, in_size: int | None) -> tuple[int, int]:
    """The input positions (first axis) that output positions ``lo..hi`` of ``layer`` read."""
    a, kind = _first_axis(layer.attrs), layer.kind
    if kind == "conv":
        s, reach = a["stride"], (a["kernel"] - 1) * a["dilation"] + 1
        before = 0 if a["padding"] == "valid" else max(reach - s, 0) // 2  # TensorFlow's "same" split
        return lo * s - before, hi * s - before + reach - 1
    if kind in ("maxpool", "avgpool"):
        f = a["factor"]
        return lo * f, hi * f + f - 1
    if kind == "conv_transpose":
        # The gradient of a "same" conv: output u gets input i when i*s - before <= u < i*s - before + k.
        k, s = a["kernel"], a["stride"]
        before = max(k - s, 0) // 2
        return -((k - 1 - lo - before) // s), (hi + before) // s
    if kind == "upsample":
        f = a["factor"]
        if a["interpolation"] == "bilinear":  # half-pixel centres: two neighbours
            return floor((lo + 0.5) / f - 0.5), floor((hi + 0.5) / f - 0.5) + 1
        return lo // f, hi // f
    if kind in ("crop", "pad"):
        shift = a["cropping" if kind == "crop" else "padding"][0][0]
        return (lo + shift, hi + shift) if kind == "crop" else (lo - shift, hi - shift)
    if kind == "resize":
        scale = in_size / a["size"][0]
        return floor((lo + 0.5) * scale - 0.5), floor((hi + 0.5) * scale - 0.5) + 1
    return lo, hi  # per-position layers and merges


def receptive_field(plan: Plan) -> int:
    """Input positions (per spatial axis) that can influence one output position, at worst.

    Exact, not the centred-window formula: pooling and up-sampling make the field depend on
    where an output sits on the pooling grid, so spans are traced back from one output
    position of each residue of the grid and the widest is kept. Normalisation statistics
    (batch norm in training, group norm) are not counted as reading other positions.
    """
    layers = {layer.name: layer for layer in plan.layers}
    period = plan.sizes.period if plan.sizes else 1
    widest = 0
    for head in plan.outputs.values():
        for c in range(period):
            spans: dict[str, tuple[int, int]] = {head: (c, c)}
            for layer in reversed(plan.layers):
                if layer.name not in spans:
                    continue
                lo, hi = spans.pop(layer.name)
                if layer.kind == "input":
                    widest = max(widest, hi - lo + 1)
                    continue
                for name in layer.inputs:
                    in_lo, in_hi = _input_span(layer, lo, hi, layers[name].shape[0])
                    old = spans.get(name, (in_lo, in_hi))
                    spans[name] = (min(old[0], in_lo), max(old[1], in_hi))
    return widest


def activation_bytes(plan: Plan, batch: int = 1, dtype: str = "float32") -> int | None:
    """Every layer's output for ``batch`` samples in ``dtype``; None when a size is left open."""
    elements = layer_elements(plan)
    return None if elements is None else sum(elements.values()) * DTYPE_BYTES[dtype] * batch


def training_bytes(plan: Plan, batch: int = 1, dtype: str = "float32", optimizer: str = "adam") -> int | None:
    """Weights, gradients and optimizer slots (float32), plus the activations kept for backprop."""
    activations = activation_bytes(plan, batch, dtype)
    state = plan.total_params * WEIGHT_BYTES * (2 + OPTIMIZER_SLOTS[optimizer])
    return None if activations is None else state + activations


def plan_cost(plan: Plan, batch: int = 1, dtype: str = "float32", optimizer: str = "adam") -> Cost:
    """Cost of ``plan`` for ``batch`` samples computed in ``dtype``.

    >>> from archgen.spec import load_spec; from archgen.planner import make_plan
    >>> plan_cost(make_plan(load_spec("conf/unet.yaml"))).receptive_field  # doctest: +SKIP
    204
    """
    elements = layer_elements(plan)
    peak = None if elements is None else inference_peak_elements(plan, elements) * DTYPE_BYTES[dtype] * batch
    return Cost(
        batch=batch, dtype=dtype, optimizer=optimizer, params=plan.total_params,
        flops=None if plan.total_flops is None else plan.total_flops * batch,
        weight_bytes=plan.total_params * WEIGHT_BYTES,
        activation_bytes=activation_bytes(plan, batch, dtype),
        inference_peak_bytes=peak,
        training_bytes=training_bytes(plan, batch, dtype, optimizer),
        receptive_field=receptive_field(plan),
    )


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str, option: str = "--fit", unit_required: bool = False) -> int:
    """``"24GiB"`` -> 25769803776; ``"16GB"`` -> 16000000000; ``"24B"`` -> 24.

    With ``unit_required`` (the command line), a bare number is refused: ``--fit 24`` is far more
    likely to mean 24 GiB than 24 bytes.
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS or float(match.group(1)) <= 0:
        raise ArchgenError("expected a memory size such as 24GiB, 16GB or 512MiB", path=option, value=text)
    if unit_required and not unit:
        number = match.group(1)
        raise ArchgenError(f"needs a unit, e.g. {number}GiB, {number}GB or {number}MiB"
                           + (f" ({number}B for bytes)" if number.isdigit() else ""), path=option, value=text)
    return int(float(match.group(1)) * _UNITS[unit])


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"
