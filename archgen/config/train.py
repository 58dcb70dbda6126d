"""The training sections of a config: ``data``, ``augment`` and ``train``, all optional.

They sit beside the model's keys and change nothing in the network: ``archgen build`` and the
planner ignore them; ``archgen train`` reads them. Every option is a name in a closed set or a
bounded number, as in the rest of the schema, and errors carry the same dotted paths
(``train.optimizer.learning_rate``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from archgen.config.fields import Name, Size, Strict, tagged

Weight = Annotated[float, Field(ge=0.0, le=1e6)]
Smooth = Annotated[float, Field(ge=0.0, le=1e3)]
Rate = Annotated[float, Field(gt=0.0, le=10.0)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


def _shorthand(value: Any) -> Any:
    """``loss: dice`` means ``loss: {type: dice}``."""
    return {"type": value} if isinstance(value, str) else value


# --- losses -------------------------------------------------------------------------------------

class _Overlap(Strict):
    include_background: bool = False
    """Whether a softmax head's background (channel 0) counts in the Dice (MONAI: true by default;
    nnU-Net: false). A sigmoid head has no background channel."""
    smooth: Smooth = 1e-5
    """Added to the numerator and the denominator of each class's score (MONAI's smooth_nr and
    smooth_dr, nnU-Net's smooth)."""
    batch: bool = False
    """Sum the counts over the whole batch before scoring (nnU-Net's batch_dice), not per sample."""


class DiceCELoss(_Overlap):
    """Soft Dice plus cross-entropy, as MONAI's DiceCELoss and nnU-Net's DC_and_CE_loss."""

    type: Literal["dice_ce"] = "dice_ce"
    dice_weight: Weight = 1.0
    """Weight of the Dice term."""
    ce_weight: Weight = 1.0
    """Weight of the cross-entropy term."""

    @model_validator(mode="after")
    def _not_always_zero(self) -> "DiceCELoss":
        if self.dice_weight == 0 and self.ce_weight == 0:
            raise ValueError("dice_weight and ce_weight are both 0: the loss would be 0 whatever the network "
                             "outputs; give one of them a weight")
        return self


class DiceLoss(_Overlap):
    """Soft Dice: 1 - the mean Dice over classes."""

    type: Literal["dice"] = "dice"


class TverskyLoss(_Overlap):
    """Tversky loss: Dice with false positives weighted ``alpha`` and false negatives ``beta``."""

    type: Literal["tversky"] = "tversky"
    alpha: Weight = 0.5
    """Weight of false positives."""
    beta: Weight = 0.5
    """Weight of false negatives."""


class CrossEntropyLoss(Strict):
    """Cross-entropy (binary, per channel, for a sigmoid head)."""

    type: Literal["ce"] = "ce"


class FocalLoss(Strict):
    """Focal loss (Lin et al. 2017)."""

    type: Literal["focal"] = "focal"
    gamma: Annotated[float, Field(ge=0.0, le=10.0)] = 2.0
    """Focusing exponent: 0 is cross-entropy."""
    alpha: Fraction | None = None
    """Weight of the foreground classes (the background gets 1 - alpha); null weighs all alike."""


class MSELoss(Strict):
    """Mean squared error, for a regression head."""

    type: Literal["mse"] = "mse"


class MAELoss(Strict):
    """Mean absolute error, for a regression head."""

    type: Literal["mae"] = "mae"


class HuberLoss(Strict):
    """Huber loss, for a regression head."""

    type: Literal["huber"] = "huber"
    delta: Annotated[float, Field(gt=0.0, le=1e6)] = 1.0
    """Where the loss turns from quadratic to linear."""


Loss = tagged("dice_ce", DiceCELoss, DiceLoss, CrossEntropyLoss, FocalLoss, TverskyLoss, MSELoss, MAELoss, HuberLoss)
REGRESSION_LOSSES = ("mse", "mae", "huber")
Metric = Literal["dice", "iou", "dice_per_class", "iou_per_class", "mae", "mse"]
CLASS_METRICS = ("dice", "iou", "dice_per_class", "iou_per_class")


