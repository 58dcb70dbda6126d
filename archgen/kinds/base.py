"""What archgen knows about a layer kind, as one record: every reader asks the registry.

A ``LayerKind`` has no defaults: a kind that leaves a fact out fails where it is defined, not
where a reader would have guessed. The facts are pure functions of a planned layer (``Node``
before sizes are known, ``LayerPlan`` after), so the planner, costs, tiling and reports read them
without TensorFlow; the Keras layer is named (``emitter``, a function of ``archgen.emit.layers``)
and built only by ``archgen.emit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Callable

from archgen.kinds.attrs import Attrs, NoAttrs  # noqa: F401  (re-exported)

if TYPE_CHECKING:  # the IR's types only: the planner imports this registry, not the other way round
    from archgen.planner.ir import LayerPlan, Node


class SizeError(Exception):
    """A layer cannot take the size it is given on one axis."""

    def __init__(self, node: Node, size: int, reason: str):
        self.node, self.size, self.reason = node, size, reason
        super().__init__(f"{node.name} gets {size}: {reason}")


class Locality(Enum):
    """What an output pixel of a layer depends on, for tiling."""

    PIXEL = "pixel"  # the same pixel of its inputs
    WINDOW = "window"  # a bounded window of its inputs
    WHOLE_MAP = "whole map"  # every pixel of its input: tiles are not exact


Sizes = dict[str, int]
Amounts = dict[str, tuple[int, int]]
Map = Callable[[int], int]
Span = tuple[Map, Map, "tuple[int, int] | None"]


class NotThisKind(Exception):
    """A Keras layer of one of a kind's classes, configured as no layer of the kind is (an overlapping
    same-padded pool, a layer norm over spatial axes): what it reads cannot be told from the kind."""


def _no_attrs(layer: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class KerasForm:
    """How a layer of this kind is recognised in a Keras model read without its config (tiling a
    fixed-size model alone): the Keras class names that are this kind, and the attributes its facts
    read (``factor``, ``locality``, ``sees_edges``), taken from the layer; ``NotThisKind`` where a
    class's configuration is outside the kind."""

    classes: tuple[str, ...]
    attrs: Callable[[Any], dict[str, Any]] = _no_attrs


def ranked(stem: str, suffix: str = "") -> tuple[str, ...]:
    """Keras's 1D, 2D and 3D classes of one layer: ``ranked("Conv", "Transpose")`` -> Conv1DTranspose, ..."""
    return tuple(f"{stem}{n}D{suffix}" for n in (1, 2, 3))


@dataclass(frozen=True)
class LayerKind:
    """Everything archgen knows about one kind of layer."""

    name: str
    attrs: type[Attrs]
    """Its attribute record: what a layer of this kind carries, typed; nothing else is accepted."""
    size: Callable[[Node, Sizes, Amounts, int, int], int]
    """Output size on one spatial axis: ``size(node, sizes, amounts, axis, n_input)``, with ``sizes``
    of every earlier node; a crop or pad records its ``(before, after)`` in ``amounts``. Raises
    ``SizeError`` for a size the layer cannot take."""
    factor: Callable[[dict[str, Any], int], tuple[Fraction, ...]]
    """How much the layer divides the resolution per axis (2 for a 2x2 pool, 1/2 for up-sampling)."""
    params: Callable[[Node, tuple[int | None, ...], tuple[int | None, ...]], int]
    """Parameters, given its output's spatial size and the network's input shape."""
    flops: Callable[[Node, dict[str, Node], tuple, tuple, int], int | None]
    """2 x multiply-adds of one forward pass, one sample: ``flops(node, nodes, spatial, in_spatial, ndim)``."""
    span: Callable[[LayerPlan, "int | None", int], Span]
    """Receptive-field maps on one axis: see ``archgen.planner.cost._span_maps``."""
    saved: Callable[[LayerPlan, dict[str, int]], tuple[list[str], int]]
    """What its backward pass keeps: names of plan tensors, and elements of its own intermediates."""
    workspace: Callable[[LayerPlan, dict[str, int]], int]
    """Temporaries of its backward pass beyond the gradients it returns (elements)."""
    locality: Callable[[dict[str, Any]], tuple[Locality, str]]
    """What an output pixel depends on, and (for the whole map) why, in words."""
    sees_edges: Callable[[dict[str, Any]], bool]
    """Whether its output near a tile's border depends on where the tile ends (zero padding, ...)."""
    note: Callable[[LayerPlan], str]
    """The summary's note."""
    emitter: str
    """The function of ``archgen.emit.layers`` that builds its Keras layer."""
    keras: KerasForm | None
    """How its Keras layers are recognised in a model alone; None for a kind that is no Keras layer of
    its own (a backbone is a nested model, which tiling follows into)."""


# --- small pieces many kinds share --------------------------------------------------------------

def each_axis(value: Any, ndim: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * ndim


def on(value: Any, axis: int) -> int:
    return value if isinstance(value, int) else value[axis]


def on_axis(attrs: dict, axis: int) -> dict:
    """Per-axis attributes (kernel, stride, factor as tuples) on one spatial axis."""
    return {k: (v[axis] if k in ("kernel", "stride", "factor") and isinstance(v, tuple) else v)
            for k, v in attrs.items()}


def first_input(node: Node, sizes: Sizes, amounts: Amounts, axis: int, n: int) -> int:
    return sizes[node.inputs[0]]


def same_inputs(node: Node, sizes: Sizes, amounts: Amounts, axis: int, n: int) -> int:
    """A merge: every input the same size."""
    first, *rest = (sizes[i] for i in node.inputs)
    for other in rest:
        if other != first:
            raise SizeError(node, first, f"its inputs differ in size ({first} vs {other}); "
                                         f"align the skip (decoder.align: crop, pad or resize)")
    return first


def unit_factor(attrs: dict, ndim: int) -> tuple[Fraction, ...]:
    return (Fraction(1),) * ndim


def known_params(node: Node, spatial: tuple, input_shape: tuple) -> int:
    return node.params


def no_flops(node: Node, nodes: dict, spatial: tuple, in_spatial: tuple, ndim: int) -> int:
    return 0  # (< 0.1% of a network's)


def _same(position: int) -> int:
    return position


def same_span(layer: LayerPlan, in_size: int | None, axis: int) -> Span:
    return _same, _same, (1, 1)


def keeps_nothing(layer: LayerPlan, elements: dict[str, int]) -> tuple[list[str], int]:
    return [], 0  # shapes only


def no_workspace(layer: LayerPlan, elements: dict[str, int]) -> int:
    return 0


def pixel(attrs: dict) -> tuple[Locality, str]:
    return Locality.PIXEL, ""


def window(attrs: dict) -> tuple[Locality, str]:
    return Locality.WINDOW, ""


def no_edges(attrs: dict) -> bool:
    return False


def no_note(layer: LayerPlan) -> str:
    return ""


def axes_text(value: Any) -> str:
    """A per-axis value: ``3`` for (3, 3, 3), ``1x3x3`` where the axes differ."""
    if isinstance(value, (tuple, list)):
        return str(value[0]) if len(set(value)) == 1 else "x".join(map(str, value))
    return str(value)


def most(value: Any) -> int:
    return max(value) if isinstance(value, (tuple, list)) else value
