"""The README's quick start: two commands, each in its own environment, that pip runs without an
error; the test command installs exactly what CI (.ci/run) installs, with the same flags."""

from __future__ import annotations

import re
import shlex

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def quick_start() -> list[str]:
    start = README.index("## Quick start")
    block = re.search(r"```bash\n(.*?)```", README[start:], re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def steps(commands: list[str]) -> list[list[str]]:
    """Each ``&&``-, ``;``- or line-separated command as its words."""
    out = []
    for command in commands:
        words: list[str] = []
        for word in shlex.split(command, comments=True) + ["&&"]:
            if word in ("&&", ";", "|"):
                if words:
                    out.append(words)
                words = []
            else:
                words.append(word)
    return out


def pip_installs(commands: list[str]) -> list[tuple[bool, list[str]]]:
    """``(no_deps, requirements)`` for every ``pip install``, in order."""
    found = []
    for words in steps(commands):
        if "install" in words and words[words.index("install") - 1] == "pip":
            args = words[words.index("install") + 1:]
            found.append(("--no-deps" in args, [a for a in args if not a.startswith("-")]))
    return found


def installs(commands: list[str]) -> set[tuple[bool, str]]:
    return {(no_deps, req) for no_deps, reqs in pip_installs(commands) for req in reqs}


def ci_lines() -> list[str]:
    return [line for line in CI.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_readme_test_command_installs_what_ci_installs():
    (command,) = [line for line in quick_start() if "pytest" in line]
    assert installs([command]) == installs(ci_lines())
    assert (False, ".[test,joblib,submitit,ray,onnx,jax,png,peers]") in installs(ci_lines())
    assert (True, "hydra-ray-launcher==1.2.2") in installs(ci_lines())


def venv(command: list[str]) -> str:
    """The environment a command line makes and activates: they must be the same one."""
    (made,) = [w[-1] for w in steps(command) if w[:3] == ["python3", "-m", "venv"]]
    (activated,) = [w[1] for w in steps(command) if w[0] == "."]
    assert activated == f"{made}/bin/activate"
    return made


def test_the_two_quick_start_commands_use_two_environments():
    build, test = quick_start()
    assert "archgen build" in build and "pytest" in test
    assert venv([build]) == ".venv" and venv([test]) == ".venv-test"
    assert venv(ci_lines()) == ".venv-test"  # CI runs the README's test command where the README does
    assert ".venv-test/" in (ROOT / ".gitignore").read_text().splitlines()


def test_packages_without_their_dependencies_go_in_last():
    """pip checks the dependencies of what depends on the packages it installs: an install with
    dependencies after a --no-deps one would print the --no-deps package's missing ones in red."""
    for commands in (quick_start(), ci_lines()):
        order = [no_deps for no_deps, _ in pip_installs(commands)]
        assert True in order and order == sorted(order), order
