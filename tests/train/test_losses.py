"""archgen's losses against MONAI's and nnU-Net's on random tensors (within 1e-5), 2D and 3D."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
monai_losses = pytest.importorskip("monai.losses")

from archgen.train import losses
from archgen.train.outputs import deep_supervision_weights

TOL = 1e-5
SHAPES = [(2, 12, 10, 4), (2, 6, 5, 7, 3)]  # (B, *spatial, K), 2D and 3D


def random_case(shape, seed: int = 0, labels_high: int | None = None):
    """Logits (B, *spatial, K) and integer labels (B, *spatial), labels over every class."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, shape).astype("float32")
    labels = rng.integers(0, labels_high or shape[-1], shape[:-1]).astype("int32")
    return logits, labels


def as_torch(logits, labels):
    """PyTorch's layout: channels first, labels (B, 1, *spatial)."""
    x = torch.from_numpy(np.moveaxis(logits, -1, 1).copy())
    y = torch.from_numpy(labels[:, None].astype("int64"))
    return x, y


def value(loss, labels, logits) -> float:
    return float(np.asarray(loss(labels, logits)))


@pytest.mark.parametrize("shape", SHAPES, ids=["2d", "3d"])
@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("batch", [False, True])
def test_dice_equals_monai(shape, include_background, batch):
    logits, labels = random_case(shape)
    x, y = as_torch(logits, labels)
    ref = monai_losses.DiceLoss(include_background=include_background, to_onehot_y=True, softmax=True,
                                smooth_nr=1e-5, smooth_dr=1e-5, batch=batch)(x, y).item()
    ours = value(losses.Dice(include_background=include_background, batch=batch), labels, logits)
    assert ours == pytest.approx(ref, abs=TOL)


@pytest.mark.parametrize("shape", SHAPES, ids=["2d", "3d"])
@pytest.mark.parametrize("batch", [False, True])
def test_dice_ce_equals_monai(shape, batch):
    logits, labels = random_case(shape, seed=1)
    x, y = as_torch(logits, labels)
    ref = monai_losses.DiceCELoss(include_background=False, to_onehot_y=True, softmax=True, batch=batch,
                                  lambda_dice=0.7, lambda_ce=1.3)(x, y).item()
    ours = value(losses.DiceCE(include_background=False, batch=batch, dice_weight=0.7, ce_weight=1.3), labels,
                 logits)
    assert ours == pytest.approx(ref, abs=TOL)


@pytest.mark.parametrize("shape", SHAPES, ids=["2d", "3d"])
@pytest.mark.parametrize("batch_dice", [False, True])
def test_dice_ce_equals_nnunet_plus_one(shape, batch_dice):
    """nnU-Net's Dice term is -Dice where ours is 1 - Dice: the same loss, 1 x dice weight apart."""
    pytest.importorskip("nnunetv2")
    from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

    logits, labels = random_case(shape, seed=2)
    x, y = as_torch(logits, labels)
    ref = DC_and_CE_loss({"batch_dice": batch_dice, "smooth": 1e-5, "do_bg": False, "ddp": False}, {},
                         weight_ce=1, weight_dice=1, dice_class=MemoryEfficientSoftDiceLoss)(x, y).item()
    ours = value(losses.DiceCE(include_background=False, batch=batch_dice), labels, logits)
    assert ours == pytest.approx(ref + 1.0, abs=TOL)


def test_deep_supervision_equals_nnunet_wrapper():
    """Three outputs at 1, 1/2 and 1/4 resolution with nnU-Net's weights: the weighted sum of our
    loss per output equals nnU-Net's DeepSupervisionWrapper over DC_and_CE_loss, plus 1."""
    pytest.importorskip("nnunetv2")
    from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
    from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

    from archgen.train.labels import resize_nearest

    weights = deep_supervision_weights(3)
    assert weights == pytest.approx([2 / 3, 1 / 3, 0.0])
    outputs, targets = [], []
    _, labels = random_case((2, 16, 16, 3), seed=3)
    for level, size in enumerate((16, 8, 4)):
        logits, _ = random_case((2, size, size, 3), seed=10 + level)
        outputs.append(logits)
        targets.append(resize_nearest(labels, [2**level] * 2, first_axis=1))
    ours = sum(w * value(losses.DiceCE(include_background=False, batch=True), t, o)
               for w, o, t in zip(weights, outputs, targets))
    wrapper = DeepSupervisionWrapper(DC_and_CE_loss({"batch_dice": True, "smooth": 1e-5, "do_bg": False, "ddp": False},
                                                    {}, dice_class=MemoryEfficientSoftDiceLoss), weights)
    pairs = [as_torch(o, t) for o, t in zip(outputs, targets)]
    ref = wrapper([p[0] for p in pairs], [p[1] for p in pairs]).item()
    assert ours == pytest.approx(ref + 1.0, abs=TOL)


def test_deep_supervision_weights_are_nnunets():
    assert deep_supervision_weights(1) == [1.0]
    assert deep_supervision_weights(2) == [1.0, 0.0]  # the coarsest output is dropped
    assert deep_supervision_weights(4) == pytest.approx([4 / 7, 2 / 7, 1 / 7, 0.0])
    assert deep_supervision_weights(3, "equal") == pytest.approx([1 / 3] * 3)
    assert deep_supervision_weights(3, "none") == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("shape", SHAPES, ids=["2d", "3d"])
