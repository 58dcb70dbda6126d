"""A .keras file is input from a stranger: archgen checks it before Keras reads any of it.

Each crafted file starts from a real model archgen wrote and changes one thing. The function
payloads are live: plain ``keras.saving.load_model`` calls them (checked here), archgen does not.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import archgen
from archgen.errors import SpecError
from archgen.model_file import MAX_CONFIG_BYTES, check_model_file, load_model

TINY = ["encoder.depth=1", "encoder.filters=4", "input.shape=[32,32,1]", "padding=same"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    archgen.build_model("conf/unet.yaml", TINY).save(path)
    return path


def rewrite(source: Path, target: Path, change=None, extra: dict[str, bytes] | None = None,
            compression: int = zipfile.ZIP_STORED) -> Path:
    """A copy of ``source`` with its config.json passed through ``change`` and ``extra`` members added."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", compression) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "config.json" and change is not None:
                config = json.loads(data)
                data = change(config) or config
                data = data if isinstance(data, bytes) else json.dumps(data).encode()
            zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return target


def first_conv(config: dict) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Conv2D")


def function_entry(module: str, name: str) -> dict:
    return {"module": module, "class_name": "function", "config": name, "registered_name": "function"}


def test_archgen_loads_what_it_wrote(saved):
    import keras

    model = load_model(saved)
    x = np.random.default_rng(0).random((1, 32, 32, 1), dtype=np.float32)
    reference = keras.saving.load_model(saved, safe_mode=True)
    assert np.allclose(model.predict_on_batch(x), reference.predict_on_batch(x), atol=0)


def test_a_function_named_in_the_config_is_never_called(saved, tmp_path):
    """The payload of the report: a keras function as a layer argument. Keras's safe mode calls it;
    archgen refuses the file before Keras sees it."""
    import keras

    def change(config):
        first_conv(config)["config"]["activation"] = function_entry("keras.activations", "relu6")

    crafted = rewrite(saved, tmp_path / "crafted.keras", change)
    unguarded = keras.saving.load_model(crafted, safe_mode=True)  # the payload is live: Keras looks it up
    assert [getattr(layer, "activation", None).__name__ for layer in unguarded.layers[1:3]] == ["relu6", "relu"]
    with pytest.raises(SpecError, match="names a function"):
        load_model(crafted)
    with pytest.raises(SpecError, match="names a function"):
        check_model_file(crafted)


def test_predict_on_a_crafted_file_runs_nothing_and_writes_nothing(saved, tmp_path, cli):
    """End to end: the CLI refuses, exit 2, one line; the folder is as it was."""
    def change(config):
        first_conv(config)["config"]["kernel_initializer"] = function_entry("keras.visualization",
                                                                            "plot_image_gallery")

    crafted = rewrite(saved, tmp_path / "crafted.keras", change)
    image = tmp_path / "x.npy"
    np.save(image, np.zeros((32, 32, 1), np.float32))
    victim = tmp_path / "report.pdf"
    victim.write_bytes(b"%PDF precious")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = cli("predict", crafted, image, "-o", tmp_path / "y.npy")
    assert code == 2 and out == ""
    assert err.startswith("error: model=") and "names a function" in err and err.count("\n") == 1
    assert victim.read_bytes() == b"%PDF precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("entry", [
    {"module": "keras.layers", "class_name": "Lambda", "config": {}, "registered_name": None},
    {"module": "keras.layers", "class_name": "TFSMLayer", "config": {}, "registered_name": None},
    {"module": "keras.src.layers", "class_name": "Conv2D", "config": {}, "registered_name": None},
    {"module": "os", "class_name": "system", "config": {}, "registered_name": None},
    {"module": "keras.layers", "class_name": "Conv2D", "config": {}, "registered_name": "archgen>PositionEmbedding"},
    {"class_name": "__numpy__", "config": {"value": [1], "dtype": "float32"}},
    {"class_name": "__lambda__", "config": {"code": "AAAA"}},
])
def test_classes_archgen_never_writes_are_refused(saved, tmp_path, entry):
    def change(config):
        first_conv(config)["config"]["bias_initializer"] = entry

    with pytest.raises(SpecError, match="config.json names"):
        check_model_file(rewrite(saved, tmp_path / "c.keras", change))


