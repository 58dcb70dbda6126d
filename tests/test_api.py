"""The Python API: archgen.load / plan / build_model from every form a config takes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import archgen
from archgen.errors import PlanError, SpecError
from tests.conftest import CONF, ROOT
from tests.reference.seed_unet_counts import seed_unet_params

UNET = CONF / "unet.yaml"
SMALL = {"name": "small", "input": {"shape": [64, 64, 1]}, "encoder": {"depth": 2, "filters": 4},
         "heads": [{"name": "out", "filters": 1}]}
SMALL_YAML = """
name: small
input: {shape: [64, 64, 1]}
encoder: {depth: 2, filters: 4}
heads: [{name: out, filters: 1}]
"""


def run_python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter (nothing imported yet); it prints one JSON object."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_and_plan_load_no_tensorflow():
    result = run_python(
        "import json, sys\n"
        "import archgen\n"
        "heavy = ('tensorflow', 'keras', 'hydra', 'omegaconf', 'pydantic', 'yaml')\n"
        "bare = sorted(m for m in heavy if m in sys.modules)\n"
        "plan = archgen.plan('conf/unet.yaml', ['encoder.depth=3'])\n"
        "after = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "print(json.dumps({'bare': bare, 'after': after, 'params': plan.total_params}))\n")
    assert result["bare"] == []
    assert result["after"] == []
    assert result["params"] == seed_unet_params(depth=3)  # the depth-3 seed U-Net, counted by hand


def test_plan_is_both_the_function_and_the_package_whoever_imports_it_first():
    result = run_python(
        "import json\n"
        "import archgen.planner.cost\n"  # the package first, as library code would
        "from archgen.planner import Plan, make_plan\n"
        "import archgen\n"
        "plan = archgen.plan('conf/unet.yaml')\n"
        "print(json.dumps({'is_plan': isinstance(plan, Plan), 'same': archgen.planner.make_plan is make_plan,"
        " 'cost': hasattr(archgen.planner, 'cost')}))\n")
    assert result == {"is_plan": True, "same": True, "cost": True}


def test_every_form_of_config_gives_the_same_spec(tmp_path):
    from omegaconf import OmegaConf

    path = tmp_path / "small.yaml"
    path.write_text(SMALL_YAML)
    overrides = ["encoder.depth=3", "padding=valid", "input.shape=[92,92,1]"]
    expected = archgen.load(str(path), overrides)
    assert expected.encoder.depth == 3 and expected.padding == "valid"
    one_line = ("{name: small, input: {shape: [64, 64, 1]}, encoder: {depth: 2, filters: 4}, "
                "heads: [{name: out, filters: 1}]}")
    forms = {"Path": path, "dict": SMALL, "YAML text": SMALL_YAML, "one-line YAML": one_line,
             "DictConfig": OmegaConf.create({"model": SMALL}).model, "ArchSpec": archgen.load(SMALL)}
    for form, config in forms.items():
        assert archgen.load(config, overrides) == expected, form


def test_a_dict_config_is_not_changed_by_overrides():
    data = {"input": {"shape": [64, 64, 1]}, "heads": [{"name": "out", "filters": 1}]}
    archgen.load(data, ["encoder.depth=1", "heads.0.filters=3"])
    assert data == {"input": {"shape": [64, 64, 1]}, "heads": [{"name": "out", "filters": 1}]}


def test_a_spec_takes_overrides_on_the_keys_it_was_made_with():
    spec = archgen.load(UNET)
    assert archgen.load(spec) == spec  # validated again: it may have been made without validation
    # conf/unet.yaml leaves the transposed conv's bias at its default; a full dump would pin it and
    # resize (which has no bias) would be refused.
    resized = archgen.load(spec, ["decoder.upsample.type=resize", "encoder.depth=3"])
    assert resized.decoder.upsample.type == "resize" and resized.encoder.depth == 3
    assert spec.encoder.depth == 4


def test_a_spec_made_without_validation_is_validated():
    from archgen.config.model import ArchSpec

    with pytest.raises(SpecError, match="input: is required"):
        archgen.plan(ArchSpec.model_construct())
    with pytest.raises(SpecError, match="encoder.depth"):
        archgen.plan(ArchSpec.model_construct(**{**dict(archgen.load(UNET)), "encoder": {"depth": -1}}))


@pytest.mark.parametrize("text, message", [
    ("missing.yaml", "config=missing.yaml: no such file"),
    ("conf/missing", "config=conf/missing: no such file"),  # one line, no colon: a path
    ("input: [1", "config: cannot be read as YAML"),  # one line with a colon: YAML text
    ("- 1\n- 2\n", "config"),  # YAML text that is not a mapping
])
def test_a_string_is_a_path_or_yaml_text_by_the_documented_rule(text, message):
    with pytest.raises(archgen.ArchgenError) as info:
        archgen.load(text)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("overrides", [
    ["encoder.dept=3"],
    ["input.shape=[570,570,1]"],
    ["encoder.depth=13"],
    ["heads.0.activation=softmax", "heads.0.filters=1"],
])
def test_errors_are_archgen_errors_with_the_command_lines_message(cli, overrides):
    code, _, err = cli("summary", UNET, *overrides)
    assert code == 2
    with pytest.raises(archgen.ArchgenError) as info:
        archgen.plan(UNET, overrides)
    assert f"error: {info.value}\n" == err


def test_one_override_may_be_a_string_and_bad_arguments_are_named():
    assert archgen.load(UNET, "encoder.depth=2").encoder.depth == 2
    with pytest.raises(SpecError, match=r"^overrides=int: expected a list of strings"):
        archgen.load(UNET, 3)
    with pytest.raises(SpecError, match=r"^config=int: expected a path, a mapping"):
        archgen.load(3)


def test_errors_from_a_dictconfig_carry_its_key_in_the_callers_config():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"model": SMALL, "runs": [{"model": SMALL}]})
    with pytest.raises(SpecError) as info:
        archgen.plan(cfg.model, ["encoder.depth=13"])
    assert str(info.value) == "model.encoder.depth=13: input should be less than or equal to 12"
    with pytest.raises(PlanError, match=r"^runs\[0\]\.model\.input\.shape=\[63, 64, 1\]: with encoder.depth=2"):
        archgen.plan(cfg.runs[0].model, ["input.shape=[63,64,1]"])
    with pytest.raises(SpecError, match=r"^model\.encoder\.dept=3: no such key \(did you mean 'depth'\?\)"):
        archgen.plan(cfg.model, ["encoder.dept=3"])
    cfg.model.encoder.depth = "${nowhere}"
    with pytest.raises(SpecError, match=r"^model\.encoder\.depth: cannot be resolved: Interpolation key 'nowhere'"):
        archgen.plan(cfg.model)
    # The root config has no key of its own: paths are the config's own.
    root = OmegaConf.create(SMALL)
    with pytest.raises(SpecError, match=r"^heads\[0\]\.filters=0: input should be greater"):
        archgen.plan(root, ["heads.0.filters=0"])


def test_a_missing_value_in_a_dictconfig_is_reported_as_required():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"model": {**SMALL, "input": {"shape": "???"}}})
    with pytest.raises(SpecError, match=r"^model\.input\.shape: is required"):
        archgen.load(cfg.model)


@pytest.mark.parametrize("name", ["enc1_conv1", "bottleneck_conv2", "input", "dec1_concat"])
def test_a_head_named_like_a_layer_is_refused(name):
    # A head's layer takes the head's name, so it must not be one the network already uses.
    with pytest.raises(PlanError) as info:
        archgen.plan(SMALL, [f"heads.0.name={name}"])
    assert str(info.value).startswith(f"heads[0].name={name}: output {name} would share its name with the layer")


def test_the_size_guard_speaks_of_the_api_and_stops_before_keras():
    code = ("import json, sys, archgen\n"
            "try:\n"
            "    archgen.build_model('conf/unet.yaml', ['encoder.filters=20000'])\n"
            "except archgen.ArchgenError as exc:\n"
            "    print(json.dumps({'error': str(exc), 'keras': 'keras' in sys.modules}))\n")
    result = run_python(code)
    assert result["error"].startswith("model: ")
    assert result["error"].endswith("; pass guard=False to build it anyway")
    assert result["keras"] is False


def test_an_unknown_backend_is_named_as_the_argument():
    with pytest.raises(archgen.ArchgenError, match=r"^backend=nope: unknown back end"):
        archgen.build_model(SMALL, backend="nope")


@pytest.mark.parametrize("value, shown", [
    (10**4300, "an integer of 4,301 digits"),  # the first past Python's int-to-str limit (4,300 digits)
    (-10**4400, "a negative integer of 4,401 digits"),
    (10**5000, "an integer of 5,001 digits"),
    (10**6000 - 1, "an integer of 6,000 digits"),
    (10**100_000, "an integer of 100,001 digits"),
], ids=["4301", "neg4401", "5001", "6000", "100001"])  # pytest's own str() of such ids would fail
def test_a_huge_integer_is_shown_by_its_digit_count(value, shown):
    from archgen.errors import format_value

    assert format_value(value) == shown
    with pytest.raises(SpecError) as info:
        archgen.plan({**SMALL, "encoder": {"depth": 2, "filters": value}})
    assert str(info.value).startswith(f"encoder.filters={shown}: ")


def test_a_value_whose_str_fails_is_shown_by_its_type():
    from archgen.errors import format_value

    class Boom:
        def __str__(self):
            raise RuntimeError("str boom")

    assert format_value(Boom()) == "a Boom"


def test_a_dict_nested_past_the_limit_is_refused_before_it_is_copied():
    deep = node = {}
    for _ in range(5000):  # past Python's recursion limit: copy.deepcopy would raise RecursionError
        node["a"] = {}
        node = node["a"]
    with pytest.raises(SpecError, match=r"^extra\.a(\.a)+: nests deeper than 32 levels"):
        archgen.plan({**SMALL, "extra": deep})


@pytest.mark.parametrize("value, kind", [((n for n in (64, 64, 1)), "generator"), (iter([64, 64, 1]), "list_iterator")])
def test_a_value_that_is_not_data_is_refused_naming_its_key(value, kind):
    with pytest.raises(SpecError, match=rf"^input\.shape: is a YAML {kind}; a config holds only"):
        archgen.plan({**SMALL, "input": {"shape": value}})


def test_a_shared_subtree_is_copied_not_aliased():
    block = {"type": "conv", "convs": 2}
    config = {**SMALL, "encoder": {"depth": 2, "filters": 4, "block": block}}
    spec = archgen.load(config, ["encoder.block.convs=1"])
    assert spec.encoder.block.convs == 1 and block == {"type": "conv", "convs": 2}


# Building models: Keras from here on.


def test_outputs_are_named_after_heads_and_train_with_a_loss_dict():
    keras = pytest.importorskip("keras")
    import numpy as np

    # conf/deep_supervision.yaml, small: three outputs, logits at 1/1, logits_dec2 at 1/2, logits_dec3 at 1/4.
    model = archgen.build_model(CONF / "deep_supervision.yaml",
                                ["input.shape=[32,32,1]", "encoder.depth=3", "encoder.filters=4"])
    assert model.output_names == ["logits", "logits_dec2", "logits_dec3"]
    assert [layer.name for layer in model.layers if layer.name.startswith("head")] == []
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer="adam", loss={name: loss for name in model.output_names})
    rng = np.random.default_rng(0)
    x = rng.random((2, 32, 32, 1), dtype="float32")
    y = {"logits": rng.integers(0, 4, (2, 32, 32)), "logits_dec2": rng.integers(0, 4, (2, 16, 16)),
         "logits_dec3": rng.integers(0, 4, (2, 8, 8))}
    history = model.fit(x, y, epochs=1, verbose=0).history
    for name in ("logits", "logits_dec2", "logits_dec3"):
        # four classes, random labels: each head's cross-entropy starts near log 4
        assert 0.5 < history[f"{name}_loss"][0] < 3.0, history
    assert history["loss"][0] == pytest.approx(sum(history[f"{n}_loss"][0] for n in model.output_names), rel=1e-4)


def test_one_head_compiles_with_a_loss_dict_keyed_by_its_name():
    pytest.importorskip("keras")
    import numpy as np

    model = archgen.build_model(SMALL, ["heads.0.name=mask", "heads.0.activation=sigmoid"])
    assert model.output_names == ["mask"]
    model.compile(optimizer="adam", loss={"mask": "binary_crossentropy"})
    x = np.zeros((2, 64, 64, 1), "float32")
    history = model.fit(x, np.ones((2, 64, 64, 1), "float32"), epochs=1, verbose=0).history
    assert 0.0 < history["loss"][0] < 2.0
    with pytest.raises(ValueError, match="Expected keys"):  # a wrong name is Keras's error, not silence
        model.compile(optimizer="adam", loss={"logits": "binary_crossentropy"})
        model.fit(x, np.ones((2, 64, 64, 1), "float32"), epochs=1, verbose=0)


def test_build_model_precision_and_a_bad_precision():
    pytest.importorskip("keras")
    model = archgen.build_model(SMALL_YAML, precision="mixed_bfloat16")
    assert model.get_layer("enc1_conv1").dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("out").compute_dtype == "float32"  # heads stay float32
    with pytest.raises(archgen.ArchgenError, match=r"^precision=float8: unknown precision"):
        archgen.build_model(SMALL_YAML, precision="float8")


def test_build_model_from_a_path_matches_its_plan():
    pytest.importorskip("keras")
    model = archgen.build_model(Path(UNET), ["input.shape=[188,188,1]", "encoder.filters=4"])
    planned = archgen.plan(UNET, ["input.shape=[188,188,1]", "encoder.filters=4"])
    assert model.count_params() == planned.total_params
    assert tuple(model.output.shape[1:]) == planned.output_shapes["logits"] == (4, 4, 2)


@pytest.mark.parametrize("extra, message", [
    ({"hydra": {"run": {"dir": "/tmp/elsewhere"}}}, "hydra: a config may not set Hydra's own keys"),
    ({"defaults": [{"hydra/launcher": "joblib"}, "_self_"]}, "defaults=[{hydra/launcher: joblib}, _self_]: "
                                                            "a defaults list names files"),
])
@pytest.mark.parametrize("overrides", [[], ["encoder.depth=1"]])
def test_config_data_may_not_reach_hydra_with_or_without_overrides(extra, message, overrides):
    with pytest.raises(SpecError) as info:
        archgen.load({**SMALL, **extra}, overrides)
    assert str(info.value).startswith(message)


# predict_tiled's own arguments


@pytest.fixture(scope="module")
def tiny_model():
    pytest.importorskip("keras")
    config = {**SMALL, "input": {"shape": [16, 16, 1]}, "padding": "same",
              "encoder": {"depth": 1, "filters": 2}, "heads": [{"name": "logits", "filters": 3}]}
    return config, archgen.build_model(config)


def test_predict_tiled_takes_any_form_of_config(tiny_model):
    import numpy as np
    from omegaconf import OmegaConf

    config, model = tiny_model
    image = np.random.default_rng(0).random((20, 24, 1), dtype="float32")
    expected = archgen.predict_tiled(model, image, plan=archgen.plan(config))
    for form in (config, OmegaConf.create(config), archgen.load(config)):
        np.testing.assert_allclose(archgen.predict_tiled(model, image, config=form), expected, atol=1e-6)


@pytest.mark.parametrize("config, message", [
    (3, r"^config=int: expected a path, a mapping"),
    ({**SMALL, "encoder": {"depth": 1, "filters": "x"}}, r"^encoder\.filters=x: "),
])
def test_predict_tiled_names_a_bad_config(tiny_model, config, message):
    import numpy as np

    with pytest.raises(archgen.ArchgenError, match=message):
        archgen.predict_tiled(tiny_model[1], np.zeros((16, 16, 1), "float32"), config=config)


@pytest.mark.parametrize("model, shown", [(None, "null"), (3, "3"), (object(), "object"), (b"m.keras", "b'm.keras'")])
@pytest.mark.parametrize("with_config", [False, True])
def test_predict_tiled_names_a_model_that_is_not_one(tiny_model, model, shown, with_config):
    import numpy as np

    extra = {"config": tiny_model[0]} if with_config else {}
    with pytest.raises(archgen.ArchgenError) as info:
        archgen.predict_tiled(model, np.zeros((16, 16, 1), "float32"), **extra)
    assert str(info.value) == f"model_or_path={shown}: expected a Keras model or the path of a .keras file"


def test_predict_tiled_names_a_plan_that_is_not_one(tiny_model):
    import numpy as np

    with pytest.raises(archgen.ArchgenError, match=r"^plan=dict: expected a plan from archgen.plan"):
        archgen.predict_tiled(tiny_model[1], np.zeros((16, 16, 1), "float32"), plan=tiny_model[0])


def test_predict_tiled_shows_a_string_tile_size_as_given(tiny_model):
    import numpy as np

    with pytest.raises(archgen.ArchgenError, match=r"^tile_size='?16'?: "):
        archgen.predict_tiled(tiny_model[1], np.zeros((16, 16, 1), "float32"), tile_size="16")