def test_cross_entropy_equals_torch_from_logits_and_probabilities(shape):
    logits, labels = random_case(shape, seed=4)
    x, y = as_torch(logits, labels)
    ref = torch.nn.functional.cross_entropy(x, y[:, 0]).item()
    assert value(losses.CrossEntropy(), labels, logits) == pytest.approx(ref, abs=TOL)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert value(losses.CrossEntropy(from_logits=False), labels, probs.astype("float32")) == pytest.approx(ref, abs=TOL)


def test_labels_with_a_channel_axis_give_the_same_loss():
    logits, labels = random_case(SHAPES[0], seed=5)
    loss = losses.DiceCE()
    assert value(loss, labels[..., None], logits) == pytest.approx(value(loss, labels, logits), abs=1e-7)


def sigmoid_case(shape, seed: int):
    """Logits, labels 0..K and the one-hot target MONAI takes (channels first, no background)."""
    logits, labels = random_case(shape, seed=seed, labels_high=shape[-1] + 1)
    onehot = np.eye(shape[-1] + 1, dtype="float32")[labels][..., 1:]
    return logits, labels, torch.from_numpy(np.moveaxis(logits, -1, 1).copy()), \
        torch.from_numpy(np.moveaxis(onehot, -1, 1).copy())


@pytest.mark.parametrize("shape", SHAPES, ids=["2d", "3d"])
def test_sigmoid_dice_and_binary_ce_equal_monai_and_torch(shape):
    """A sigmoid head: label k lights channel k - 1, label 0 none."""
    logits, labels, x, t = sigmoid_case(shape, seed=6)
    dice = monai_losses.DiceLoss(sigmoid=True)(x, t).item()
    assert value(losses.Dice(activation="sigmoid"), labels, logits) == pytest.approx(dice, abs=TOL)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(x, t).item()
    assert value(losses.CrossEntropy(activation="sigmoid"), labels, logits) == pytest.approx(bce, abs=TOL)
    probs = (1 / (1 + np.exp(-logits))).astype("float32")
    assert value(losses.CrossEntropy(activation="sigmoid", from_logits=False), labels, probs) == \
        pytest.approx(bce, abs=1e-4)  # clipped at 1e-7 as Keras's own losses clip


def test_binary_dice_ce_equals_monai():
    """One sigmoid channel: MONAI's DiceCELoss takes binary cross-entropy (for several channels it
    takes a softmax cross-entropy even with sigmoid=True; ours stays binary)."""
    logits, labels, x, t = sigmoid_case((2, 12, 10, 1), seed=13)
    ref = monai_losses.DiceCELoss(sigmoid=True)(x, t).item()
    assert value(losses.DiceCE(activation="sigmoid"), labels, logits) == pytest.approx(ref, abs=TOL)


@pytest.mark.parametrize("shape", SHAPES, ids=["2d", "3d"])
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_focal_softmax_equals_monai_times_classes(shape, alpha):
    """MONAI averages the focal loss over the class axis too; ours sums over it."""
    logits, labels = random_case(shape, seed=7)
    x, y = as_torch(logits, labels)
    ref = monai_losses.FocalLoss(use_softmax=True, to_onehot_y=True, gamma=2.0, alpha=alpha)(x, y).item()
    ours = value(losses.Focal(gamma=2.0, alpha=alpha), labels, logits)
    assert ours == pytest.approx(ref * shape[-1], abs=TOL)


@pytest.mark.parametrize("alpha", [None, 0.25])
def test_focal_sigmoid_equals_monai(alpha):
    logits, labels, x, t = sigmoid_case(SHAPES[0], seed=8)
    ref = monai_losses.FocalLoss(use_softmax=False, gamma=1.5, alpha=alpha)(x, t).item()
    ours = value(losses.Focal(activation="sigmoid", gamma=1.5, alpha=alpha), labels, logits)
    assert ours == pytest.approx(ref, abs=TOL)


@pytest.mark.parametrize("shape", SHAPES, ids=["2d", "3d"])
@pytest.mark.parametrize("batch", [False, True])
def test_tversky_equals_monai(shape, batch):
    logits, labels = random_case(shape, seed=9)
    x, y = as_torch(logits, labels)
    ref = monai_losses.TverskyLoss(include_background=False, to_onehot_y=True, softmax=True, alpha=0.3, beta=0.7,
                                   batch=batch)(x, y).item()
    ours = value(losses.Tversky(include_background=False, alpha=0.3, beta=0.7, batch=batch), labels, logits)
    assert ours == pytest.approx(ref, abs=TOL)


def test_tversky_with_equal_weights_is_dice():
    logits, labels = random_case(SHAPES[0], seed=11)
    assert value(losses.Tversky(), labels, logits) == pytest.approx(value(losses.Dice(), labels, logits), abs=1e-6)


def test_a_perfect_prediction_has_no_dice_loss():
    _, labels = random_case(SHAPES[0], seed=12)
    logits = (np.eye(4, dtype="float32")[labels] * 40.0) - 20.0
    assert value(losses.Dice(), labels, logits) == pytest.approx(0.0, abs=1e-5)
    assert value(losses.DiceCE(), labels, logits) == pytest.approx(0.0, abs=1e-5)


def test_losses_round_trip_through_keras_serialization():
    import keras

    loss = losses.DiceCE(include_background=False, batch=True, dice_weight=0.5, activation="sigmoid")
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(again) is losses.DiceCE
    assert again.get_config() == loss.get_config()


def test_a_head_that_is_neither_softmax_nor_sigmoid_is_refused():
    with pytest.raises(ValueError, match="softmax or sigmoid"):
        losses.Dice(activation="relu")
