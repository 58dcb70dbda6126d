"""What a ``hydra/launcher=...`` override needs, checked before the sweep starts: the plugin
package (with the command that installs it) and, for archgen's own launcher configs, a config
search path that holds them."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Sequence

from archgen.errors import SpecError

# Hydra's launcher plugins: the package each needs, what it is, and how to install it.
JOBLIB = ("hydra_plugins.hydra_joblib_launcher", "Hydra's joblib launcher", "pip install 'archgen[joblib]'")
SUBMITIT = ("hydra_plugins.hydra_submitit_launcher", "Hydra's submitit launcher", "pip install 'archgen[submitit]'")
RAY = ("hydra_plugins.hydra_ray_launcher", "Ray and Hydra's Ray launcher",
       "pip install 'archgen[ray]', then pip install --no-deps hydra-ray-launcher==1.2.2")
PLUGINS = {"joblib": [JOBLIB], "submitit_local": [SUBMITIT], "submitit_slurm": [SUBMITIT],
           "ray": [RAY], "ray_aws": [RAY]}
# archgen's launcher configs (conf/hydra/launcher/NAME.yaml) and the plugin config each extends.
ARCHGEN = {"slurm": "submitit_slurm", "local_processes": "submitit_local", "ray_local": "ray", "ray_cluster": "ray"}

_LAUNCHER = re.compile(r"^\+{0,2}hydra/launcher=(.+)$")


def check_launchers(config: Path, overrides: Sequence[str]) -> None:
    """Refuse a ``hydra/launcher=NAME`` whose plugin is not installed, naming the install
    command, or one of archgen's launcher configs that Hydra will not find beside ``config``
    (``hydra.searchpath`` not given), naming the search path."""
    root = config.parent
    for override in overrides:
        match = _LAUNCHER.match(override)
        if not match:
            continue
        name = match.group(1).strip()
        for module, what, install in PLUGINS.get(ARCHGEN.get(name, name), []):
            if not _installed(module) or (module == RAY[0] and not _installed("ray")):
                raise SpecError(f"needs {what}: {install}", path="hydra/launcher", value=name)
        if name in ARCHGEN and not (root / "hydra" / "launcher" / f"{name}.yaml").is_file() and not any(
                o.lstrip("+").startswith("hydra.searchpath=") for o in overrides):
            raise SpecError(f"is archgen's launcher config conf/hydra/launcher/{name}.yaml, which Hydra finds beside "
                            f"configs in conf/ only; for {_shown(config)} add "
                            f"'hydra.searchpath=[file://{_conf_folder()}]'", path="hydra/launcher", value=name)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module without a spec
        return False


def _conf_folder() -> str:
    """archgen's conf/ where archgen runs from its repository (an editable install), else a
    placeholder for it."""
    conf = Path(__file__).resolve().parents[2] / "conf"
    return str(conf) if (conf / "hydra" / "launcher").is_dir() else "/PATH/TO/archgen/conf"


def _shown(config: Path) -> str:
    from archgen.errors import printable

    return printable(str(config), 120)
