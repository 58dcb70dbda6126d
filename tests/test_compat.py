"""archgen.compat against the installed releases: every function each module holds, and the
release range it was written for, which must be the range pyproject.toml pins.

A failure here after an upgrade names the internal that moved; the pin in pyproject.toml says
which compat module it protects."""

from __future__ import annotations

import inspect
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
import tomllib
from importlib.metadata import version

import pytest
from packaging.requirements import Requirement

from archgen.compat import hydra as hydra_compat
from archgen.compat import joblib as joblib_compat
from archgen.compat import keras as keras_compat
from tests.conftest import ROOT

MODULES = {"hydra": hydra_compat, "keras": keras_compat, "joblib": joblib_compat}


def pinned() -> dict[str, Requirement]:
    """Every requirement in pyproject.toml, dependencies and extras, by package name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    return {req.name: req for req in map(Requirement, lines)}


@pytest.mark.parametrize("name", MODULES)
def test_each_module_names_the_pinned_range_and_the_installed_release_is_in_it(name):
    written_for = Requirement(MODULES[name].WRITTEN_FOR)
    pin = pinned().get(written_for.name)
    assert pin is not None, f"pyproject.toml does not pin {written_for.name}, which archgen/compat/{name}.py needs"
    assert pin.specifier == written_for.specifier, f"archgen/compat/{name}.py was written for {written_for}; " \
                                                   f"pyproject.toml pins {pin}"
    installed = version(written_for.name)
    assert written_for.specifier.contains(installed, prereleases=True), f"{written_for.name} {installed} is " \
                                                                        f"outside {written_for}"


def test_each_pin_of_an_internal_says_which_compat_module_it_protects():
    lines = (ROOT / "pyproject.toml").read_text().splitlines()
    for name, module in MODULES.items():
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(f'"{module.WRITTEN_FOR}"'))
        above = []
        while lines[at - 1 - len(above)].strip().startswith("#"):
            above.append(lines[at - 1 - len(above)])
        assert any(f"archgen/compat/{name}.py" in line for line in above), (
            f"the pin {module.WRITTEN_FOR} in pyproject.toml needs a comment above it naming archgen/compat/{name}.py")


# hydra-core>=1.3,<1.4 ----------------------------------------------------------------------------

def test_hydra_1_3_override_parser_reads_sweeps_and_their_values():
    parser = hydra_compat.override_parser()
    assert parser is hydra_compat.override_parser()  # made once
    lst, rng, glob, plain, add = parser.parse_overrides(
        ["a=1,2", "b=range(0,6,2)", "group=glob(*,exclude=x*)", "c.d=[1,2]", "++e={f: 1}"])
    assert lst.is_sweep_override() and lst.is_discrete_sweep() and lst.key_or_group == "a"
    assert type(lst.value()).__name__ == "ChoiceSweep" and lst.value().list == [1, 2]
    assert type(rng.value()).__name__ == "RangeSweep"
    assert (rng.value().start, rng.value().stop, rng.value().step) == (0, 6, 2)
    assert type(glob.value()).__name__ == "Glob"
    assert (glob.value().include, glob.value().exclude) == (["*"], ["x*"])
    assert not plain.is_sweep_override() and plain.value() == [1, 2] and plain.package is None
    assert (plain.get_key_element(), plain.get_value_element_as_str()) == ("c.d", "[1,2]")
    assert add.is_force_add() and add.value() == {"f": 1} and add.input_line == "++e={f: 1}"
    assert parser.parse_override("~g").is_delete()
    assert not parser.parse_override("h=interval(0,1)").is_discrete_sweep()


def test_hydra_1_3_split_sweep_is_the_basic_sweepers_cross_product():
    parsed = hydra_compat.override_parser().parse_overrides(["a=1,2", "b=x", "c=range(3,5)"])
    assert hydra_compat.split_sweep(parsed) == [["a=1", "b=x", "c=3"], ["a=1", "b=x", "c=4"],
                                                ["a=2", "b=x", "c=3"], ["a=2", "b=x", "c=4"]]


def test_hydra_1_3_split_sweep_raises_hydras_error_on_a_bad_sweep():
    from hydra.errors import HydraException

    parsed = hydra_compat.override_parser().parse_overrides(["a=1,2", "b=interval(0,1)"])
    with pytest.raises(HydraException):
        hydra_compat.split_sweep(parsed)


def test_hydra_1_3_apply_overrides_changes_the_config_in_place():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"a": 1, "b": {"c": 2}, "d": 3})
    parser = hydra_compat.override_parser()
    hydra_compat.apply_overrides([parser.parse_override(o) for o in ["a=5", "++b={e: 4}", "~d", "+f=6"]], cfg)
    assert OmegaConf.to_container(cfg) == {"a": 5, "b": {"c": 2, "e": 4}, "f": 6}


def test_hydra_1_3_global_hydra_is_set_aside_and_restored(tmp_path):
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    def search_path() -> str:
        return str(GlobalHydra.instance().config_loader().get_search_path())

    (tmp_path / "outer").mkdir()
    (tmp_path / "inner").mkdir()
    with hydra_compat.global_hydra_set_aside():  # nothing to set aside
        assert not GlobalHydra.instance().is_initialized()
    with initialize_config_dir(str(tmp_path / "outer"), version_base="1.3"):
        outer = search_path()
        with hydra_compat.global_hydra_set_aside():
            assert not GlobalHydra.instance().is_initialized()
            with initialize_config_dir(str(tmp_path / "inner"), version_base="1.3"):  # compose may start
                assert "inner" in search_path() and "outer" not in search_path()
        assert GlobalHydra.instance().is_initialized()
        assert search_path() == outer and "outer" in outer
    assert not GlobalHydra.instance().is_initialized()


# keras>=3,<4 -------------------------------------------------------------------------------------

KERAS_WORKER = """
import json
import numpy as np
import keras
from archgen.compat.keras import SAMPLERS, jax_samplers_replaced, jax_seed_key
from keras.src.backend.jax import random as jax_random

