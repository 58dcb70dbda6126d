"""The README's training commands, end to end: make the shapes, train examples/train/shapes.yaml,
sweep two variants; the Dice a small U-Net reaches on such data in a few hundred steps."""

from __future__ import annotations

import csv
import json
import re

import pytest

from tests.conftest import ROOT
from tests.train.helpers import shapes_module

README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE = ROOT / "examples" / "train" / "shapes.yaml"
# 300 steps of batch 8 on 38 training cases, 2 CPU cores: val_dice 0.87 to 0.89 over seeds 0-2;
# an untrained network scores about 0.2, one that predicts background everywhere 0.
DICE_AT_LEAST = 0.75


def test_the_readme_shows_the_commands_this_file_runs():
    section = README[README.index("## Training"):]
    assert "python examples/train/make_shapes.py data/shapes" in section
    assert "archgen train examples/train/shapes.yaml --data data/shapes -o runs/shapes" in section
    assert re.search(r"archgen train examples/train/shapes\.yaml --data data/shapes -o runs/sweep -m "
                     r"encoder\.depth=\S+ encoder\.filters=\S+", section)


@pytest.mark.slow
def test_the_example_trains_to_a_good_dice_and_the_sweep_ranks_it(cli, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert shapes_module().main(["data/shapes"]) == 0
    assert capsys.readouterr().out == "wrote 48 cases of 64x64 into data/shapes\n"
    code, out, err = cli("train", EXAMPLE, "--data", "data/shapes", "-o", "runs/shapes", "--json")
    assert code == 0, err
    metrics = json.loads((tmp_path / "runs" / "shapes" / "metrics.json").read_text())
    assert metrics["steps"] == 300 and metrics["params"] == 29_339
    assert metrics["val_dice"] > DICE_AT_LEAST, metrics
    assert json.loads(out)["val_dice"] == metrics["val_dice"]
    code, out, err = cli("train", EXAMPLE, "--data", "data/shapes", "-o", "runs/sweep", "-m", "encoder.filters=4,8",
                         "-q")
    assert code == 0, err
    with open(tmp_path / "runs" / "sweep" / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["encoder.filters"] for r in rows] in (["8", "4"], ["4", "8"])
    assert float(rows[0]["val_dice"]) >= float(rows[1]["val_dice"])
    assert float(rows[0]["val_dice"]) > DICE_AT_LEAST
