"""``archgen predict`` on hostile inputs: every bad input is one ``error:`` line and exit 2.

A model whose fixed input makes its layer outputs too large for this machine, .npy headers with
shapes that cannot be mapped, a zip passed as .npy, a config that describes another model than
the one given, and output names with control characters.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import archgen
from archgen.errors import SpecError

TINY = ["encoder.depth=1", "encoder.filters=4", "padding=same"]
GiB = 2**30


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("robust")
    archgen.build_model("conf/unet.yaml", [*TINY, "input.shape=[32,32,1]"]).save(folder / "fixed.keras")
    archgen.build_model("conf/unet.yaml", [*TINY, "input.shape=[null,null,1]"]).save(folder / "free.keras")
    np.save(folder / "img.npy", np.random.default_rng(0).random((32, 32, 1), dtype=np.float32))
    return folder


def rewrite(source: Path, target: Path, change) -> Path:
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "config.json":
                config = json.loads(data)
                change(config)
                data = json.dumps(config).encode()
            zout.writestr(info.filename, data)
    return target


def input_layer(config: dict) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "InputLayer")


def one_error(code: int, out: str, err: str) -> str:
    assert code == 2, err
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "internal error" not in err
    return err


# --- 1. layer outputs of a fixed input too large to hold ------------------------------------------

def test_a_fixed_input_whose_layer_outputs_do_not_fit_is_refused_before_running(models, tmp_path, cli,
                                                                                 monkeypatch):
    """The red-team's midin.keras: a fixed input the input guard lets through (the input and one
    narrow output fit), whose layer outputs together do not: refused, nothing run or written."""
    import archgen.model_file

    big = rewrite(models / "fixed.keras", tmp_path / "midin.keras",
                  lambda c: input_layer(c)["config"].update(batch_shape=[None, 4096, 4096, 1]))
    monkeypatch.setattr(archgen.model_file, "available_memory", lambda: 1 * GiB)
    archgen.model_file.check_model_file(big)  # the input guard alone passes it

    def run_model(*_):
        raise AssertionError("the model must not run")

    monkeypatch.setattr("archgen.tiling.predict._run_model", run_model)
    err = one_error(*cli("predict", big, models / "img.npy", "-o", tmp_path / "k.npy"))
    assert err.startswith("error: model=") and ": is too large to run here: " in err  # the path may be shortened
    assert "layer outputs alive at once for one 4096x4096 tile" in err and "1.0 GiB this machine has free" in err
    assert not (tmp_path / "k.npy").exists()


def test_activation_bytes_counts_the_outputs_alive_at_once():
    import keras

    from archgen.tiling.predict import activation_bytes

    x = keras.Input((8, 8, 1))
    a = keras.layers.Conv2D(2, 1)(x)
    b = keras.layers.Conv2D(2, 1)(a)
    c = keras.layers.Concatenate()([a, b])
    # x (256 B) dies after a; a (512) lives until the concat, with b (512) and c (1024)
    assert activation_bytes(keras.Model(x, c)) == 2048
    y = keras.Input((None, None, 1))
    assert activation_bytes(keras.Model(y, keras.layers.Conv2D(2, 1)(y))) is None


def test_the_batch_shrinks_to_what_fits(models, monkeypatch):
    """Several tiles a call where one fits but four do not: fewer tiles a call, the same result."""
    import archgen.model_file
    from archgen.tiling import load_model, predict_tiled
    from archgen.tiling.predict import activation_bytes

    model = load_model(models / "fixed.keras")
    image = np.random.default_rng(1).random((4, 32, 32, 1), dtype=np.float32)
    reference = predict_tiled(model, image, batch_size=4)
    per_tile = activation_bytes(model)
    held = 4 * 32 * 32 * 4 + 4 * 32 * 32 * model.outputs[0].shape[-1] * 4
    monkeypatch.setattr(archgen.model_file, "available_memory", lambda: held + 2 * per_tile + 1)
    calls = []
    run = model.predict_on_batch
    monkeypatch.setattr(model, "predict_on_batch", lambda batch: calls.append(len(batch)) or run(batch))
    np.testing.assert_allclose(predict_tiled(model, image, batch_size=4), reference, atol=1e-6)
    assert calls == [2, 2]


def test_resizing_sizes_are_bounded(models, tmp_path, monkeypatch):
    import archgen.model_file
    from archgen.model_file import MAX_RESIZE, check_model_file

    def resizing(height, width):
        def change(config):
            layer = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Conv2D")
            layer["class_name"] = "Resizing"
            layer["config"] = {"name": layer["config"]["name"], "height": height, "width": width}
        return change

    over = rewrite(models / "fixed.keras", tmp_path / "over.keras", resizing(MAX_RESIZE + 1, 8))
    with pytest.raises(SpecError, match=f"sets height={MAX_RESIZE + 1:,} at .*archgen writes at most {MAX_RESIZE:,}"):
        check_model_file(over)
    monkeypatch.setattr(archgen.model_file, "available_memory", lambda: 1 * GiB)
    wide = rewrite(models / "fixed.keras", tmp_path / "wide.keras", resizing(MAX_RESIZE, MAX_RESIZE))
    with pytest.raises(SpecError, match="makes 1,048,576x1,048,576 maps: one channel takes 4,096.0 GiB"):
        check_model_file(wide)
    bad = rewrite(models / "fixed.keras", tmp_path / "bad.keras", resizing(0, 8))
    with pytest.raises(SpecError, match="expected a positive height and width"):
        check_model_file(bad)


# --- 2 and 5. .npy headers and zips ---------------------------------------------------------------

def npy_with_shape(path: Path, shape: tuple) -> Path:
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": shape})
        handle.write(b"\0" * 64)
    return path


@pytest.mark.parametrize("shape, message", [
    ((10**30, 32, 1), "its header gives axis 0 the size an integer of 31 digits; each axis holds 0 to 2,147,483,647"),
    ((-1, 32, 1), "its header gives axis 0 the size -1; each axis holds 0 to 2,147,483,647 values"),
    ((2**62, 2**62, 1), "its header gives axis 0 the size 4,611,686,018,427,387,904; each axis holds"),
    ((32, True, 1), "its header gives axis 1 the size True"),
    ((2**31 - 1, 2**31 - 1, 1), "holds 4,611,686,014,132,420,609 values: as float32 with a prediction"),
])
def test_npy_headers_that_cannot_be_mapped_are_one_error(models, tmp_path, cli, shape, message):
    image = npy_with_shape(tmp_path / "x.npy", shape)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        err = one_error(*cli("predict", models / "fixed.keras", image, "-o", tmp_path / "y.npy"))
    assert err.startswith("error: input=") and f": {message}" in err, err  # a long path is shortened
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]  # no numpy overflow warning


def test_a_zip_passed_as_npy_is_refused(models, tmp_path, cli):
    with open(tmp_path / "x.npy", "wb") as handle:
        np.savez(handle, a=np.zeros((32, 32, 1), np.float32))
    err = one_error(*cli("predict", models / "fixed.keras", tmp_path / "x.npy", "-o", tmp_path / "y.npy"))
    assert err.startswith("error: input=") and err.endswith(  # a long path is shortened
        ": is a zip (.npz) archive, not a .npy array; save one array with numpy.save\n")


def test_good_npy_files_of_every_version_still_load(models, tmp_path, cli):
    for version in ((1, 0), (2, 0), (3, 0)):
        path = tmp_path / f"v{version[0]}.npy"
        with open(path, "wb") as handle:
            np.lib.format.write_array(handle, np.ones((32, 32, 1), np.float32), version=version)
        code, _out, err = cli("predict", models / "fixed.keras", path, "-o", tmp_path / f"y{version[0]}.npy")
        assert code == 0, err


# --- 3. a config that does not describe the model ------------------------------------------------

def test_a_config_of_other_padding_is_refused_naming_the_config(models, tmp_path, cli):
    """Same-padding model, valid-padding config: equal parameter counts, other output sizes."""
    np.save(tmp_path / "big.npy", np.random.default_rng(2).random((70, 50, 1), dtype=np.float32))
    err = one_error(*cli("predict", models / "free.keras", tmp_path / "big.npy", "-o", tmp_path / "a.npy",
                         "--config", "conf/unet.yaml", *(f"--override={o}" for o in TINY),
                         "--override", "padding=valid", "--override", "input.shape=[null,null,1]"))
    assert err.startswith("error: --config=conf/unet.yaml: the config does not describe this model: for a tile of ")
    assert "the model's output" in err and not (tmp_path / "a.npy").exists()
    code, _out, err = cli("predict", models / "free.keras", tmp_path / "big.npy", "-o", tmp_path / "a.npy",
                         "--config", "conf/unet.yaml", *(f"--override={o}" for o in TINY),
                         "--override", "input.shape=[null,null,1]")
    assert code == 0, err


# --- 4. what predict prints is escaped ------------------------------------------------------------

def test_output_names_with_control_characters_are_printed_escaped(models, tmp_path, cli):
    target = tmp_path / "e\x1b]0;pwned\x07\nx.npy"
    code, out, err = cli("predict", models / "fixed.keras", models / "img.npy", "-o", target)
    assert code == 0, err
    assert target.exists()
    assert "\x1b" not in out and "\x07" not in out and out.count("\n") == 1
    assert out.startswith("wrote ") and "e\\x1b]0;pwned\\x07\\nx.npy" in out


# --- a tile far larger than the image; an output that is one of the inputs -----------------------

def test_a_free_size_tile_whose_widest_layer_cannot_fit_is_refused_before_padding(models, tmp_path, cli):
    """A tile of 2^30 a side would mirror-pad the image to 2^60 pixels: refused, one line, at once."""
    free = str(models / "free.keras")
    err = one_error(*cli("predict", free, models / "img.npy", "-o", tmp_path / "y.npy", "--config",
                         "conf/unet.yaml", *sum((["--override", o] for o in TINY), []),
                         "--override", "input.shape=[null,null,1]", "--tile-size", str(2**30)))
    assert "too large to run here" in err and f"one {2**30}x{2**30} tile" in err
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize("size", [2**31, 10**30])
def test_a_tile_size_beyond_any_input_size_is_refused(models, tmp_path, cli, size):
    err = one_error(*cli("predict", models / "free.keras", models / "img.npy", "-o", tmp_path / "y.npy",
                         "--tile-size", str(size)))
    assert "--tile-size" in err and "2,147,483,647" in err


@pytest.mark.parametrize("link", [False, True])
def test_the_output_may_not_be_the_image_it_reads_even_with_force(models, tmp_path, cli, link):
    image = tmp_path / "img.npy"
    image.write_bytes((models / "img.npy").read_bytes())
    target = image
    if link:
        target = tmp_path / "link.npy"
        target.symlink_to(image)
    before = image.read_bytes()
    err = one_error(*cli("predict", models / "fixed.keras", image, "-o", target, "--force"))
    assert "--output" in err and "is the image this command reads" in err
    assert image.read_bytes() == before


def test_a_model_file_with_another_models_weights_is_one_line(models, tmp_path, cli):
    """Keras warns once per layer it cannot fill, then fails: the user sees only archgen's line."""
    archgen.build_model("conf/unet.yaml", ["encoder.depth=1", "encoder.filters=8", "padding=same",
                                           "input.shape=[32,32,1]"]).save(tmp_path / "other.keras")
    mixed = tmp_path / "mixed.keras"
    with zipfile.ZipFile(models / "fixed.keras") as ours, zipfile.ZipFile(tmp_path / "other.keras") as other, \
            zipfile.ZipFile(mixed, "w") as out:
        for info in ours.infolist():
            source = other if info.filename.endswith(".h5") else ours
            out.writestr(info.filename, source.read(info.filename))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        err = one_error(*cli("predict", mixed, models / "img.npy", "-o", tmp_path / "y.npy"))
    assert "cannot load it" in err
    assert not [w for w in caught if "initialized" in str(w.message)]


@pytest.mark.parametrize("content", [b"", b"hello\n", b"\x80\x04K\x01."])
def test_a_file_without_numpys_header_is_not_read_as_a_pickle(models, tmp_path, cli, content):
    image = tmp_path / "x.npy"
    image.write_bytes(content)
    err = one_error(*cli("predict", models / "fixed.keras", image, "-o", tmp_path / "y.npy"))
    assert "does not start with NumPy's header" in err and "pickle" not in err
