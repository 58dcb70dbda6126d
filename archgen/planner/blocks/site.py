"""Where a block goes: what every block planner is given, besides the graph and its spec."""

from __future__ import annotations

from dataclasses import dataclass

from archgen.errors import PlanError


@dataclass(frozen=True)
class BlockSite:
    """One block's place in the network.

    ``prefix`` names its layers (``enc2``, ``dec1_block2``); ``convs`` and ``kernel`` come from the
    stage; the first conv strides by ``stride``; ``path`` is the config key errors name
    (``encoder.block``); ``plain_last`` leaves the last conv without norm or activation and
    nothing after the addition (MONAI's ``last_conv_only``). ``first``: the first block of its
    stage; ``activated``: its input is a stage output that a pre-activation stage has already
    normalised and activated (``stage_output: activated``), so it does not again. ``upsampled``:
    in a decoder stage's first block, the level's up-sampled feature before it joined the skip.
    """

    prefix: str
    filters: int
    convs: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    group: str
    path: str
    padding: str
    plain_last: bool = False
    first: bool = True
    activated: bool = False
    upsampled: str | None = None

    @property
    def strides(self) -> bool:
        return any(s > 1 for s in self.stride)


def check_negative_slope(block, path: str) -> None:
    slope = getattr(block, "negative_slope", None)
    if slope is not None and block.activation != "leaky_relu":
        raise PlanError(f"applies to activation leaky_relu only, not {block.activation}; remove it",
                        path=path + ".negative_slope", value=slope)
