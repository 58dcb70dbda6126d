"""archgen inside a user's own Hydra app: the schema node, overrides without '+', error paths,
and examples/hydra_app run as a user would (overrides, a -m sweep, a bad value)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest
import yaml

import archgen
import archgen.hydra_conf
from archgen.config.model import ArchSpec
from tests.conftest import ROOT

APP = ROOT / "examples" / "hydra_app"
CONF = APP / "conf"


def schema_keys(schema: dict, node: dict, prefix: str = "") -> set[str]:
    """Every dotted key the JSON Schema of the config allows (the keys of every ``type`` together)."""
    defs = schema["$defs"]
    keys = set()

    def models(node: dict) -> list[dict]:
        if "$ref" in node:
            return models(defs[node["$ref"].rsplit("/", 1)[1]])
        found = [node] if "properties" in node else []
        for alt in node.get("anyOf", []) + node.get("oneOf", []):
            found += models(alt)
        if node.get("type") == "array" and isinstance(node.get("items"), dict):
            found += models(node["items"])
        return found

    for model in models(node):
        for key, sub in model["properties"].items():
            keys.add(prefix + key)
            keys |= schema_keys(schema, sub, f"{prefix}{key}.")
    return keys


def node_keys(node, prefix: str = "") -> set[str]:
    keys = set()
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        # a list entry (heads[0]) adds no key of its own: the schema's item keys sit under the list
        path = prefix if isinstance(key, int) else prefix + key
        if not isinstance(key, int):
            keys.add(path)
        keys |= node_keys(value, path if isinstance(key, int) else path + ".")
    return keys


@pytest.fixture
def hydra_compose():
    """``compose(*overrides)`` -> the app's config, composed as ``python app.py OVERRIDES`` would."""
    from hydra import compose, initialize_config_dir

    archgen.hydra_conf.register()

    def run(*overrides: str):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3", job_name="test"):
            return compose(config_name="config", overrides=list(overrides))

    return run


def plain_model(name: str = "unet") -> dict:
    """conf/model/NAME.yaml as archgen reads a config: without the defaults list that merges the node."""
    data = yaml.safe_load((CONF / "model" / f"{name}.yaml").read_text())
    assert data.pop("defaults") == ["archgen", "_self_"]
    return data


def test_the_node_holds_every_key_of_the_schema(hydra_compose):
    from omegaconf import OmegaConf

    cfg = hydra_compose()
    composed = OmegaConf.to_container(cfg.model, resolve=True, throw_on_missing=False)
    expected = schema_keys(ArchSpec.model_json_schema(), ArchSpec.model_json_schema())
    # List entries (heads, encoder.stages, decoder.stages) are plain mappings: what the file gives
    lists = ("heads.", "encoder.stages.", "decoder.stages.", "train.heads.")
    assert node_keys(composed) == {k for k in expected if not k.startswith(lists)} | {"heads.name", "heads.filters"}
    assert {"encoder.downsample.kernel_size", "decoder.upsample.interpolation", "decoder.merge.inter_filters",
            "decoder.block.norm", "encoder.block.shortcut_kernel_size"} <= node_keys(composed)


def test_the_node_adds_nothing_a_file_would_not_mean():
    from omegaconf import OmegaConf

    # Every default of the node, merged with a config that sets only what it must, gives the
    # spec that config gives without the node.
    minimal = {"input": {"shape": [64, 64, 1]}, "heads": [{"name": "out", "filters": 1}]}
    node = OmegaConf.merge(OmegaConf.structured(archgen.hydra_conf.schema_node()), minimal)
    assert archgen.load(node) == archgen.load(minimal)
    for name in ("unet", "unet_valid"):
        file_cfg = OmegaConf.merge(OmegaConf.structured(archgen.hydra_conf.schema_node()), plain_model(name))
        assert archgen.load(file_cfg) == archgen.load(plain_model(name))


@pytest.mark.parametrize("overrides", [
    ["encoder.block.norm=batch", "encoder.depth=3"],
    ["decoder.upsample.type=resize", "decoder.block.type=residual", "decoder.merge.type=attention"],
    ["encoder.downsample.type=conv", "encoder.downsample.kernel_size=3", "encoder.downsample.activation=gelu"],
    ["heads.0.deep_supervision=[2]", "heads.0.activation=softmax", "encoder.max_filters=8"],
    ["decoder.block.norm=group", "decoder.block.groups=4"],
    ["padding=valid", "input.shape=[92,92,1]", "decoder.skips=[1]", "name=other"],
    ["encoder.block.se.ratio=4", "decoder.block.type=recurrent_residual", "encoder.transformer.embed_dim=32",
     "encoder.transformer.heads=4"],
])
def test_any_key_is_set_on_the_command_line_without_plus_as_archgen_sets_it(hydra_compose, overrides):
    cfg = hydra_compose(*[f"model.{o}" for o in overrides])
    # The same overrides through archgen's own loader (file data, its override grammar).
    assert archgen.load(cfg.model) == archgen.load(plain_model(), overrides)