def test_every_layer_kind_of_the_example_configs_is_allowed():
    """The allow-list covers what archgen writes: each file in conf/ (at a small size) passes."""
    import keras

    from archgen.model_file import _check_tree

    for path in sorted(Path("conf").glob("*.yaml")):
        model = archgen.build_model(path)
        config = json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
        _check_tree(config, "model", str(path))
        keras.backend.clear_session()


@pytest.mark.parametrize("change, message", [
    (lambda c: b'{"a": NaN}', "not a number JSON allows"),
    (lambda c: b'{"a": 1, "a": 2}', "duplicate key"),
    (lambda c: b'{"a": ' + b"9" * 5000 + b"}", "digits"),
    (lambda c: b"[" * 100_000 + b"]" * 100_000, "nests deeper|not valid JSON"),
    (lambda c: b"\xff\xfe{}", "not UTF-8"),
    (lambda c: b"[1, 2]", "does not hold a model"),
    (lambda c: {"config": {}}, "does not describe a functional model"),
])
def test_config_json_is_strict_json(saved, tmp_path, change, message):
    with pytest.raises(SpecError, match=message):
        check_model_file(rewrite(saved, tmp_path / "c.keras", change))


def test_deep_nesting_within_valid_json_is_refused(saved, tmp_path):
    def change(config):
        node = first_conv(config)["config"]
        for _ in range(100):
            node["x"] = {}
            node = node["x"]

    with pytest.raises(SpecError, match="nests deeper"):
        check_model_file(rewrite(saved, tmp_path / "c.keras", change))


@pytest.mark.parametrize("key, value", [("filters", 10**9), ("kernel_size", [3, 100_000])])
def test_layer_sizes_are_bounded(saved, tmp_path, key, value):
    def change(config):
        first_conv(config)["config"][key] = value

    with pytest.raises(SpecError, match=f"sets {key}="):
        check_model_file(rewrite(saved, tmp_path / "c.keras", change))


