"""A sweep on a launcher whose plugin is missing is refused with the command that installs it, and
archgen's own launcher configs, for a config outside conf/, with the search path that finds them;
in both cases before anything is written."""

from __future__ import annotations

import shutil
import sys

import pytest

from tests.conftest import ROOT

UNET = ROOT / "conf" / "unet.yaml"


@pytest.fixture
def without(monkeypatch):
    """``without(module)``: this process imports as if ``module`` were not installed."""
    return lambda module: monkeypatch.setitem(sys.modules, module, None)


@pytest.mark.parametrize("launcher, module, install", [
    ("joblib", "hydra_plugins.hydra_joblib_launcher", "Hydra's joblib launcher: pip install 'archgen[joblib]'"),
    ("submitit_local", "hydra_plugins.hydra_submitit_launcher",
     "Hydra's submitit launcher: pip install 'archgen[submitit]'"),
    ("slurm", "hydra_plugins.hydra_submitit_launcher", "Hydra's submitit launcher: pip install 'archgen[submitit]'"),
    ("local_processes", "hydra_plugins.hydra_submitit_launcher",
     "Hydra's submitit launcher: pip install 'archgen[submitit]'"),
    ("ray_local", "hydra_plugins.hydra_ray_launcher", "Ray and Hydra's Ray launcher: pip install 'archgen[ray]', "
                                                      "then pip install --no-deps hydra-ray-launcher==1.2.2"),
    ("ray_cluster", "ray", "Ray and Hydra's Ray launcher: pip install 'archgen[ray]', "
                           "then pip install --no-deps hydra-ray-launcher==1.2.2"),
])
def test_a_launcher_without_its_plugin_names_the_install(cli, without, tmp_path, monkeypatch, launcher, module,
                                                         install):
    monkeypatch.chdir(tmp_path)
    without(module)
    code, out, err = cli("summary", UNET, "-m", "encoder.depth=3,4", f"hydra/launcher={launcher}", "-q")
    assert (code, out) == (2, "")
    assert err == f"error: hydra/launcher={launcher}: needs {install}\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("launcher", ["ray_local", "ray_cluster", "slurm", "local_processes"])
def test_archgens_launcher_configs_outside_conf_name_the_search_path(cli, tmp_path, monkeypatch, launcher):
    shutil.copy(UNET, tmp_path / "unet.yaml")
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("build", "unet.yaml", "-m", "encoder.depth=3,4", f"hydra/launcher={launcher}", "-q")
    assert (code, out) == (2, "")
    assert err == (f"error: hydra/launcher={launcher}: is archgen's launcher config "
                   f"conf/hydra/launcher/{launcher}.yaml, which Hydra finds beside configs in conf/ only; for "
                   f"unet.yaml add 'hydra.searchpath=[file://{ROOT / 'conf'}]'\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unet.yaml"]


def test_the_search_path_the_error_names_finds_the_launcher(tmp_path):
    from archgen.sweep.launchers import check_launchers

    shutil.copy(UNET, tmp_path / "unet.yaml")
    check_launchers(tmp_path / "unet.yaml", ["hydra/launcher=ray_local", f"hydra.searchpath=[file://{ROOT / 'conf'}]"])
    check_launchers(UNET, ["hydra/launcher=ray_local"])  # beside a config in conf/
    assert (ROOT / "conf" / "hydra" / "launcher" / "ray_local.yaml").is_file()


def test_basic_and_unknown_launchers_are_left_to_hydra(tmp_path):
    from archgen.sweep.launchers import check_launchers

    check_launchers(UNET, ["hydra/launcher=basic", "hydra/launcher=mine", "encoder.depth=3"])