@pytest.mark.parametrize("override, message", [
    ("model.encoder.detph=3", "model.encoder.detph=3: unknown key (did you mean 'depth'?)"),
    ("model.decoder.block.nrm=batch", "model.decoder.block.nrm=batch: unknown key (did you mean 'norm'?)"),
    ("model.decoder.upsample.kernl_size=3", "model.decoder.upsample.kernl_size=3: unknown key (did you mean "
                                            "'kernel_size'?)"),
    ("model.heads.0.filtrs=3", "model.heads[0].filtrs=3: unknown key (did you mean 'filters'?)"),
    ("model.encoder.stages=[{filters: 8}, {filters: 16, strid: 2}]",
     "model.encoder.stages[1].strid=2: unknown key (did you mean 'stride'?)"),
])
def test_a_key_the_schema_does_not_know_is_refused_by_archgen_with_its_path(hydra_compose, override, message):
    cfg = hydra_compose(override)  # Hydra composes it: the node is open
    with pytest.raises(archgen.ArchgenError) as info:
        archgen.load(cfg.model)
    assert str(info.value) == message
    assert "Node" not in str(info.value)


def test_a_misspelt_key_in_a_model_file_is_refused_by_archgen(tmp_path):
    from hydra import compose, initialize_config_dir

    archgen.hydra_conf.register()
    (tmp_path / "model").mkdir()
    (tmp_path / "config.yaml").write_text((CONF / "config.yaml").read_text())
    (tmp_path / "model" / "unet.yaml").write_text((CONF / "model" / "unet.yaml").read_text()
                                                  .replace("  depth: 2", "  detph: 2"))
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3", job_name="test"):
        cfg = compose(config_name="config")
    with pytest.raises(archgen.ArchgenError, match=r"^model\.encoder\.detph=2: unknown key \(did you mean 'depth'\?\)$"):
        archgen.load(cfg.model)


def test_the_apps_own_keys_stay_strict(hydra_compose):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="backnd"):
        hydra_compose("backnd=jax")


def test_a_key_of_another_kind_is_refused_with_its_full_key(hydra_compose):
    cfg = hydra_compose("model.encoder.downsample.activation=gelu")  # maxpool has no activation
    with pytest.raises(archgen.ArchgenError, match=r"^model\.encoder\.downsample\.activation=gelu: "
                                                   r"does not apply to type=maxpool"):
        archgen.load(cfg.model)


def test_overrides_apply_inside_a_running_hydra_app():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    archgen.hydra_conf.register()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3", job_name="test"):
        cfg = compose(config_name="config")
        assert archgen.plan(cfg.model, ["encoder.depth=3"]).depth == 3
        assert GlobalHydra.instance().is_initialized()  # the app's Hydra is left as it was
        assert compose(config_name="config", overrides=["model.encoder.depth=1"]).model.encoder.depth == 1


def test_register_at_the_top_level_for_an_app_whose_config_is_the_model(tmp_path):
    from hydra import compose, initialize_config_dir

    archgen.hydra_conf.register(group=None, name="archgen_model")
    (tmp_path / "net.yaml").write_text("defaults:\n  - archgen_model\n  - _self_\n"
                                       + yaml.safe_dump(plain_model()))
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3", job_name="test"):
        cfg = compose(config_name="net", overrides=["encoder.block.dropout=0.1"])
        assert archgen.load(cfg).encoder.block.dropout == 0.1
        # below the top level the node is open, as in a group; the top level is the app's root, which Hydra closes
        with pytest.raises(archgen.ArchgenError, match=r"^encoder\.detph=3: unknown key \(did you mean 'depth'\?\)"):
            archgen.load(compose(config_name="net", overrides=["encoder.detph=3"]))


# The app as a user runs it: a fresh process each time.


