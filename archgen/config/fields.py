"""What every section of the schema is built from: bounded field types, ``Strict`` (no unknown or
coerced keys) and ``tagged`` (a union chosen by its ``type`` key)."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag


Padding = Literal["valid", "same"]
Norm = Literal["none", "batch", "group", "layer", "instance"]
# Keras activation names; "linear" means none. prelu learns its slope (one parameter, as PyTorch's
# nn.PReLU()), prelu_channel one slope per channel (nn.PReLU(num_parameters=C), MONAI's VNet);
# leaky_relu takes the block's ``negative_slope``.
Activation = Literal[
    "linear", "relu", "relu6", "leaky_relu", "prelu", "prelu_channel", "elu", "selu", "gelu", "silu", "swish",
    "mish", "tanh", "sigmoid", "hard_sigmoid", "softplus", "softsign", "softmax",
]
Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]
# Upper bounds far above any network in use, low enough that planning stays instant.
Count = Annotated[int, Field(ge=1, le=64)]  # convs, kernel sizes, dilations, factors, levels
Channels = Annotated[int, Field(ge=1, le=1 << 16)]  # filters, classes, groups
# A stage's filters: the short form's multiplier may reach past Channels; the size guard refuses
# a network too large to build, with a better message than a bound here.
StageChannels = Annotated[int, Field(ge=1, le=1 << 30)]
Size = Annotated[int, Field(ge=1, le=(1 << 31) - 1)]  # an input size along one axis
# One value for every spatial axis, or one per axis (anisotropic 3D: [1, 3, 3]).
PerAxis = Count | Annotated[list[Count], Field(min_length=1, max_length=3)]
Slope = Annotated[float, Field(ge=0.0, le=1.0)]
Epsilon = Annotated[float, Field(gt=0.0, le=1.0)]


def tagged(default: str, *models: type[BaseModel]):
    """A union discriminated on ``type``, where a mapping without ``type`` means ``default``."""

    def tag(value):
        if isinstance(value, dict):
            return value.get("type", default)
        return getattr(value, "type", default)

    members = tuple(Annotated[m, Tag(m.model_fields["type"].default)] for m in models)
    return Annotated[Union[members], Discriminator(tag)]


class Strict(BaseModel):
    # strict: a YAML ``true`` is not a depth of 1, nor "3" a number.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, strict=True,
                              allow_inf_nan=False)