calls = []
def fake(name):
    def sample(shape, *args, dtype=None, seed=None, **kwargs):
        calls.append([name, list(shape)])
        return np.zeros(shape, "float32")
    return sample

own = {name: getattr(jax_random, name) for name in SAMPLERS}
with jax_samplers_replaced(**{name: fake(name) for name in SAMPLERS}) as replaced:
    keras.random.uniform((2, 3), seed=1)
    keras.random.normal((4,), seed=1)
    keras.random.truncated_normal((5,), seed=1)
    glorot = keras.initializers.GlorotUniform(seed=3)((4, 5))
restored = all(getattr(jax_random, name) is own[name] for name in SAMPLERS)
key = np.asarray(jax_seed_key(7))
generator = keras.random.SeedGenerator(3)
first, second = np.asarray(jax_seed_key(generator)), np.asarray(jax_seed_key(generator))
print(json.dumps({"replaced": replaced, "calls": calls, "glorot_zero": bool((np.asarray(glorot) == 0).all()),
                  "restored": restored, "key": key.tolist(), "key_dtype": str(key.dtype),
                  "generator_advances": first.tolist() != second.tolist()}))
"""


def test_keras_3_jax_samplers_are_replaced_while_building_and_restored():
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", KERAS_WORKER], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replaced"] and result["restored"] and result["glorot_zero"]
    assert result["calls"] == [["uniform", [2, 3]], ["normal", [4]], ["truncated_normal", [5]], ["uniform", [4, 5]]]
    assert len(result["key"]) == 2 and result["key_dtype"].startswith("uint")
    assert result["generator_advances"]


def test_keras_3_nothing_is_replaced_where_keras_lacks_the_functions(monkeypatch):
    pytest.importorskip("jax")
    from keras.src.backend.jax import random as jax_random

    monkeypatch.delattr(jax_random, "jax_draw_seed")
    own = jax_random.uniform
    with keras_compat.jax_samplers_replaced(uniform=lambda *a, **k: None) as replaced:
        assert not replaced and jax_random.uniform is own


# joblib>=1.3,<1.7 --------------------------------------------------------------------------------

def test_joblib_1_3_to_1_6_pool_kills_records_the_live_workers_loky_kills_and_kills_them():
    from joblib.externals.loky import process_executor

    own = process_executor.kill_process_tree
    assert re.search(r"\bkill_process_tree\(", inspect.getsource(process_executor))  # called by its name there
    context = multiprocessing.get_context("spawn")
    alive, dead = context.Process(target=time.sleep, args=(60,)), context.Process(target=time.sleep, args=(0,))
    alive.start()
    dead.start()
    dead.join()
    with joblib_compat.pool_kills() as killed:
        assert process_executor.kill_process_tree is not own
        process_executor.kill_process_tree(dead)
        process_executor.kill_process_tree(alive)
        alive.join(timeout=30)
    assert killed == {alive.pid}
    assert alive.exitcode is not None and alive.exitcode != 0
    assert process_executor.kill_process_tree is own


def test_joblib_1_3_to_1_6_pool_kills_records_nothing_where_loky_has_no_such_function(monkeypatch):
    from joblib.externals.loky import process_executor

    monkeypatch.delattr(process_executor, "kill_process_tree")
    with joblib_compat.pool_kills() as killed:
        assert not hasattr(process_executor, "kill_process_tree")
    assert killed == set()


def test_keras_3_producer_names_the_layer_the_output_index_and_the_call_inputs():
    import keras

    from archgen.compat.keras import producer

    x = keras.Input((8, 8, 1), name="x")
    inner_in = keras.Input((8, 8, 1))
    inner = keras.Model(inner_in, [keras.layers.Conv2D(2, 1, name="a")(inner_in),
                                   keras.layers.MaxPooling2D(name="b")(inner_in)], name="inner")
    first, second = inner(x)
    y = keras.layers.Add(name="sum")([first, first])
    layer, index, inputs = producer(y)
    assert (layer.name, index, [t is first for t in inputs]) == ("sum", 0, [True, True])
    layer, index, inputs = producer(second)
    assert (layer.name, index, inputs[0] is x) == ("inner", 1, True)
    assert producer(x)[0].name == "x" and producer(x)[2] == []
    assert producer(object()) is None


def test_keras_3_calls_come_in_run_order_with_their_tensors():
    import keras

    from archgen.compat.keras import calls_in_run_order

    x = keras.Input((8, 8, 1), name="x")
    a = keras.layers.Conv2D(2, 1, name="a")(x)
    b = keras.layers.Conv2D(2, 1, name="b")(a)
    y = keras.layers.Add(name="sum")([a, b])
    model = keras.Model(x, y)
    calls = calls_in_run_order(model)
    names = [op.name for op, _, _ in calls]
    assert names.index("x") < names.index("a") < names.index("b") < names.index("sum")
    op, inputs, outputs = calls[names.index("sum")]
    assert [t is a for t in inputs] == [True, False] and outputs[0] is y
    assert calls_in_run_order(keras.layers.Dense(2)) is None
