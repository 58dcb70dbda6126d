"""examples/auto/: the README's `archgen auto --fingerprint` command runs on the sample files as
written, and the keys the README lists are the ones auto reads: without one of them it stops
naming it, without any other key the answer is the same."""

from __future__ import annotations

import json
import re
import shlex

import pytest

from tests.conftest import ROOT

SAMPLE = ROOT / "examples" / "auto"
README = (ROOT / "README.md").read_text(encoding="utf-8")
READ = {"dataset_fingerprint.json": ["spacings", "shapes_after_crop"],
        "dataset.json": ["channel_names", "labels", "numTraining"]}


def readme_command() -> list[str]:
    (line,) = [line for line in README.splitlines() if line.startswith("archgen auto --fingerprint")]
    return shlex.split(line)[1:]


@pytest.fixture
def answer(cli, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, err = cli(*readme_command())
    assert (code, err) == (0, ""), err
    return json.loads(out)


def test_the_readmes_command_runs_on_the_sample(answer):
    assert readme_command()[:4] == ["auto", "--fingerprint", "examples/auto/dataset_fingerprint.json", "--dataset"]
    assert {"2d", "3d_fullres"} <= set(answer["configurations"])
    assert answer["family"] == "resenc_m"


def test_the_readme_lists_the_keys_auto_reads():
    start = README.index("`examples/auto/` holds one of each")
    paragraph = README[start:README.index("\n\n", start)]
    for keys in READ.values():
        for key in keys:
            assert f"`{key}`" in paragraph, key


def with_sample(tmp_path, name: str, drop: str) -> list[str]:
    """The README's command on a copy of the sample with ``drop`` removed from file ``name``."""
    for file in READ:
        data = json.loads((SAMPLE / file).read_text())
        if file == name:
            del data[drop]
        (tmp_path / file).write_text(json.dumps(data))
    argv = readme_command()
    return [str(tmp_path / a[len("examples/auto/"):]) if a.startswith("examples/auto/") else a for a in argv]


@pytest.mark.parametrize("name, key", [(n, k) for n, keys in READ.items() for k in keys])
def test_without_a_key_the_readme_lists_auto_stops_naming_it(cli, tmp_path, name, key):
    code, out, err = cli(*with_sample(tmp_path, name, key))
    assert (code, out) == (2, "")
    prefix = "fingerprint" if name == "dataset_fingerprint.json" else "dataset"
    assert re.match(rf"error: {prefix}\.{key}\b", err), err


def unread() -> list[tuple[str, str]]:
    return [(name, key) for name in READ for key in json.loads((SAMPLE / name).read_text()) if key not in READ[name]]


def test_the_sample_holds_keys_auto_does_not_read():
    assert {key for _, key in unread()} >= {"foreground_intensity_properties_per_channel", "file_ending"}


@pytest.mark.parametrize("name, key", unread())
def test_without_any_other_key_the_answer_is_the_same(cli, tmp_path, answer, name, key):
    code, out, err = cli(*with_sample(tmp_path, name, key))
    assert (code, err) == (0, ""), err
    assert json.loads(out) == answer
