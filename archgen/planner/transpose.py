"""The transposed-conv up-sampling of a decoder level: Keras's "same", or PyTorch's explicit padding.

PyTorch's ConvTranspose places input i at output i * stride - padding (Keras's "same" at
i * stride - max(kernel - stride, 0) // 2), so the two differ by a shift wherever
padding != max(kernel - stride, 0) // 2 (MONAI's kernel 3, stride 2, padding 1, output_padding 1
against Keras's 0). A number as ``padding`` is therefore planned as a "valid" transposed conv, whose
full output puts input i at i * stride, then a crop of ``padding`` rows before and
``padding - output_padding`` after (``{name}_crop``), which lands on PyTorch's positions exactly.
A norm and the activation follow (MONAI's up-sampling is conv, norm, activation).
"""

from __future__ import annotations

from archgen.errors import PlanError
from archgen.config.model import TransposeUp


def plan_transpose_up(g, up: TransposeUp, x: str, group: str, filters: int, factor: tuple[int, ...],
                      plain: bool = False) -> str:
    """``{group}_up`` (and ``_crop``, ``_norm``, ``_act``); ``plain``: no norm, no activation."""
    path, name = "decoder.upsample", f"{group}_up"
    explicit = up.padding != "same"
    if not explicit and up.output_padding:
        raise PlanError("applies with a number as decoder.upsample.padding (PyTorch's), not with same; remove it "
                        "or give the padding", path=path + ".output_padding", value=up.output_padding)
    if explicit and up.output_padding > up.padding:
        raise PlanError(f"output_padding above the padding ({up.padding}) would add rows that only the bias "
                        f"reaches; use at most {up.padding}", path=path + ".output_padding", value=up.output_padding)
    kernel = factor if up.kernel_size is None else up.kernel_size
    act = "linear" if plain else up.activation
    norm = "none" if plain else up.norm
    alone = norm == "none" and not explicit  # nothing between the conv and its activation
    x = g.conv(name, x, filters, kernel=kernel, stride=factor, padding="valid" if explicit else "same",
               activation=act if alone else "linear", use_bias=up.bias, transpose=True, group=group, path=path)
    if explicit:
        amounts = ((up.padding, up.padding - up.output_padding),) * g.ndim
        x = g.add(f"{name}_crop", "crop", (x,), filters, group=group, path=path + ".padding", amounts=amounts)
    if norm != "none":
        x = g.norm(f"{name}_norm", x, norm, up.groups, group=group, path=path, epsilon=up.norm_epsilon,
                   affine=up.norm_affine)
    if act != "linear" and not alone:
        x = g.activation(f"{name}_act", x, act, group=group, path=path)
    return x
