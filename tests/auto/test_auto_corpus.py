"""Every bad nnU-Net file in tests/corpus/auto/ exits 2 with exactly the message beside it.

``fp_NAME.json`` is run as ``archgen auto --fingerprint fp_NAME.json --classes 2``, ``ds_NAME.json``
as ``archgen auto --fingerprint fingerprint.json --dataset ds_NAME.json`` (a good fingerprint), both
from that folder; ``NAME.expected`` is the whole of stderr.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

CORPUS = Path(__file__).parents[1] / "corpus" / "auto"
CASES = sorted(CORPUS.glob("fp_*.json")) + sorted(CORPUS.glob("ds_*.json"))


def argv(case: Path) -> list[str]:
    if case.name.startswith("fp_"):
        return ["auto", "--fingerprint", case.name, "--classes", "2"]
    return ["auto", "--fingerprint", "fingerprint.json", "--dataset", case.name]


def test_corpus_is_big_enough_and_its_good_fingerprint_plans(cli, monkeypatch):
    assert len(CASES) >= 30 and all(case.with_suffix(".expected").is_file() for case in CASES)
    monkeypatch.chdir(CORPUS)
    code, out, err = cli("auto", "--fingerprint", "fingerprint.json", "--classes", "2", "--json")
    assert code == 0 and err == ""


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_bad_nnunet_file_gives_its_exact_error(cli, case, monkeypatch):
    monkeypatch.chdir(CORPUS)
    start = time.monotonic()
    code, out, err = cli(*argv(case))
    assert time.monotonic() - start < 10
    assert code == 2
    assert out == ""
    assert err == case.with_suffix(".expected").read_text(encoding="utf-8")
