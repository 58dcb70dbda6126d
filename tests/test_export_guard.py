"""build --format: a format the back end cannot write is refused before any work, and an ONNX
file that ONNX (or ONNX Runtime) rejects is never put in place."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from archgen import export
from archgen.errors import OutputError
from tests.conftest import CONF

TINY = [CONF / "unet_same.yaml", "input.shape=[16,16,1]", "encoder.depth=1", "encoder.filters=2"]


@pytest.fixture
def without(monkeypatch):
    """``without("jax2onnx")``: find_spec says the package is not installed."""
    real = importlib.util.find_spec
    gone: set[str] = set()

    def find_spec(name, *args, **kwargs):
        return None if name in gone else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    return gone.update


@pytest.mark.parametrize("backend, fmt, message", [
    ("torch", "saved_model", "--format=saved_model: the torch back end cannot write it: Keras's SavedModel export "
                             "fails on torch (torch.export refuses the input signature Keras gives it, even for a "
                             "one-layer model); use --backend tensorflow or jax"),
    ("jax", "litert", "--format=litert: the jax back end cannot write it: Keras exports LiteRT only from the "
                      "tensorflow and torch back ends; use --backend tensorflow or torch"),
    ("jax", "onnx", "--format=onnx: needs jax2onnx on the jax back end: pip install jax2onnx, or use --backend "
                    "tensorflow or torch"),
    ("torch", "litert", "--format=litert: needs litert_torch on the torch back end: pip install litert-torch, or use "
                        "--backend tensorflow"),
    ("tensorflow", "onnx", "--format=onnx: needs tf2onnx: pip install 'archgen[onnx]'"),
])
def test_a_format_the_back_end_cannot_write_is_refused_with_the_reason(without, backend, fmt, message):
    without({"jax2onnx", "litert_torch", "tf2onnx"})
    with pytest.raises(OutputError) as info:
        export.check_formats(["keras", fmt], backend)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


@pytest.mark.parametrize("backend, formats", [
    ("tensorflow", ["keras", "saved_model", "litert"]),
    ("jax", ["keras", "saved_model"]),
    ("torch", ["keras", "onnx"]),
])
def test_what_each_back_end_writes_is_accepted(backend, formats):
    export.check_formats(formats, backend)


def test_the_default_back_end_is_the_one_keras_will_use():
    """Without ``backend``, as ``select_backend`` picks it: ``$KERAS_BACKEND`` before Keras is imported."""
    code = "from archgen.export import check_formats\ncheck_formats(['keras', 'saved_model'])\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**_env(), "KERAS_BACKEND": "torch"})
    assert proc.returncode == 1 and "the torch back end cannot write it" in proc.stderr


def test_writing_refuses_a_format_the_models_back_end_cannot_write_before_any_file(tmp_path, monkeypatch):
    """The model's own back end is checked again as writing starts (the command line's check may
    not know ``--backend``): nothing is written, not even the formats that could be."""
    calls = []

    class Model:
        def save(self, path):
            calls.append(path)
            Path(path).write_text("model")

    monkeypatch.setattr(export, "_current_backend", lambda: "jax")
    (tmp_path / "m.keras").write_text("the old model")
    with pytest.raises(OutputError, match="^--format=litert: the jax back end cannot write it"):
        export.write_all(Model(), export.targets(tmp_path / "m", "m", ["keras", "litert"]), force=True)
    assert calls == [] and sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]
    assert (tmp_path / "m.keras").read_text() == "the old model"


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="pip install 'archgen[jax]'")
def test_build_on_jax_with_litert_is_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "m.keras").write_text("the old model")
    proc = subprocess.run([sys.executable, "-m", "archgen", "build", *map(str, TINY), "--backend", "jax",
                           "--format", "keras", "--format", "litert", "-o", str(tmp_path / "m"), "--force"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=_env())
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert lines[-1].startswith("error: --format=litert: the jax back end cannot write it"), proc.stderr
    assert "internal error" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]
    assert (tmp_path / "m.keras").read_text() == "the old model"


def _env() -> dict:
    import os

    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


# ONNX files are checked before they are put in place


def _onnx_model(path: Path, op: str) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    node = helper.make_node(op, ["x"], ["y"], name=f"net/act/{op}")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), str(path))
    return path


def test_an_onnx_file_with_ops_onnx_does_not_define_is_refused(tmp_path):
    path = _onnx_model(tmp_path / "m.onnx", "Erfc")  # what tf2onnx leaves of an exact GELU
    with pytest.raises(OutputError) as info:
        export.check_onnx(path)
    assert str(info.value) == (
        "--format=onnx: Keras's ONNX export wrote an invalid model: it holds operations ONNX does not define "
        "(left unconverted): Erfc (1); this network cannot be exported to ONNX here (nothing was written); "
        "--format keras, saved_model and litert do not go through ONNX")
    export.check_onnx(_onnx_model(tmp_path / "ok.onnx", "Relu"))


def test_without_onnx_onnx_runtime_judges_the_file(tmp_path, without):
    pytest.importorskip("onnxruntime")
    path = _onnx_model(tmp_path / "m.onnx", "Erfc")
    without({"onnx"})
    with pytest.raises(OutputError, match=r"^--format=onnx: Keras's ONNX export wrote an invalid model: ONNX Runtime "
                                          r"cannot load it: .*INVALID_GRAPH.*Erfc"):
        export.check_onnx(path)
    export.check_onnx(_onnx_model(tmp_path / "ok.onnx", "Relu"))


def test_build_refuses_an_onnx_file_onnx_runtime_would_not_load_and_keeps_the_old_outputs(cli, tmp_path,
                                                                                              monkeypatch):
    """An exact GELU is ``Erfc`` to tf2onnx, which it leaves unconverted and calls the export done
    (the Swin-UNETR and MedNeXt configs of conf/peers): the build is refused, in one line, and
    the outputs of the last build stay as they were."""
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnx")
    monkeypatch.chdir(tmp_path)
    for name in ("m.keras", "m.onnx"):
        (tmp_path / name).write_text("the old " + name)
    code, out, err = cli("build", *TINY, "encoder.block.activation=gelu", "--format", "keras", "--format", "onnx",
                         "-o", "m", "--force")
    assert (code, out) == (2, "") and err.count("\n") == 1, err
    assert err.startswith("error: --format=onnx: Keras's ONNX export wrote an invalid model: it holds operations "
                          "ONNX does not define (left unconverted): Erfc ("), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras", "m.onnx"]
    assert [(tmp_path / n).read_text() for n in ("m.keras", "m.onnx")] == ["the old m.keras", "the old m.onnx"]
