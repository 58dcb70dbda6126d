"""The README's test command installs exactly what CI (.ci/run) installs, with the same flags."""

from __future__ import annotations

import re
import shlex

from tests.conftest import ROOT


def installs(commands: list[str]) -> set[tuple[bool, str]]:
    """``(no_deps, requirement)`` for every package the ``pip install`` commands name."""
    found = set()
    for command in commands:
        words = shlex.split(command, comments=True)
        for start in [i for i, w in enumerate(words) if w == "install" and i and words[i - 1] == "pip"]:
            args = []
            for word in words[start + 1:]:
                if word in ("&&", ";", "|"):
                    break
                args.append(word)
            no_deps = "--no-deps" in args
            found |= {(no_deps, a) for a in args if not a.startswith("-")}
    return found


def test_readme_test_command_installs_what_ci_installs():
    readme = (ROOT / "README.md").read_text()
    (command,) = [line for line in readme.splitlines() if "pip install" in line and "pytest" in line]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if re.search(r"\bpip install\b", line)]
    assert installs([command]) == installs(ci)
    assert (False, ".[test,joblib,submitit,ray,onnx,jax,png,peers]") in installs(ci)
    assert (True, "hydra-ray-launcher==1.2.2") in installs(ci)
