"""Every bad config in tests/corpus/ exits 2 with exactly the message beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(CORPUS.glob("*.yaml"))


def test_corpus_is_big_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_bad_config_gives_its_exact_error(cli, case, monkeypatch):
    monkeypatch.chdir(CORPUS)
    monkeypatch.delenv("ARCHGEN_ALLOW_ENV", raising=False)
    code, out, err = cli("validate", case.name)
    assert code == 2
    assert out == ""
    assert err == case.with_suffix(".expected").read_text(encoding="utf-8")
