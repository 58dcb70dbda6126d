"""``archgen train``: the run folder, its files, --json, refusals, --force and --resume.

Tests that train (about 10-30 s each on 2 CPU cores) are marked slow; the refusals, which stop
before Keras is imported, are not."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tests.train.helpers import shapes, write

CONFIG = """
name: tiny
input: {shape: [32, 32, 1]}
encoder: {depth: 2, filters: 4}
heads: [{name: logits, filters: 3}]
data: {validation: 0.25}
train: {steps: 12, steps_per_epoch: 6, batch_size: 4, optimizer: {learning_rate: 0.01}}
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(CONFIG)
    shapes(tmp_path / "data", count=8)
    return tmp_path


def read_log(run) -> list[dict]:
    with open(run / "log.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_a_run_writes_its_files_and_json(cli, workdir):
    code, out, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["command"] == "train" and result["run_dir"] == "run"
    assert result["steps"] == 12 and result["epochs"] == 2
    assert 0 <= result["val_dice"] <= 1 and result["val_loss"] > 0
    assert result["params"] == 7_407 and result["seconds"] > 0
    assert result["train_cases"] == 6 and result["validation_cases"] == 2
    assert set(result["files"]) == {"keras", "metrics", "log", "config", "png"}
    run = workdir / "run"
    assert json.loads((run / "metrics.json").read_text())["val_dice"] == result["val_dice"]
    assert [row["step"] for row in read_log(run)] == ["6", "12"]
    assert {"loss", "dice", "val_loss", "val_dice", "learning_rate"} <= set(read_log(run)[0])
    from PIL import Image

    with Image.open(run / "validation.png") as picture:  # image | label | prediction, 32 pixels enlarged to 128
        assert picture.size == (3 * 128 + 2 * 4, 128)
    code, out, err = cli("predict", run / "model.keras", _image(workdir), "-o", "pred.npy")
    assert code == 0, err
    assert np.load("pred.npy").shape == (40, 50, 3)


def _image(workdir):
    return write(workdir / "image.npy", np.random.default_rng(0).normal(size=(40, 50, 1)).astype(np.float32))


@pytest.mark.slow
def test_text_output_names_the_files(cli, workdir):
    code, out, err = cli("train", "tiny.yaml", "--data", "data", "-o", "runs/first/run", "-q")  # parents made
    assert code == 0, err
    assert out.splitlines()[0].startswith("tiny: 7,407 params, 12 steps in ")
    assert "wrote runs/first/run/model.keras" in out and err == ""


@pytest.mark.slow
def test_an_existing_run_needs_resume_or_force(cli, workdir):
    assert cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q")[0] == 0
    code, out, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q")
    assert code == 2 and out == ""
    assert err == "error: --output=run: holds a run (at step 12); pass --resume to continue it, or --force to start " \
                  "over\n"
    code, _, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q", "--resume")
    assert code == 0, err
    assert len(read_log(workdir / "run")) == 2  # nothing left to train
    code, _, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q", "--resume", "--steps", "18")
    assert code == 0, err
    assert [row["step"] for row in read_log(workdir / "run")] == ["6", "12", "18"]
    code, _, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q", "--force", "--steps", "6")
    assert code == 0, err
    assert [row["step"] for row in read_log(workdir / "run")] == ["6"]


@pytest.mark.slow
def test_resume_with_no_run_yet_starts_one_and_says_so(cli, workdir):
    code, _, err = cli("train", "tiny.yaml", "--data", "data", "-o", "fresh", "-q", "--resume", "--steps", "6")
    assert code == 0, err
    assert err == "warning: --resume: fresh holds no checkpoint yet; training starts from step 0\n"
    assert [row["step"] for row in read_log(workdir / "fresh")] == ["6"]


def test_a_folder_archgen_did_not_write_is_never_written(cli, workdir):
    (workdir / "mine").mkdir()
    (workdir / "mine" / "notes.txt").write_text("keep")
    for extra in ([], ["--force"], ["--resume"]):
        code, _, err = cli("train", "tiny.yaml", "--data", "data", "-o", "mine", "-q", *extra)
        assert code == 2
        assert err == "error: --output=mine: holds files archgen train did not write; choose a new or empty folder\n"
    assert sorted(p.name for p in (workdir / "mine").iterdir()) == ["notes.txt"]


@pytest.mark.slow
def test_resume_refuses_another_config(cli, workdir):
    assert cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q")[0] == 0
    code, _, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q", "--resume", "encoder.filters=8")
    assert code == 2
    assert err == "error: --resume=run: the run was trained with another config: encoder.filters is 4 there and 8 " \
                  "now; resume with the config it started with\n"


def test_force_and_resume_are_one_or_the_other(cli, workdir):
    code, _, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "--force", "--resume")
    assert code == 2 and err == "error: --resume: --force starts over and --resume continues: pass one of them\n"


def test_bad_input_writes_nothing(cli, workdir):
    (workdir / "data" / "masks" / "case_003.png").unlink()
    code, out, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q")
    assert code == 2 and out == ""
    assert err == "error: data.images=images/case_003.png: has no mask: no masks/case_003.* beside it\n"
    assert not (workdir / "run").exists()
    code, _, err = cli("train", "tiny.yaml", "-o", "run", "-q")
    assert code == 2 and err == "error: --data: is required: the folder of images/ and masks/ (or data.dir in the " \
                                "config)\n"
    code, _, err = cli("train", "tiny.yaml", "--data", "data", "-q")
    assert code == 2 and err == "error: --output: is required: the run folder (checkpoints, model.keras, " \
                                "metrics.json)\n"
    code, _, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "train.loss=dicee")
    assert code == 2 and err.startswith("error: train.loss.type=dicee: unknown type; expected one of 'dice_ce'")
    assert not (workdir / "run").exists()