class HeadTraining(Strict):
    """How one head trains, where it differs from ``train``'s defaults."""

    name: Name
    """The head (``heads[].name``)."""
    loss: Loss | None = None
    """Its loss; null means ``train.loss``. A name (``dice``) stands for ``{type: dice}``."""
    weight: Weight = 1.0
    """Its share of the total loss (its deep-supervision copies share it by ``train.deep_supervision``)."""
    metrics: list[Metric] | None = Field(default=None, max_length=8)
    """Its metrics; null means ``train.metrics`` for a class head, mae for a regression head."""

    @field_validator("loss", mode="before")
    @classmethod
    def _loss_by_name(cls, value: Any) -> Any:
        return _shorthand(value)


# --- optimizers ---------------------------------------------------------------------------------

Schedule = Literal["constant", "poly", "cosine"]


class SGD(Strict):
    """SGD as nnU-Net trains: Nesterov momentum 0.99, learning rate 0.01 decayed by the poly rule."""

    type: Literal["sgd"] = "sgd"
    learning_rate: Rate = 0.01
    """Learning rate at step 0."""
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.99
    """Momentum."""
    nesterov: bool = True
    """Nesterov momentum."""
    weight_decay: Annotated[float, Field(ge=0.0, le=1.0)] = 3e-5
    """Weight decay (Keras's, decoupled from the gradient)."""
    schedule: Schedule = "poly"
    """Learning-rate schedule over all steps: poly, lr x (1 - step/steps)^0.9 (nnU-Net's, applied
    per step); cosine, a half cosine to 0; constant."""