def run_app(tmp_path, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "HYDRA_FULL_ERROR": "1"}
    # cwd: Hydra writes its outputs/ and multirun/ folders there
    return subprocess.run([sys.executable, str(APP / "app.py"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


def built(stdout: str) -> list[int]:
    return [int(n.replace(",", "")) for n in re.findall(r"^built small_unet: ([\d,]+) parameters", stdout, re.M)]


def params(*overrides: str) -> int:
    return archgen.plan(plain_model(), list(overrides)).total_params


def test_app_builds_with_overrides(tmp_path):
    proc = run_app(tmp_path, "model.encoder.depth=3", "model.encoder.block.norm=batch")
    assert proc.returncode == 0, proc.stderr
    assert built(proc.stdout) == [params("encoder.depth=3", "encoder.block.norm=batch")]
    assert "outputs logits (64, 64, 2)" in proc.stdout


def test_app_sweeps_two_variants_with_the_basic_launcher(tmp_path):
    proc = run_app(tmp_path, "-m", "model.encoder.depth=2,3")
    assert proc.returncode == 0, proc.stderr
    assert built(proc.stdout) == [params("encoder.depth=2"), params("encoder.depth=3")]
    assert params("encoder.depth=2") != params("encoder.depth=3")
    assert len(list((tmp_path / "multirun").glob("*/*/[01]/.hydra/overrides.yaml"))) == 2


@pytest.mark.parametrize("args, message", [
    (["model.encoder.depth=13"], "error: model.encoder.depth=13: input should be less than or equal to 12\n"),
    (["model=unet_valid", "model.input.shape=[90,90,1]"],
     "error: model.input.shape=[90, 90, 1]: with encoder.depth=2 and padding=valid, enc2_pool gets 39 on axis H"),
])
def test_app_reports_a_bad_value_by_its_key_in_the_apps_config(tmp_path, args, message):
    proc = run_app(tmp_path, *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith(message), proc.stderr
    assert "built" not in proc.stdout


def readme_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Inside your own Hydra app")
    return readme[start:readme.index("\n## ", start + 1)]


@pytest.mark.parametrize("path, fence", [("app.py", "python"), ("conf/config.yaml", "yaml"),
                                         ("conf/model/unet.yaml", "yaml")])
def test_the_readme_shows_the_example_apps_files_as_they_are(path, fence):
    assert f"```{fence}\n{(APP / path).read_text(encoding='utf-8')}```" in readme_section()


def readme_errors() -> list[tuple[list[str], str]]:
    """The README's app commands that it shows with their error line: (arguments, that line)."""
    block = re.search(r"```bash\n(.*?)```", readme_section(), re.S).group(1).splitlines()
    found = []
    for command, answer in zip(block, block[1:]):
        if command.startswith("python examples/hydra_app/app.py ") and answer.startswith("error: "):
            found.append((shlex.split(command)[2:], answer))
    return found


def test_the_readme_shows_both_kinds_of_app_error():
    assert [args for args, _ in readme_errors()] == [["model.encoder.depth=13"], ["model.encoder.detph=3"]]


@pytest.mark.parametrize("args, line", readme_errors(), ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_app_errors_are_the_readmes_one_line(tmp_path, args, line):
    proc = run_app(tmp_path, *args)
    assert proc.returncode == 2
    assert proc.stderr == line + "\n"
    assert "built" not in proc.stdout


def test_plain_model_files_mean_what_the_app_builds():
    # unet_valid.yaml's comment promises 92x92 in, 52x52 out
    assert archgen.plan(plain_model("unet_valid")).output_shapes == {"logits": (52, 52, 2)}


def test_the_node_holds_a_backbone_encoder():
    """The encoder's node holds the keys of both kinds; a backbone config keeps only its own."""
    from omegaconf import OmegaConf

    from archgen.config.read import read_config_file
    from tests.conftest import CONF

    data = read_config_file(CONF / "peers" / "smp_unet_resnet50.yaml")
    node = OmegaConf.merge(OmegaConf.structured(archgen.hydra_conf.schema_node()), data)
    assert archgen.load(node) == archgen.load(data)
    assert archgen.load(node).encoder.name == "resnet50"


def test_a_backbone_is_chosen_on_the_command_line(hydra_compose):
    # The app's file sets U-Net keys (depth 2, filters 8): back at the node's defaults, they drop out.
    cfg = hydra_compose("model.encoder.type=backbone", "model.encoder.name=resnet50", "model.input.shape=[64,64,3]",
                        "model.encoder.depth=4", "model.encoder.filters=64")
    spec = archgen.load(cfg.model)
    assert spec.encoder.type == "backbone" and spec.encoder.name == "resnet50"
