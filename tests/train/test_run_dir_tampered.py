"""A run folder someone else changed: ``--resume`` (and ``--force``) refuse it with one line and exit
code 2, and never remove, follow or block on what they did not write.

One short run is trained once for the module; each test tampers with a copy of it."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import zipfile

import numpy as np
import pytest

from tests.train.helpers import shapes
from tests.train.test_train_cli import CONFIG

pytestmark = pytest.mark.slow  # the module's run trains (about 10-20 s on 2 CPU cores)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from archgen.cli import main

    base = tmp_path_factory.mktemp("trained")
    (base / "tiny.yaml").write_text(CONFIG)
    shapes(base / "data", count=8)
    cwd = os.getcwd()
    os.chdir(base)
    try:
        assert main(["train", "tiny.yaml", "--data", "data", "-o", "run", "-q"]) == 0
    finally:
        os.chdir(cwd)
    return base


@pytest.fixture
def work(trained, tmp_path, monkeypatch):
    for name in ("tiny.yaml", "data", "run"):
        source = trained / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, symlinks=True)
        else:
            shutil.copy(source, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def resume(cli, *extra):
    return cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q", "--resume", *extra)


def last(run):
    return sorted((run / "checkpoints").glob("step_*"))[-1]


def test_both_checkpoints_are_there(work):
    assert [p.name for p in sorted((work / "run" / "checkpoints").iterdir())][-1] == "step_000000012"
    assert (last(work / "run") / ".archgen").is_file()


# 1: a link inside the run folder is never followed ---------------------------------------------

def test_checkpoints_as_a_link_is_refused_and_what_it_points_at_is_kept(cli, work):
    outside = work / "outside"
    (outside / "step_000000001").mkdir(parents=True)
    (outside / "step_000000001" / "precious.txt").write_text("keep")
    shutil.copytree(work / "run" / "checkpoints", outside, dirs_exist_ok=True)
    shutil.rmtree(work / "run" / "checkpoints")
    (work / "run" / "checkpoints").symlink_to(outside)
    for extra in (["--resume", "--steps", "18"], ["--force"]):
        code, out, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q", *extra)
        assert code == 2 and out == ""
        assert err == "error: --output=run/checkpoints: is a symbolic link, where archgen train keeps a folder; it " \
                      "is left as it is: move it out of the run folder, or choose another run folder\n"
    assert (outside / "step_000000001" / "precious.txt").read_text() == "keep"
    assert (outside / "step_000000012" / "state.json").is_file()


def test_a_step_folder_without_archgen_marker_is_refused_and_kept(cli, work):
    mine = work / "run" / "checkpoints" / "step_000000001"
    mine.mkdir()
    (mine / "precious.txt").write_text("keep")
    code, out, err = resume(cli, "--steps", "18")
    assert code == 2
    assert err == "error: --output=run/checkpoints/step_000000001: has no .archgen marker: it is not a checkpoint " \
                  "archgen train wrote; move it out of the run folder\n"
    assert (mine / "precious.txt").read_text() == "keep"


def test_a_step_link_is_refused(cli, work):
    outside = work / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep")
    (work / "run" / "checkpoints" / "step_000000001").symlink_to(outside)
    code, _, err = resume(cli, "--steps", "18")
    assert code == 2
    assert err.startswith("error: --output=run/checkpoints/step_000000001: is a symbolic link, where archgen train "
                          "keeps a folder;")
    assert (outside / "precious.txt").read_text() == "keep"


def test_a_checkpoint_file_as_a_link_is_refused(cli, work):
    state = last(work / "run") / "state.json"
    (work / "elsewhere.json").write_text(state.read_text())
    state.unlink()
    state.symlink_to(work / "elsewhere.json")
    code, _, err = resume(cli)
    assert code == 2
    assert err.startswith("error: --output=run/checkpoints/step_000000012/state.json: is a symbolic link, where "
                          "archgen train keeps a file;")


def test_save_checkpoint_removes_only_marked_folders(tmp_path):
    from archgen.train.run_dir import RunDir, RunError, State

    run = RunDir(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)
    mine = run.checkpoints / "step_000000001"
    mine.mkdir()
    (mine / "precious.txt").write_text("keep")

    class Model:
        class optimizer:
            variables = []

        @staticmethod
        def save_weights(path):
            open(path, "wb").close()

    run.save_checkpoint(Model, State(epoch=1, step=2, log=[{"epoch": 1, "step": 2}]), best=False)
    assert (mine / "precious.txt").read_text() == "keep"  # no marker: not archgen's to remove
    assert (run.checkpoints / "step_000000002" / ".archgen").is_file()
    with pytest.raises(RunError, match="is not a checkpoint archgen train wrote"):
        run.save_checkpoint(Model, State(epoch=1, step=1, log=[{"epoch": 1, "step": 1}]), best=False)
    assert (mine / "precious.txt").read_text() == "keep"


# 2: where a file belongs, something else is refused, not removed --------------------------------

@pytest.mark.parametrize("name", ["log.csv", "metrics.json", "model.keras", "validation.png", "config.yaml"])
def test_a_folder_where_a_file_belongs_is_refused_and_kept(cli, work, name):
    target = work / "run" / name
    if target.exists():
        target.unlink()
    (target / "sub").mkdir(parents=True)
    (target / "sub" / "keep.txt").write_text("keep")
    for extra in (["--resume", "--steps", "18"], ["--force"]):
        code, out, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q", *extra)
        assert code == 2 and out == ""
        assert err == f"error: --output=run/{name}: is a folder, where archgen train keeps a file; it is left as it " \
                      "is: move it out of the run folder, or choose another run folder\n"
    assert (target / "sub" / "keep.txt").read_text() == "keep"


def test_a_fifo_or_link_where_a_file_belongs_is_refused(cli, work):
    (work / "run" / "metrics.json").unlink()
    os.mkfifo(work / "run" / "metrics.json")
    code, _, err = resume(cli)
    assert code == 2
    assert err.startswith("error: --output=run/metrics.json: is a FIFO, device or socket, where archgen train keeps a "
                          "file;")
    (work / "run" / "metrics.json").unlink()
    (work / "kept.json").write_text("{}")
    (work / "run" / "log.csv").unlink()
    (work / "run" / "log.csv").symlink_to(work / "kept.json")
    code, _, err = resume(cli)
    assert code == 2 and err.startswith("error: --output=run/log.csv: is a symbolic link")
    assert (work / "kept.json").read_text() == "{}"


# 3, 4: the checkpoint's arrays are checked before they are read ---------------------------------

def _resume_in_thread(cli, *extra):
    """resume() with a deadline: a FIFO opened for reading would block for ever."""
    result = {}
    thread = threading.Thread(target=lambda: result.update(value=resume(cli, *extra)), daemon=True)
    thread.start()
    thread.join(300)
    assert not thread.is_alive(), "--resume blocked"
    return result["value"]


@pytest.mark.parametrize("name", ["optimizer.npz", "model.weights.h5"])
def test_a_fifo_in_the_checkpoint_is_refused_without_blocking(cli, work, name):
    target = last(work / "run") / name
    target.unlink()
    os.mkfifo(target)
    try:
        code, _, err = _resume_in_thread(cli, "--steps", "18")
    finally:
        fd = os.open(target, os.O_RDWR | os.O_NONBLOCK)  # releases a reader blocked in open(), if any
        os.close(fd)
    assert code == 2
    assert err == f"error: --output=run/checkpoints/step_000000012/{name}: is a FIFO, device or socket, where " \
                  "archgen train keeps a file; it is left as it is: move it out of the run folder, or choose another " \
                  "run folder\n"


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    out = io.BytesIO()
    np.savez_compressed(out, **arrays)
    return out.getvalue()


def test_an_optimizer_member_declaring_a_huge_array_is_refused_before_it_is_read(cli, work):
    target = last(work / "run") / "optimizer.npz"
    with np.load(target) as saved:
        arrays = {name: saved[name] for name in saved.files}
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, array in arrays.items():
            if name != "v1":
                with archive.open(f"{name}.npy", "w") as member:
                    np.lib.format.write_array(member, array)
        with archive.open("v1.npy", "w", force_zip64=True) as member:  # 1 GiB of float32 in about 1 MB
            np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (2**28,)})
            chunk = bytes(2**24)
            for _ in range(2**30 // 2**24):
                member.write(chunk)
    assert target.stat().st_size < 8 * 2**20
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code, _, err = resume(cli, "--steps", "18")
    assert code == 2
    assert err.startswith("error: run/checkpoints/step_000000012/optimizer.npz: v1.npy holds 1,073,741,952 bytes "
                          "where variable ")
    assert err.endswith("; it does not fit this network; start over with --force\n")
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before  # KiB on Linux
    assert grown < 600 * 1024


def test_an_optimizer_member_of_another_shape_is_refused_from_its_header(cli, work):
    target = last(work / "run") / "optimizer.npz"
    with np.load(target) as saved:
        arrays = {name: saved[name] for name in saved.files}
    arrays["v1"] = np.zeros((2, 2), np.float32)
    target.write_bytes(_npz(arrays))
    code, _, err = resume(cli, "--steps", "18")
    assert code == 2
    assert err.startswith("error: run/checkpoints/step_000000012/optimizer.npz: v1.npy declares float32 [2, 2] where "
                          "variable ")
    arrays["v1"] = np.zeros(1, np.float32)
    arrays["extra"] = np.zeros(1)
    target.write_bytes(_npz(arrays))
    code, _, err = resume(cli, "--steps", "18")
    assert code == 2 and "optimizer.npz: holds " in err and "does not fit this network" in err
    target.write_bytes(b"not a zip")
    code, _, err = resume(cli, "--steps", "18")
    assert code == 2 and err.startswith("error: run/checkpoints/step_000000012/optimizer.npz: is not a readable .npz")


def test_a_checkpoint_restores_its_optimizer_state(work):
    """The header-checked reader gives the arrays np.load gives."""
    from archgen.train.checkpoint_files import read_optimizer

    target = last(work / "run") / "optimizer.npz"
    with np.load(target) as saved:
        arrays = [saved[f"v{i}"] for i in range(len(saved.files))]

    class Variable:
        def __init__(self, a):
            self.shape, self.dtype, self.path = a.shape, a.dtype.name, "v"

    values = read_optimizer(target, [Variable(a) for a in arrays])
    assert len(values) == len(arrays) and all(np.array_equal(a, b) and a.dtype == b.dtype
                                              for a, b in zip(values, arrays))
    fortran = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    with zipfile.ZipFile(target, "w") as archive:
        with archive.open("v0.npy", "w") as member:
            np.lib.format.write_array(member, fortran)
    assert np.array_equal(read_optimizer(target, [Variable(fortran)])[0], fortran)


# 5: state.json is checked whole when it is read ------------------------------------------------

def _state(run):
    path = last(run) / "state.json"
    return path, json.loads(path.read_text())


WHERE = "error: run/checkpoints/step_000000012/state.json: "


@pytest.mark.parametrize("change, message", [
    ({"epoch": 1e400}, "epoch=inf: expected a whole number from 1 to 12"),
    ({"step": 1e400}, "step=inf: expected a whole number from 12 to 12"),
    ({"step": "12"}, "step='12': expected a whole number from 12 to 12"),
    ({"seconds": 1e400}, "seconds=inf: expected a finite number of at least 0"),
    ({"step": 10**30}, "step=1000000000000000000000000000000: expected a whole number from 12 to 12"),
    ({"step": -5}, "step=-5: expected a whole number from 12 to 12"),
    ({"step": 6}, "step=6: expected a whole number from 12 to 12"),
    ({"epoch": -5}, "epoch=-5: expected a whole number from 1 to 12"),
    ({"epoch": True}, "epoch=true: expected a whole number from 1 to 12"),
    ({"seconds": -1}, "seconds=-1: expected a finite number of at least 0"),
    ({"seconds": "x\x1b[31m"}, "seconds='x\\x1b[31m': expected a finite number of at least 0"),
    ({"best": {"metric": "val_dice", "value": 0.5, "epoch": 1, "step": "abc"}},
     "best.step='abc': expected a whole number from 1 to 12"),
    ({"best": {"metric": "val_dice", "value": 0.5, "epoch": 1, "step": [1]}},
     "best.step=[1]: expected a whole number from 1 to 12"),
    ({"best": {"metric": "val_dice", "value": "abc", "epoch": 1, "step": 6}},
     "best.value='abc': expected a finite number"),
    ({"best": {"metric": "val_dice", "value": 0.5, "epoch": 1, "step": 60}},
     "best.step=60: expected a whole number from 1 to 12"),
    ({"best": [1]}, "best=[1]: expected a mapping (metric, value, epoch, step)"),
    ({"log": [1, 2]}, "log[0]=1: expected a mapping of column names to numbers"),
    ({"log": []}, "log=[]: expected a list of 2 rows (one per epoch)"),
])
def test_a_tampered_state_is_refused_naming_the_key(cli, work, change, message):
    path, data = _state(work / "run")
    data.update(change)
    path.write_text(json.dumps(data).replace("Infinity", "1e400"))  # JSON's largest number: Python reads inf
    code, out, err = resume(cli, "--steps", "18")
    assert code == 2 and out == ""
    assert err == f"{WHERE}{message}; the checkpoint is damaged; start over with --force\n"
    assert not (work / "run" / "checkpoints" / "step_000000018").exists()  # refused before any training


@pytest.mark.parametrize("text, message", [
    ('"seconds": NaN', "is not valid JSON"),
    ('"step": Infinity', "is not valid JSON"),
])
def test_nan_and_infinity_are_not_json(cli, work, text, message):
    path, data = _state(work / "run")
    key = text.split(":")[0].strip('"')
    raw = json.dumps(data).replace(f'"{key}": {json.dumps(data[key])}', text)
    assert text in raw
    path.write_text(raw)
    code, _, err = resume(cli)
    assert code == 2
    assert err == f"{WHERE}{message}: the checkpoint is damaged; start over with --force\n"


def test_a_state_log_cell_must_be_a_number(cli, work):
    path, data = _state(work / "run")
    data["log"][1]["loss"] = "=cmd|' /C calc'!A0"
    path.write_text(json.dumps(data))
    code, _, err = resume(cli)
    assert code == 2
    assert err == f"{WHERE}log[1].loss=\"=cmd|' /C calc'!A0\": expected a finite number; the checkpoint is " \
                  "damaged; start over with --force\n"


def test_a_run_without_resume_reports_a_tampered_state(cli, work):
    path, data = _state(work / "run")
    data["step"] = 10**30
    path.write_text(json.dumps(data))
    code, _, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q")
    assert code == 2 and err.startswith(WHERE + "step=")


def test_a_stray_file_in_checkpoints_is_refused_and_kept(cli, work):
    """--force clears checkpoints/ whole: a file archgen did not write there stops it first."""
    stray = work / "run" / "checkpoints" / "notes.txt"
    stray.write_text("keep")
    for extra in (["--resume", "--steps", "18"], ["--force"]):
        code, out, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q", *extra)
        assert (code, out) == (2, "")
        assert err == "error: --output=run/checkpoints: holds notes.txt, which archgen train did not write; move " \
                      "it out of the run folder\n"
    assert stray.read_text() == "keep"


def test_a_weights_file_declaring_a_huge_array_is_refused_from_its_metadata(cli, work):
    """A 28000x28000 float32 array in a few KB (chunked, never written): refused before Keras reads it."""
    import h5py

    target = last(work / "run") / "model.weights.h5"
    target.unlink()
    with h5py.File(target, "w") as h5:
        h5.create_dataset("layers/x/vars/0", shape=(28000, 28000), dtype="float32", chunks=(1000, 1000))
    assert target.stat().st_size < 64 * 1024
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code, _, err = resume(cli, "--steps", "18")
    assert code == 2 and err.startswith("error: run/checkpoints/step_000000012/model.weights.h5: array ")
    assert "declares 784,000,000 values where this network's largest weight has" in err
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) < 600 * 1024


def test_a_damaged_best_checkpoint_is_one_line(cli, work):
    """Resuming reads the last checkpoint; the end loads the best one's weights: a damaged best is an
    error of its own, not an internal one (where the best is the last, resuming reports it)."""
    state = json.loads((last(work / "run") / "state.json").read_text())
    best = work / "run" / "checkpoints" / f"step_{state['best']['step']:09d}" / "model.weights.h5"
    best.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    code, _, err = resume(cli, "--steps", "12")
    assert code == 2 and "checkpoint" in err and "internal error" not in err and "Traceback" not in err


def test_force_keeps_the_run_it_replaces_until_the_new_one_checkpoints(cli, work):
    """A replacement that fails before its first checkpoint (here it diverges) puts the old run back."""
    before = {p.relative_to(work / "run"): p.read_bytes() for p in (work / "run").rglob("*") if p.is_file()}
    code, _, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q", "--force",
                       "train.loss={type: tversky, alpha: 0, beta: 0, smooth: 0}")
    assert code == 2 and "training diverged" in err, err
    after = {p.relative_to(work / "run"): p.read_bytes() for p in (work / "run").rglob("*") if p.is_file()}
    assert after == before
    code, _, err = cli("train", "tiny.yaml", "--data", "data", "-o", "run", "-q", "--force", "--steps", "6")
    assert code == 0, err
    assert not (work / "run" / ".archgen-replaced").exists()
    assert sorted(p.name for p in (work / "run" / "checkpoints").iterdir()) == ["step_000000006"]