@pytest.mark.slow
def test_valid_padding_trains_on_cropped_labels_and_validates_whole_images(cli, workdir):
    code, out, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "--json", "padding=valid",
                         "input.shape=[44,44,1]")
    assert code == 0, err
    result = json.loads(out)
    assert result["input_shape"] == [44, 44, 1]
    assert result["validation_cases"] == 2 and result["val_dice"] is not None


@pytest.mark.slow
def test_deep_supervision_and_a_per_class_metric(cli, workdir):
    code, _, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "--json",
                         "heads.0.deep_supervision=[2]", "train.metrics=[dice,iou_per_class]")
    assert code == 0, err
    row = read_log(workdir / "run")[0]
    assert {"logits_dice", "logits_iou_1", "logits_iou_2", "logits_loss", "logits_dec2_loss"} <= set(row)


@pytest.mark.slow
def test_a_regression_head_on_npy_targets(cli, workdir):
    rng = np.random.default_rng(0)
    for i in range(4):
        image = rng.normal(size=(32, 32)).astype(np.float32)
        write(workdir / "reg" / "images" / f"c{i}.npy", image)
        write(workdir / "reg" / "masks" / f"c{i}.npy", (2 * image + 1).astype(np.float32))
    code, out, err = cli("train", "tiny.yaml", "--data", "reg", "-o", "run", "--json", "heads.0.filters=1",
                         "train.loss=mse")
    assert code == 0, err
    result = json.loads(out)
    assert result["val_dice"] is None and result["best_metric"] == "val_loss"
    assert result["val_mae"]["logits"] > 0


@pytest.mark.slow
def test_volumes_train_in_3d(cli, workdir):
    from tests.train.helpers import volumes

    volumes(workdir / "vol", count=4, size=(16, 16, 16))
    code, out, err = cli("train", "tiny.yaml", "--data", "vol", "-o", "run", "--json", "input.shape=[8,8,8,1]",
                         "encoder.depth=1", "heads.0.filters=2", "+augment.flip=true", "+augment.rotate90=true")
    assert code == 0, err
    assert json.loads(out)["input_shape"] == [8, 8, 8, 1]


def test_a_step_past_the_free_memory_is_refused_before_the_run_starts(cli, workdir):
    """On the CPU such a step is the kernel's out-of-memory kill, not an error: refused with the batch
    that fits, nothing written."""
    code, out, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q", "encoder.filters=256",
                         "train.batch_size=4096")
    assert code == 2 and out == ""
    assert err.startswith("error: train.batch_size=4096: a training step of 32x32 patches at this batch takes ~"), err
    assert "GiB this machine has free; the largest batch that fits is " in err and "Traceback" not in err
    assert not (workdir / "run").exists()


def test_the_memory_check_takes_the_precision_optimizer_and_input_queue_of_the_run():
    import numpy as np
    import yaml

    from archgen.config.load import validate
    from archgen.planner.cost import training_bytes
    from archgen.planner.profiles import memory_profile
    from archgen.train.dataset import Case
    from archgen.train.memory import check_training_memory
    from archgen.train.setup import plan_training

    data = yaml.safe_load(CONFIG)
    data["train"].update(batch_size=8, precision="mixed_bfloat16", optimizer={"type": "sgd"})
    data["data"]["workers"] = 3
    setup = plan_training(validate(data))
    sample = Case("a", np.zeros((40, 40, 1), np.float32), np.zeros((40, 40), np.uint8))
    patch = int(np.prod(setup.window.patch))
    queue = (2 * 3 + 2 * 3 + 1) * patch * (4 + 1)  # per sample: 13 batches of float32 images and uint8 labels
    need = training_bytes(setup.plan, 8, "bfloat16", "momentum", memory_profile("tensorflow", "cpu")) + 8 * queue
    check_training_memory(setup, "tensorflow", sample, free=need)  # fits exactly
    with pytest.raises(Exception) as refused:
        check_training_memory(setup, "tensorflow", sample, free=need - 1)
    assert refused.value.path == "train.batch_size" and "the largest batch that fits is 7" in refused.value.message
    assert "mixed_bfloat16, sgd; memory profile tensorflow/cpu; with the 13 batches" in refused.value.message
    with pytest.raises(Exception) as refused:  # the step alone fits; with the queue it does not
        check_training_memory(setup, "tensorflow", sample, free=need - queue)
    assert "the largest batch that fits is 7" in refused.value.message
    with pytest.raises(Exception) as refused:
        check_training_memory(setup, "tensorflow", sample, free=1)
    assert "not even a batch of 1 fits: train on a smaller patch than 32x32 (data.patch_size)" in refused.value.message


@pytest.mark.slow
def test_a_folder_another_run_is_writing_is_refused(cli, workdir):
    """Two runs into one folder would both pass the checks and mix their files: the one that finds
    the folder locked stops, touching nothing."""
    import fcntl
    import os

    (workdir / "run").mkdir()
    fd = os.open(workdir / "run" / ".archgen-train.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the other run holds it
    try:
        code, out, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q", "--steps", "6")
        assert code == 2 and err == "error: --output=run: is being written by another archgen train; wait for it, " \
                                    "or choose another folder\n"
        assert sorted(p.name for p in (workdir / "run").iterdir()) == [".archgen-train.lock"]
    finally:
        os.close(fd)
    code, out, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q", "--steps", "6")
    assert code == 0, err
