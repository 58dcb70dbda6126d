"""The plan: a small graph IR that the emitter translates and the reports read."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archgen.kinds.attrs import Attrs


LARGEST_SIZE = (1 << 31) - 1  # an input size along one axis, at most: the config's bound (config.fields.Size)


@dataclass(frozen=True)
class Node:
    """A layer before shapes are known: topology, channels and parameters only.

    ``like`` names the layer whose spatial size an align layer (crop, pad, resize) matches.
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    channels: int
    params: int
    group: str
    path: str
    attrs: Attrs  # the kind's record (``archgen.kinds.attrs_of``)
    like: str | None = None


@dataclass(frozen=True)
class LayerPlan:
    """One layer: what the emitter builds and the summary prints.

    ``shape`` is the output shape without the batch axis (None for a run-time size).
    ``flops`` counts 2 x multiply-adds of one forward pass for one sample.
    ``attrs`` holds what the emitter needs, including solved ``cropping``/``padding``
    as ``((before, after), ...)`` per spatial axis.
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    shape: tuple[int | None, ...]
    params: int
    flops: int | None
    group: str
    attrs: Attrs  # the kind's record (``archgen.kinds.attrs_of``)


@dataclass(frozen=True)
class SizeRule:
    """Legal sizes of one spatial axis: ``n = period * k + offset`` for ``k >= k_min``.

    ``k`` is the size entering the bottleneck. ``outputs`` maps a head to ``(scale, shift)``:
    the head's size on this axis is ``scale * n + shift``.
    """

    period: int
    offset: int
    k_min: int
    outputs: dict[str, tuple[Fraction, Fraction]]

    @property
    def first(self) -> int:
        return self.period * self.k_min + self.offset

    def smallest(self, count: int) -> list[int]:
        """The ``count`` smallest legal sizes."""
        return [self.first + j * self.period for j in range(max(count, 0))]

    def is_legal(self, n: int) -> bool:
        return n >= self.first and (n - self.offset) % self.period == 0

    def nearest(self, n: int, count: int = 2) -> list[int]:
        """The ``count`` legal sizes closest to ``n`` (smaller first on ties), none above ``LARGEST_SIZE``."""
        k = max(self.k_min, (n - self.offset) // self.period)
        candidates = [m for j in range(max(self.k_min, k - count), k + count + 2)
                      if (m := self.period * j + self.offset) <= LARGEST_SIZE]
        return sorted(sorted(candidates, key=lambda m: (abs(m - n), m))[:count])

    def output_size(self, head: str, n: int) -> int:
        scale, shift = self.outputs[head]
        return int(scale * n + shift)

    def describe(self, axis: str = "n") -> str:
        """``"H = 16k + 60, k >= 8"``."""
        if self.period == 1:
            return f"{axis} >= {self.first}"
        offset = f" + {self.offset}" if self.offset > 0 else (f" - {-self.offset}" if self.offset < 0 else "")
        return f"{axis} = {self.period}k{offset}, k >= {self.k_min}"

    def describe_output(self, head: str, axis: str = "n") -> str:
        """``"H - 184"`` or ``"H / 2"``."""
        scale, shift = self.outputs[head]
        term = axis if scale == 1 else (f"{axis} / {1 / scale}" if scale.numerator == 1 else f"{scale} * {axis}")
        if shift:
            term += f" + {shift}" if shift > 0 else f" - {-shift}"
        return term


@dataclass(frozen=True)
class Plan:
    """Every layer of the network in build order, with shapes, params and FLOPs.

    >>> from archgen.config import load_spec
    >>> plan = make_plan(load_spec("conf/unet.yaml"))  # doctest: +SKIP
    >>> plan.total_params  # doctest: +SKIP
    31030658
    """

    name: str
    ndim: int
    input_shape: tuple[int | None, ...]
    layers: tuple[LayerPlan, ...]
    outputs: dict[str, str]
    sizes: SizeRule | None
    depth: int
    axis_sizes: tuple[SizeRule | None, ...] = ()
    """The legal-size rule of each spatial axis; ``sizes`` is their common rule, None where the axes
    differ (anisotropic strides) or no rule was derived."""

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def total_flops(self) -> int | None:
        flops = [layer.flops for layer in self.layers]
        return None if any(f is None for f in flops) else sum(flops)

    def layer(self, name: str) -> LayerPlan:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def output_shapes(self) -> dict[str, tuple[int | None, ...]]:
        return {head: self.layer(name).shape for head, name in self.outputs.items()}
