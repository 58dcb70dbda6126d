"""Every bad data folder in tests/corpus/train/ exits 2 with exactly the message beside it, and
leaves no run folder behind."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).parents[1] / "corpus" / "train"
CASES = sorted(p.with_suffix("").name for p in CORPUS.glob("*.expected"))


def test_the_corpus_holds_every_kind_of_bad_data():
    assert {"unpaired_image", "unpaired_mask", "size_mismatch", "labels_outside_classes", "image_smaller_than_patch",
            "volume_smaller_than_patch", "corrupt_png", "corrupt_nifti", "truncated_npy", "pickled_npy",
            "empty_validation", "data_is_a_file"} <= set(CASES)


def test_the_readme_count_is_current():
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"`tests/corpus/train/` holds {len(CASES)}\n  bad data cases" in readme


@pytest.mark.parametrize("case", CASES)
def test_bad_data_gives_its_exact_error(cli, case, monkeypatch, tmp_path):
    monkeypatch.chdir(CORPUS)
    config = f"{case}.yaml" if (CORPUS / f"{case}.yaml").exists() else "config.yaml"
    out_dir = tmp_path / "out"
    code, out, err = cli("train", config, "--data", case, "-o", out_dir, "-q")
    assert code == 2
    assert out == ""
    assert err == (CORPUS / f"{case}.expected").read_text(encoding="utf-8")
    assert not out_dir.exists()
