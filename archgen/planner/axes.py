"""Per-axis values as the plan stores them, and the activation rule convs and blocks share."""

from __future__ import annotations

Axes = int | tuple[int, ...]  # one value for every spatial axis, or one per axis


def compact(values) -> Axes:
    """Per-axis values as the plan stores them: one int when every axis agrees, else a tuple."""
    values = tuple(values) if not isinstance(values, int) else (values,)
    return values[0] if len(set(values)) == 1 else values


def on_axis(value: Axes, axis: int) -> int:
    """The value of a per-axis attribute on one spatial axis."""
    return value if isinstance(value, int) else value[axis]


def axes_of(value: Axes, ndim: int) -> tuple[int, ...]:
    return (value,) * ndim if isinstance(value, int) else tuple(value)


# Activations that learn their slopes, and how many for C channels: a layer of their own.
LEARNED_SLOPES = {"prelu": lambda channels: 1, "prelu_channel": lambda channels: channels}


def fusable(activation: str, negative_slope: float | None) -> bool:
    """Whether a conv can apply the activation itself (a Keras activation name without arguments)."""
    return activation not in LEARNED_SLOPES and not (activation == "leaky_relu" and negative_slope is not None)
