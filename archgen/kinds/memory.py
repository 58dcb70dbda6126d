"""What TensorFlow keeps for a backward pass: the calibrated constants of the memory model
(``archgen.planner.cost``), shared by the kinds that use them."""

from __future__ import annotations

# Activations whose gradient TensorFlow computes from the activation's output (kept for backprop);
# the others (leaky_relu, gelu, swish, ...) keep their input instead.
GRAD_FROM_OUTPUT = {"relu", "sigmoid", "tanh", "softmax", "elu", "exponential", "relu6"}
CONV_COPIES = 2  # calibrated: a conv's backward holds reordered copies of its input and output
NORM_KEPT = 1  # calibrated: a norm keeps one normalised copy of its output size for backprop
NORM_TEMPORARIES = 3  # calibrated: a norm's backward holds three temporaries of its size


def activation_kept(layer, elements: dict[str, int]) -> tuple[list[str], int]:
    """A fused activation: its output (relu and the like) or its pre-activation (gelu and the like)."""
    act = layer.attrs.get("activation") or "linear"
    own = [] if act == "linear" else [layer.name] if act in GRAD_FROM_OUTPUT else []
    extra = elements[layer.name] if act not in ("linear", *GRAD_FROM_OUTPUT) else 0
    return own, extra
