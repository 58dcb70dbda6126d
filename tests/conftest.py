from __future__ import annotations

import os
import re
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


def find_seed_notebook() -> Path | None:
    """The seed lecture (shared/seed/*.txt) in a folder beside the checkout or above it."""
    env = os.environ.get("ARCHGEN_SEED_DIR")
    dirs = [Path(env)] if env else [p / "shared" / "seed" for p in ROOT.parents]
    for d in dirs:
        files = sorted(d.glob("*.txt")) if d.is_dir() else []
        if files:
            return files[0]
    return None


def seed_unet_source() -> str:
    """The seed's hand-written U-Net cell, taken from the lecture text as it stands."""
    path = find_seed_notebook()
    if path is None:
        pytest.fail("the seed lecture (shared/seed/*.txt) is not beside this checkout; set ARCHGEN_SEED_DIR")
    text = path.read_text(encoding="utf-8")
    match = re.search(r"^inputs = layers\.Input.*?^model = tf\.keras\.Model\(.*?\)$", text, re.S | re.M)
    assert match, f"no U-Net cell found in {path}"
    return match.group(0)


from hypothesis import HealthCheck, settings  # noqa: E402

# CI runs "ci"; `HYPOTHESIS_PROFILE=slow pytest -m slow` runs the long profile.
_common = dict(deadline=None, derandomize=False, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=30, **_common)
settings.register_profile("slow", max_examples=500, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