class Adam(Strict):
    """Adam with a cosine decay of the learning rate."""

    type: Literal["adam"] = "adam"
    learning_rate: Rate = 1e-3
    """Learning rate at step 0 (after the warm-up)."""
    weight_decay: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    """Weight decay (Keras's, decoupled from the gradient); 0 for none."""
    schedule: Schedule = "cosine"
    """Learning-rate schedule over all steps (see sgd)."""
    warmup_steps: Annotated[int, Field(ge=0, le=10**9)] = 0
    """Steps of linear warm-up from 0 before the schedule (cosine only)."""


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (Loshchilov and Hutter 2019)."""

    type: Literal["adamw"] = "adamw"  # type: ignore[assignment]
    weight_decay: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01


Optimizer = tagged("adam", Adam, AdamW, SGD)


class TrainSpec(Strict):
    """How ``archgen train`` trains the network."""

    loss: Loss = DiceCELoss()
    """The loss of every head that ``heads`` does not give its own: dice_ce (default), dice, ce,
    focal, tversky, or mse, mae, huber for regression. A name stands for ``{type: NAME}``."""
    heads: list[HeadTraining] = Field(default=[], max_length=64)
    """Per-head losses, weights and metrics, by head name."""
    metrics: list[Metric] = Field(default=["dice"], max_length=8)
    """Metrics of each class head: dice and iou (mean over the foreground classes), dice_per_class
    and iou_per_class (one value per class); mae and mse are for regression heads."""
    deep_supervision: Literal["nnunet", "equal", "none"] = "nnunet"
    """Weights of a head's deep-supervision outputs: nnunet (1, 1/2, 1/4, ... from the finest,
    the coarsest 0, normalised), equal, or none (the head alone)."""
    optimizer: Optimizer = Adam()
    """adam (default), adamw or sgd."""
    steps: Annotated[int, Field(ge=1, le=10**9)] | None = None
    """Training steps in all; null means ``epochs`` x ``steps_per_epoch``, or 1000 steps."""
    epochs: Annotated[int, Field(ge=1, le=10**6)] | None = None
    """Epochs of ``steps_per_epoch`` steps, in place of ``steps``."""
    steps_per_epoch: Annotated[int, Field(ge=1, le=10**6)] = 250
    """Steps between validations and checkpoints (nnU-Net's epoch: 250)."""
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 8
    """Patches per step (over all devices)."""
    precision: Literal["float32", "mixed_bfloat16", "mixed_float16"] = "float32"
    """Keras dtype policy: mixed computes in 16 bits with float32 weights (float16 with loss scaling)."""
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    """Seed of the weights, the split, the patches and the augmentation."""
    distribute: Literal["auto", "off"] = "auto"
    """auto: data-parallel over every device Keras sees, where there are several; off: one device."""

    @field_validator("loss", mode="before")
    @classmethod
    def _loss_by_name(cls, value: Any) -> Any:
        return _shorthand(value)

    @property
    def total_steps(self) -> int:
        if self.steps is not None:
            return self.steps
        if self.epochs is not None:
            return self.epochs * self.steps_per_epoch
        return 1000


# --- data and augmentation ----------------------------------------------------------------------

Folder = Annotated[str, Field(min_length=1, max_length=255)]


class DataSpec(Strict):
    """Where the images and labels are and how they are read. ``archgen train --data DIR`` sets ``dir``.

    A case is an image in ``DIR/images/`` and its mask in ``DIR/masks/`` of the same name: .png,
    .tif/.tiff, .npy (any dimension), .nii/.nii.gz (3D, through nibabel)."""

    dir: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    """The data folder, relative to the working directory; ``--data`` overrides it."""
    images: Folder = "images"
    """The folder of images inside ``dir``."""
    masks: Folder = "masks"
    """The folder of masks (integer labels, or regression targets) inside ``dir``."""
    validation: Annotated[float, Field(gt=0.0, lt=1.0)] | Annotated[list[Annotated[str, Field(min_length=1, max_length=255)]], Field(min_length=1, max_length=100_000)] = 0.2
    """The validation split: a fraction of the cases, drawn with ``train.seed``, or a list of case
    names (file names without their suffix)."""
    normalize: Literal["zscore", "ct", "none"] = "zscore"
    """zscore: each image and channel to mean 0 and standard deviation 1 (nnU-Net's default);
    ct: clipped to the 0.5 and 99.5 percentiles of the training set's foreground intensities,
    then shifted and scaled by their mean and standard deviation (nnU-Net's CT scheme); none."""
    patch_size: list[Size] | None = Field(default=None, min_length=1, max_length=3)
    """Spatial size of a training patch; null means the input's (``input.shape``). Patches are
    drawn from larger images; an image may not be smaller than the network's output patch."""
    foreground_oversampling: Fraction = 0.33
    """The share of each batch whose patches are centred on a foreground pixel (nnU-Net: a third)."""
    workers: Annotated[int, Field(ge=0, le=64)] = 2
    """Threads that read and augment batches while the network trains (Keras's PyDataset); 0 or 1
    make them in the training thread."""

    @field_validator("images", "masks")
    @classmethod
    def _inside(cls, value: str) -> str:
        if value in (".", "..") or "/" in value or "\\" in value or not value.isprintable():
            raise ValueError("must name a folder inside the data folder: one printable name, no / or \\, not . or ..")
        return value

    @field_validator("dir")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and not value.isprintable():
            raise ValueError("a path may not hold control or other non-printable characters")
        return value


class AugmentSpec(Strict):
    """Random transforms of each training patch, image and mask together; 0 or false is off.

    2D patches go through Keras's own preprocessing layers (the mask with nearest sampling, so it
    keeps its label values); 3D patches, and the elastic deformation, through archgen's NumPy
    transforms."""

    flip: bool = False
    """Mirror along each spatial axis with probability 1/2."""
    rotate90: bool = False
    """Rotate by a random multiple of 90 degrees in a random plane of equal sides (3D; in 2D when square)."""
    rotation: Annotated[float, Field(ge=0.0, le=180.0)] = 0.0
    """2D: rotate by up to this many degrees either way."""
    zoom: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """2D: zoom in or out by up to this fraction."""
    translation: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    """2D: shift by up to this fraction of the size on each axis."""
    elastic: Fraction = 0.0
    """Elastic deformation: a smooth random displacement whose standard deviation is this fraction
    of a tenth of the patch on each axis (archgen's own in 2D and 3D; see archgen/train/augment.py)."""
    contrast: Fraction = 0.0
    """Scale the intensities about their mean by a factor from 1 - contrast to 1 + contrast."""
    brightness: Fraction = 0.0
    """Shift the intensities by up to this fraction of their range."""
    noise: Annotated[float, Field(ge=0.0, le=100.0)] = 0.0
    """Add Gaussian noise of this standard deviation (in normalised intensities)."""


TRAIN_SECTIONS = ("data", "augment", "train")
SPATIAL_2D = ("rotation", "zoom", "translation")


def check_training(spec: Any) -> None:
    """What the sections need of the network: heads that exist, losses that fit each head, a
    patch of the input's rank, transforms that exist for its dimension. ``SpecError`` with the path."""
    from archgen.errors import SpecError, did_you_mean
    from archgen.train.labels import head_mode

    heads = {h.name: h for h in spec.heads}
    train, data, augment = spec.train, spec.data, spec.augment
    if train is not None:
        if train.steps is not None and train.epochs is not None:
            raise SpecError("train.steps is set too; set one of them", path="train.epochs", value=train.epochs)
        if train.total_steps > 10**9:  # as train.steps: a run's checkpoints count at most this many
            raise SpecError(f"x train.steps_per_epoch ({train.steps_per_epoch:,}) is {train.total_steps:,} steps; "
                            "a run has at most 1,000,000,000", path="train.epochs", value=train.epochs)
        seen: set[str] = set()
        for i, entry in enumerate(train.heads):
            if entry.name not in heads:
                raise SpecError(f"no such head{did_you_mean(entry.name, heads)}; heads: {', '.join(heads)}",
                                path=f"train.heads[{i}].name", value=entry.name)
            if entry.name in seen:
                raise SpecError("is listed twice", path=f"train.heads[{i}].name", value=entry.name)
            seen.add(entry.name)
        own = {entry.name: (i, entry) for i, entry in enumerate(train.heads)}
        for name, head in heads.items():
            i, entry = own.get(name, (None, None))
            loss = entry.loss if entry is not None and entry.loss is not None else train.loss
            path = f"train.heads[{i}].loss" if entry is not None and entry.loss is not None else "train.loss"
            if loss.type not in REGRESSION_LOSSES and head_mode(head.activation, head.filters) is None:
                raise SpecError(f"segments classes, but head {name} has activation {head.activation}; give the head "
                                "softmax, sigmoid or linear (logits), or this head a regression loss (mse, mae, huber) "
                                "in train.heads", path=path + ".type", value=loss.type)
            own_metrics = entry is not None and entry.metrics is not None
            metrics = entry.metrics if own_metrics else (None if loss.type in REGRESSION_LOSSES else train.metrics)
            where = f"train.heads[{i}].metrics" if own_metrics else "train.metrics"
            if metrics is not None and loss.type in REGRESSION_LOSSES:
                wrong = [m for m in metrics if m in CLASS_METRICS]
                if wrong:
                    raise SpecError(f"head {name} trains as regression ({loss.type}); its metrics may be mae and mse",
                                    path=where, value=metrics)
            elif metrics is not None:
                wrong = [m for m in metrics if m not in CLASS_METRICS]
                if wrong:  # mae and mse compare a map with the mask's values, which a class head does not output
                    raise SpecError(f"head {name} segments classes ({loss.type}); its metrics may be "
                                    f"{', '.join(CLASS_METRICS)} (mae and mse are for regression heads)", path=where,
                                    value=metrics)
    if data is not None and data.patch_size is not None and len(data.patch_size) != spec.ndim:
        raise SpecError(f"has {len(data.patch_size)} entries; the input is {spec.ndim}D", path="data.patch_size",
                        value=data.patch_size)
    if augment is not None and spec.ndim != 2:
        for key in (*SPATIAL_2D,):
            if getattr(augment, key):
                raise SpecError(f"applies to 2D inputs; a {spec.ndim}D patch takes flip, rotate90, elastic, contrast, "
                                "brightness and noise", path=f"augment.{key}", value=getattr(augment, key))
        if spec.ndim == 1 and augment.elastic:
            raise SpecError("applies to 2D and 3D inputs", path="augment.elastic", value=augment.elastic)
