"""What a planned network costs: FLOPs, memory for a batch and dtype, receptive field.

Conventions (also printed by ``summary``):

- FLOPs: 2 x multiply-adds of the convolutions (and transposed convolutions), Dense layers and
  attention (projections, scores and the weighted sum of the values) for the batch;
  bias adds, activations, norms and pools are left out (well under 1% of a U-Net).
- Weights are float32 variables whatever the compute dtype (Keras mixed precision keeps
  float32 variables); activations are stored in the compute dtype.
- Training estimate = weights + gradients (float32) + optimizer state (Adam: 2 float32 moments
  per parameter; the iteration counter is left out) + the profile's update buffers +
  ``activation_bytes`` + the profile's runtime bytes (``RUNTIME_BYTES`` for the default).
  ``activation_bytes`` is the peak, over a simulated step (``train_peak_elements``), of the
  tensors that grow with the batch: the input batch, the loss's tensors and labels, the tensors
  each layer's backward pass reads (a conv's input, a ReLU/sigmoid's output, a max pool's input
  and output, a norm's input and one normalised copy), the gradients in flight (a tensor read by
  several layers holds every contribution until the last arrives) and the temporaries of the
  layer being differentiated (a conv's: copies of its input and output, as oneDNN reorders them;
  a norm's: three of its size), times the profile's activation scale.
- Inference peak: the weights, plus the largest set of layer outputs alive at once when the
  layers run in build order (a tensor lives until its last consumer has run) with what the
  running layer holds by the profile (copies of a conv's input and output; a norm's float32
  copies under a 16-bit policy), times the batch and the profile's inference scale, plus its
  inference runtime bytes.
- Calibrated, not derived: which of these facts a back end shows and the scales and constants
  are a memory profile's (``archgen.planner.profiles``), each fitted by
  benchmarks/calibrate_memory.py to the peaks of real Keras steps and recorded with its machine
  and versions in benchmarks/results/; each profile says how close it came.
- Left out: the back end's own baseline (import and runtime start, ~670 MiB RSS for TensorFlow on
  CPU), allocator slack beyond the profile's constant (the second step's peak is 5-15% above the
  first's on CPU), GPU workspace (cuDNN scratch, the BFC allocator's rounding) and threads: more
  cores mean more per-thread scratch.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from math import gcd, lcm, prod

from archgen.errors import ArchgenError
from archgen.kinds import kind_of
from archgen.kinds.memory import CONV_COPIES, NORM_KEPT, NORM_TEMPORARIES  # noqa: F401  (the memory model's constants)
from archgen.planner.ir import LayerPlan, Plan
from archgen.planner.profiles import DEFAULT, MemoryProfile

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
    receptive_field: int  # the widest over the spatial axes
    receptive_fields: tuple[int, ...]  # per spatial axis
    profile: str = DEFAULT.key  # the memory profile of the memory figures (archgen.planner.profiles)

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


def inference_peak_elements(plan: Plan, elements: dict[str, int], keep_outputs: bool = False,
                            profile: MemoryProfile | None = None, half: bool = False) -> int:
    """The most elements (one sample) alive at once when the layers run in build order; a
    tensor lives until its last consumer has run (with ``keep_outputs``, until the pass ends: Keras's
    functional model run eagerly keeps every output). ``profile``: what a layer holds while it runs
    (``MemoryProfile.inference_extra`` and ``scratch``; ``half``: in a 16-bit policy)."""
    shapes = {layer.name: layer.shape for layer in plan.layers}
    last_use = {}
    for i, layer in enumerate(plan.layers):
        for name in layer.inputs:
            last_use[name] = i
    outputs = set(plan.outputs.values())
    live, peak = 0, 0
    for i, layer in enumerate(plan.layers):
        live += elements[layer.name]
        extra = 0
        if profile is not None:
            extra = profile.scratch(layer, shapes) + profile.inference_extra(layer, elements, half)
        peak = max(peak, live + extra)
        for name in set(layer.inputs):
            if last_use[name] == i and name not in outputs and not keep_outputs:
                live -= elements[name]
    return peak


_Map = Callable[[int], int]


def _span_maps(layer: LayerPlan, in_size: int | None, axis: int = 0) -> tuple[_Map, _Map, tuple[int, int] | None]:
    """For output positions ``lo..hi`` of ``layer`` on ``axis``: the first input position they read
    as a function of ``lo``, the last as a function of ``hi``, and ``(a, b)`` such that both maps
    send ``p + a`` to their value at ``p`` plus ``b`` (None for a resize: its scale is a float).
    Each kind's record says (``LayerKind.span``).

    ``receptive_fields`` relies on the two ends depending on ``lo`` and ``hi`` apart and on both
    maps being non-decreasing.
    """
    return kind_of(layer.kind).span(layer, in_size, axis)


def receptive_field(plan: Plan) -> int:
    """The widest of ``receptive_fields``: the same on every axis of an isotropic network."""
    return max(receptive_fields(plan))


def receptive_fields(plan: Plan) -> tuple[int, ...]:
    """Per spatial axis, the input positions that can influence one output position, at worst.

    Exact, not the centred-window formula: pooling and up-sampling make the field depend on
    where an output sits on the pooling grid, so spans are traced back from one output
    position of each residue of the grid and the widest is kept. Normalisation statistics
    (batch norm in training, group norm) and squeeze-and-excitation's pooled gate are not counted as
    reading other positions; attention is: it reads every position of its input.
    """
    return tuple(_receptive_field(plan, axis) for axis in range(plan.ndim))


def _receptive_field(plan: Plan, axis: int) -> int:
    rules = plan.axis_sizes
    rule = rules[axis] if len(rules) > axis else plan.sizes
    period = rule.period if rule else 1
    heads = set(plan.outputs.values())
    layers = {layer.name: layer for layer in plan.layers}
    maps = {(layer.name, name): _span_maps(layer, layers[name].shape[axis], axis)
            for layer in plan.layers for name in set(layer.inputs)}
    widest = 0
    for source in (layer.name for layer in plan.layers if layer.kind == "input"):
        first, last = (_end_tables(plan, maps, source, heads, period, end) for end in (0, 1))
        for head in heads & first.keys():
            widest = max(widest, max(_value(last[head], c, max) - _value(first[head], c, min) + 1
                                     for c in range(period)))
    return widest


@dataclass(frozen=True)
class _Periodic:
    """The function ``p -> base[p % period] + (p // period) * step`` on the integers."""

    period: int
    step: int
    base: list[int]

    def __call__(self, p: int) -> int:
        return self.base[p % self.period] + p // self.period * self.step

    def period_after(self, a: int, b: int) -> int:
        return a * self.period // gcd(b, self.period)

    def after(self, f: _Map, a: int, b: int) -> _Periodic:
        """``p -> self(f(p))``, for an ``f`` that sends ``p + a`` to ``f(p) + b``."""
        if a == b == 1 and f(0) == 0:
            return self
        period = self.period_after(a, b)
        n = period // a
        base = [0] * period
        for j in range(a):  # f(j + a*m) = f(j) + b*m: every b-th value of a run
            base[j::a] = self.run(f(j), b * (n - 1) + 1)[::b] if b else [self(f(j))] * n
        return _Periodic(period, self.step * b // gcd(b, self.period), base)

    def run(self, k: int, n: int) -> list[int]:
        """``self(k), self(k + 1), ..., self(k + n - 1)``, from slices of ``base``."""
        q, r = divmod(k, self.period)
        out: list[int] = []
        while len(out) < n:
            add, chunk = q * self.step, self.base[r:r + n - len(out)]
            out += [v + add for v in chunk] if add else chunk
            q, r = q + 1, 0
        return out


@dataclass(frozen=True)
class _Window:
    """A function known on ``start, start + 1, ...`` only."""

    start: int
    values: list[int]


def _value(table: tuple[_Periodic, ...] | _Window, p: int, pick: Callable) -> int:
    if isinstance(table, _Window):
        return table.values[p - table.start]
    return table[0](p) if len(table) == 1 else pick(piece(p) for piece in table)


def _merged(pieces: list[_Periodic], pick: Callable, width: int) -> tuple[_Periodic, ...] | None:
    """``p -> pick(piece(p) for piece in pieces)`` as one piece per slope (an attention's constant
    beside a skip's positions is not periodic); None where a period would pass ``width``."""
    by_slope: dict[Fraction, list[_Periodic]] = {}
    for piece in pieces:
        by_slope.setdefault(Fraction(piece.step, piece.period), []).append(piece)
    out = []
    for group in by_slope.values():
        period = lcm(*(piece.period for piece in group))
        if period > width:
            return None
        bases = [piece.base if piece.period == period else piece.run(0, period) for piece in group]
        out.append(_Periodic(period, group[0].step * (period // group[0].period),
                             bases[0] if len(bases) == 1 else list(map(pick, *bases))))
    return tuple(out)


def _end_tables(plan: Plan, maps: dict, source: str, heads: set[str], period: int,
                end: int) -> dict[str, tuple[_Periodic, ...] | _Window]:
    """For each layer on a path from ``source`` to a head, the map from its output positions to
    the first (``end`` 0) or the last (1) ``source`` position they read.

    A head position reads the hull of its spans along every path back to the input, and a nested
    or full-scale skip topology (UNet++, UNet 3+) has exponentially many paths in its depth. Each
    end's maps are non-decreasing, so the first position over a layer's paths is the least, over
    its inputs, of their first at the position it reads: one table per layer, in build order,
    shared by every head and residue (the last: the greatest).

    The heads want ``period`` positions, but a valid-padded UNet++'s skips read a layer at up to
    tens of thousands of offsets. Shifting a map's input by ``a`` shifts its result by ``b``, so a
    table repeats with a step and is kept as a ``_Periodic`` piece of at most a grid period.
    A resize has no such pair; from it on, tables hold just the positions wanted (``_Window``),
    the heads' ``period`` positions traced back as intervals.
    """
    pick = (min, max)[end]
    wanted: dict[str, tuple[int, int]] = {}
    for layer in reversed(plan.layers):
        if layer.name in heads:
            lo, hi = wanted.get(layer.name, (0, period - 1))
            wanted[layer.name] = (min(lo, 0), max(hi, period - 1))
        if layer.name not in wanted or layer.kind == "input":
            continue
        lo, hi = wanted[layer.name]
        for name in set(layer.inputs):
            f = maps[layer.name, name][end]
            old = wanted.get(name, (f(lo), f(hi)))
            wanted[name] = (min(old[0], f(lo)), max(old[1], f(hi)))

    tables: dict[str, tuple[_Periodic, ...] | _Window] = {source: (_Periodic(1, 1, [0]),)}
    for layer in plan.layers:
        if layer.name not in wanted or layer.kind == "input":
            continue
        reads = [(tables[name], maps[layer.name, name][end], maps[layer.name, name][2])
                 for name in set(layer.inputs) if name in tables]  # the inputs that reach the source
        if not reads:
            continue
        lo, hi = wanted[layer.name]
        width, table = hi - lo + 1, None
        if all(step and isinstance(t, tuple) and all(piece.period_after(*step) <= width for piece in t)
               for t, _, step in reads):  # else a window is no dearer
            table = _merged([piece.after(f, *step) for t, f, step in reads for piece in t], pick, width)
        tables[layer.name] = table or _Window(lo, [pick(_value(t, f(p), pick) for t, f, _ in reads)
                                                   for p in range(lo, hi + 1)])
    return tables


def _saved_by(layer: LayerPlan, elements: dict[str, int],
              profile: MemoryProfile = DEFAULT) -> tuple[list[str], int]:
    """What ``layer``'s backward pass reads, in TensorFlow: the names of tensors of the plan it
    keeps alive until then, and the elements of its own intermediates it keeps (``LayerKind.saved``,
    with ``profile``'s norm copies)."""
    return profile.saved(kind_of(layer.kind), layer, elements)


RUNTIME_BYTES = DEFAULT.runtime_bytes  # measured: TensorFlow's CPU runtime beyond its tensors in a training step


def _backward_workspace(layer: LayerPlan, elements: dict[str, int], profile: MemoryProfile = DEFAULT) -> int:
    """Temporaries of one layer's backward pass beyond the gradients it returns (``LayerKind.workspace``,
    with ``profile``'s conv copies and norm temporaries)."""
    return profile.workspace(kind_of(layer.kind), layer, elements)


def train_peak_elements(plan: Plan, elements: dict[str, int], profile: MemoryProfile = DEFAULT) -> int:
    """Peak elements (one sample) alive during a TensorFlow training step, by simulation.

    Forward in build order: each output lives until its last consumer has run, or, when a
    backward pass reads it (``_saved_by``), until that backward has run. Each head's loss keeps
    two tensors the size of the head (its backprop and the labels). Backward in reverse build
    order: a layer holds the gradient of its output (the sum of its consumers' contributions,
    which are all held until the last arrives: TensorFlow's AddN), of its pre-activation for a
    non-linear activation, and allocates one gradient per input (a crop's is the size of its
    input, zero-padded). A layer's saved tensors go once every layer reading them is done. The
    input batch is alive throughout; gradients with respect to it are not computed.
    """
    layers = {layer.name: layer for layer in plan.layers}
    shapes = {layer.name: layer.shape for layer in plan.layers}
    readers: dict[str, int] = {}  # backward passes that read a tensor
    extra: dict[str, int] = {}
    saved: dict[str, list[str]] = {}
    for layer in plan.layers:
        names, extra[layer.name] = _saved_by(layer, elements, profile)
        saved[layer.name] = names
        for name in set(names):
            readers[name] = readers.get(name, 0) + 1
    last_use = {}
    for i, layer in enumerate(plan.layers):
        for name in layer.inputs:
            last_use[name] = i
    heads = set(plan.outputs.values())
    live = peak = sum(elements[layer.name] for layer in plan.layers if layer.kind == "input")  # the batch
    alive: set[str] = set()
    for i, layer in enumerate(plan.layers):  # forward
        if layer.kind == "input":
            continue  # counted above
        live += elements[layer.name] + extra[layer.name]
        alive.add(layer.name)
        if layer.name in heads:
            live += 2 * elements[layer.name]
        peak = max(peak, live + profile.scratch(layer, shapes))
        for name in set(layer.inputs):
            if (last_use[name] == i and not readers.get(name) and name not in heads and layers[name].kind != "input"
                    and not profile.keeps_outputs):
                live -= elements[name]
                alive.discard(name)
    if profile.keeps_outputs:  # the forward pass has returned: what no backward pass reads goes
        for name in [n for n in alive if not readers.get(n) and n not in heads]:
            live -= elements[name]
            alive.discard(name)
    needs_grad: dict[str, bool] = {}  # a gradient with respect to this output is computed
    for layer in plan.layers:
        needs_grad[layer.name] = layer.kind != "input" and (
            layer.params > 0 or any(needs_grad[n] for n in layer.inputs))
    held = {name: elements[name] for name in heads}  # gradient contributions waiting (in live)
    count = {name: 1 for name in heads}
    for layer in reversed(plan.layers):  # backward
        name, n = layer.name, elements[layer.name]
        if name not in held:
            continue
        if count[name] > 1:  # AddN: the sum, then its parts go
            live += n
            peak = max(peak, live)
            live -= held[name]
        if name in heads:
            live -= n  # the labels' share of the loss's tensors
        fused = layer.kind in ("conv", "conv_transpose") and (layer.attrs.get("activation") or "linear") != "linear"
        temp = n if fused else 0  # the gradient of a conv's pre-activation
        temp += _backward_workspace(layer, elements, profile) + profile.scratch(layer, shapes)
        for m in layer.inputs:
            if needs_grad[m]:
                live += elements[m]
                held[m] = held.get(m, 0) + elements[m]
                count[m] = count.get(m, 0) + 1
        peak = max(peak, live + temp)
        live -= n + extra[name]  # this layer's output gradient and its own saved intermediates
        del held[name]
        for s_name in set(saved[name]):
            readers[s_name] -= 1
            if readers[s_name] == 0 and s_name in alive and layers[s_name].kind != "input":
                alive.discard(s_name)
                live -= elements[s_name]
        if name in alive and not readers.get(name):
            alive.discard(name)
            live -= n
    return peak


def activation_bytes(plan: Plan, batch: int = 1, dtype: str = "float32", profile: MemoryProfile | None = None) -> int | None:
    """The part of a training step's memory that grows with the batch: the tensors alive at the
    step's peak (``train_peak_elements``) for ``batch`` samples in ``dtype``, times ``profile``'s
    activation scale (and 16-bit scale); None when a size is left open."""
    profile = profile or DEFAULT
    elements = layer_elements(plan)
    if elements is None:
        return None
    scale = profile.activation_scale * (profile.half_scale if DTYPE_BYTES[dtype] < 4 else 1)
    return int(train_peak_elements(plan, elements, profile) * DTYPE_BYTES[dtype] * scale) * batch  # linear in the batch


def training_bytes(plan: Plan, batch: int = 1, dtype: str = "float32", optimizer: str = "adam",
                   profile: MemoryProfile | None = None) -> int | None:
    """Weights, gradients and optimizer slots (float32, and ``profile``'s update temporaries),
    ``activation_bytes`` and the profile's runtime constant (TensorFlow on CPU: ``RUNTIME_BYTES``):
    the batch-independent part plus ``activation_bytes`` (``fit.max_batch`` relies on that split)."""
    profile = profile or DEFAULT
    activations = activation_bytes(plan, batch, dtype, profile)
    buffers = 2 + OPTIMIZER_SLOTS[optimizer] + profile.update_buffers
    state = plan.total_params * WEIGHT_BYTES * buffers + profile.runtime_bytes
    return None if activations is None else state + activations


def plan_cost(plan: Plan, batch: int = 1, dtype: str = "float32", optimizer: str = "adam",
              profile: MemoryProfile | None = None) -> Cost:
    """Cost of ``plan`` for ``batch`` samples computed in ``dtype``, memory by ``profile`` (default
    TensorFlow on CPU).

    >>> from archgen.config import load_spec; from archgen.planner import make_plan
    >>> plan_cost(make_plan(load_spec("conf/unet.yaml"))).receptive_field  # doctest: +SKIP
    204
    """
    profile = profile or DEFAULT
    elements = layer_elements(plan)
    weights = plan.total_params * WEIGHT_BYTES
    peak = None if elements is None else weights + profile.inference_runtime_bytes + batch * int(
        inference_peak_elements(plan, elements, profile.keeps_outputs, profile,
                                half=DTYPE_BYTES[dtype] < 4)
        * DTYPE_BYTES[dtype]
        * profile.inference_scale * (profile.half_scale if DTYPE_BYTES[dtype] < 4 else 1))
    return Cost(
        batch=batch, dtype=dtype, optimizer=optimizer, params=plan.total_params,
        flops=None if plan.total_flops is None else plan.total_flops * batch,
        weight_bytes=weights,
        activation_bytes=activation_bytes(plan, batch, dtype, profile),
        inference_peak_bytes=peak,
        training_bytes=training_bytes(plan, batch, dtype, optimizer, profile),
        receptive_field=max(fields := receptive_fields(plan)),
        receptive_fields=fields,
        profile=profile.key,
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