def test_archive_members_are_bounded(saved, tmp_path):
    # A member that declares far more than it stores (zeros deflate ~1000:1).
    bomb = rewrite(saved, tmp_path / "bomb.keras", extra={}, compression=zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("model.weights.h5.bak", b"\0" * (4 << 20))
    with pytest.raises(SpecError, match="holds 'model.weights.h5.bak'"):
        check_model_file(bomb)
    big_config = rewrite(saved, tmp_path / "ws.keras", lambda c: b" " * (MAX_CONFIG_BYTES + 1) + b"{}",
                         compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(SpecError, match="config.json is"):
        check_model_file(big_config)
    inflating = rewrite(saved, tmp_path / "inflate.keras", lambda c: json.dumps(c).encode() + b" " * (8 << 20),
                        compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(SpecError, match="zip bomb"):
        check_model_file(inflating)
    many = tmp_path / "many.keras"
    with zipfile.ZipFile(many, "w") as z:
        for i in range(1000):
            z.writestr(f"f{i}", b"")
    with pytest.raises(SpecError, match="holds 1,000 files"):
        check_model_file(many)


def test_not_a_zip_or_not_a_file(tmp_path):
    (tmp_path / "text.keras").write_text("hello")
    with pytest.raises(SpecError, match="not a .keras archive"):
        check_model_file(tmp_path / "text.keras")
    (tmp_path / "dir.keras").mkdir()
    with pytest.raises(SpecError, match="is a directory"):
        check_model_file(tmp_path / "dir.keras")
    with pytest.raises(SpecError, match="no such file"):
        check_model_file(tmp_path / "missing.keras")
    with pytest.raises(SpecError, match="expected a .keras file"):
        check_model_file(tmp_path / "model.h5")


def test_a_fifo_or_a_device_is_refused_without_reading(tmp_path):
    fifo = tmp_path / "fifo.keras"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match="not a regular file"):
        check_model_file(fifo)
    (tmp_path / "zero.keras").symlink_to("/dev/zero")
    with pytest.raises(SpecError, match="not a regular file"):
        check_model_file(tmp_path / "zero.keras")


def test_a_huge_declared_input_is_refused_before_anything_is_allocated(saved, tmp_path, monkeypatch):
    def change(config):
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "InputLayer":
                layer["config"]["batch_shape"] = [None, 60000, 60000, 1]

    crafted = rewrite(saved, tmp_path / "huge.keras", change)
    monkeypatch.setattr("archgen.model_file.available_memory", lambda: 16 * 2**30)
    with pytest.raises(SpecError, match="declares a fixed input of 60000x60000x1.*16.0 GiB this machine has free"):
        check_model_file(crafted)


def test_the_compile_settings_in_a_file_are_never_read(saved, tmp_path):
    """A model compiled by its user loads; what its compile settings name is never deserialized."""
    def change(config):
        config["compile_config"] = {"loss": function_entry("keras.visualization", "plot_image_gallery")}

    model = load_model(rewrite(saved, tmp_path / "compiled.keras", change))
    assert not getattr(model, "compiled", False)


def test_predict_tiled_with_a_path_goes_through_the_same_check(saved, tmp_path):
    from archgen.tiling import predict_tiled

    def change(config):
        first_conv(config)["config"]["activation"] = function_entry("keras.activations", "relu6")

    crafted = rewrite(saved, tmp_path / "crafted.keras", change)
    with pytest.raises(SpecError, match="names a function"):
        predict_tiled(str(crafted), np.zeros((32, 32, 1), np.float32))
    shutil.copy(saved, tmp_path / "ok.keras")
    out = predict_tiled(str(tmp_path / "ok.keras"), np.zeros((32, 32, 1), np.float32))
    assert out.shape == (32, 32, 2)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e300])
def test_an_image_with_nan_or_infinite_values_is_refused(saved, tmp_path, cli, value):
    image = np.zeros((40, 36, 1), np.float64)
    image[3, 5, 0] = value
    np.save(tmp_path / "x.npy", image)
    code, out, err = cli("predict", saved, tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "holds NaN or infinite values" in err and "[3, 5, 0]" in err
    assert not (tmp_path / "y.npy").exists()


def test_an_image_larger_than_free_memory_is_refused_before_it_is_read(saved, tmp_path, cli, monkeypatch):
    np.save(tmp_path / "x.npy", np.zeros((64, 64, 1), np.float32))
    monkeypatch.setattr("archgen.model_file.available_memory", lambda: 20_000)
    code, out, err = cli("predict", saved, tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert code == 2 and "more than the 0.0 GiB this machine has free" in err and err.startswith("error: input=")


def test_weights_files_are_checked_like_model_files(saved, tmp_path):
    from archgen.model_file import check_weights_file

    os.mkfifo(tmp_path / "w.weights.h5")
    with pytest.raises(SpecError, match="encoder.weights=.*not a regular file; expected a weights file"):
        check_weights_file(tmp_path / "w.weights.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(SpecError, match="not an HDF5 file"):
        check_weights_file(tmp_path / "text.h5")
    crafted = rewrite(saved, tmp_path / "extra.keras", extra={"assets/x": b"1"})
    with pytest.raises(SpecError, match="holds 'assets/x'"):
        check_weights_file(crafted)
    check_weights_file(saved)
    import h5py

    with h5py.File(tmp_path / "ok.weights.h5", "w") as f:
        f["a"] = np.zeros(3)
    check_weights_file(tmp_path / "ok.weights.h5")
