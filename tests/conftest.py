from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process: ``cli("summary", "conf/unet.yaml") -> (code, stdout, stderr)``."""
    from archgen.cli import main

    def run(*argv: str):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(autouse=True)
def omegaconf_env_resolver():
    """A sweep run in-process makes ``${oc.env:...}`` an error for the rest of the process, as the
    command line's own process should: the next test gets OmegaConf's own resolver back, whichever
    tests ran before it in this worker."""
    yield
    from omegaconf import OmegaConf
    from omegaconf.resolvers import oc

    OmegaConf.register_new_resolver("oc.env", oc.env, replace=True)


from hypothesis import HealthCheck, settings  # noqa: E402

# CI runs "ci"; `HYPOTHESIS_PROFILE=slow pytest -m slow` runs the long profile.
_common = dict(deadline=None, derandomize=False, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=30, **_common)
settings.register_profile("slow", max_examples=500, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
