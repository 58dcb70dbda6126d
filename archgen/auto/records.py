"""The records the parts of ``archgen auto`` pass each other: nnU-Net's planner families, a
dataset's figures, a candidate topology, and the features per stage every family uses."""

from __future__ import annotations

from dataclasses import dataclass, field

BASE_FEATURES = 32  # UNet_base_num_features
MAX_FEATURES = {2: 512, 3: 320}


@dataclass(frozen=True)
class Family:
    """One of nnU-Net's planners: the network class and its reference memory figures."""

    name: str
    planner: str  # nnU-Net's class name
    residual: bool
    blocks_encoder: tuple[int, ...]
    blocks_decoder: tuple[int, ...]
    reference_3d: float
    reference_2d: float
    reference_gb: float
    max_dataset_covered: float
    default_gb: float

    @property
    def blocks_key(self) -> str:
        return "n_blocks_per_stage" if self.residual else "n_conv_per_stage"


FAMILIES = {
    "plain": Family("plain", "ExperimentPlanner", False, (2,) * 14, (2,) * 13, 560e6, 85e6, 8, 0.05, 8),
    "resenc_m": Family("resenc_m", "nnUNetPlannerResEncM", True, (1, 3, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6),
                       (1,) * 12, 680e6, 135e6, 8, 1.0, 8),
    "resenc_l": Family("resenc_l", "nnUNetPlannerResEncL", True, (1, 3, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6),
                       (1,) * 12, 2100e6, 380e6, 24, 1.0, 24),
    "resenc_xl": Family("resenc_xl", "nnUNetPlannerResEncXL", True, (1, 3, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6),
                        (1,) * 12, 3600e6, 560e6, 40, 1.0, 40),
}
# The reference values are ints in nnU-Net (560000000 ...); as floats they are exact.


@dataclass
class Dataset:
    """What the planner reads from nnU-Net's dataset_fingerprint.json and dataset.json."""

    spacings: list[list[float]]  # per case, nnU-Net's axis order
    shapes: list[list[int]]  # shapes_after_crop
    channels: int  # len(dataset.json channel_names)
    classes: int  # len(dataset.json labels), background included
    num_training: int  # dataset.json numTraining
    source: str = ""
    notes: list[str] = field(default_factory=list)
    keys: tuple[str, str] = ("--shape", "--spacing")  # where the shapes and spacings came from, for errors
    normalize: str | None = None  # data.normalize as nnU-Net's channel names ask: ct, none; None: the default


@dataclass
class Topology:
    pools_per_axis: list[int]
    strides: list[list[int]]
    kernels: list[list[int]]
    patch: list[int]
    divisible_by: list[int]


def features_per_stage(n_stages: int, dim: int) -> list[int]:
    return [min(MAX_FEATURES[dim], BASE_FEATURES * 2 ** i) for i in range(n_stages)]
