"""A config file is input from a stranger: every command and every sweep path keeps the same promises.

Single-file cases live in tests/corpus/ (run through ``validate``); here are the cases that need
a setup: every command and launcher, sweeps, signals, races and output paths.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.reference.seed_unet_counts import seed_unet_params

CORPUS = ROOT / "tests" / "corpus"
TINY = "input: {shape: [32, 32, 1]}\nencoder: {depth: 2, filters: 4}\nheads: [{name: logits, filters: 2}]\n"


def evil_config(folder: Path, marker: Path) -> Path:
    """A tiny U-Net plus a Hydra callback that would write ``marker``."""
    path = folder / "evil.yaml"
    path.write_text(TINY + "hydra:\n  callbacks:\n    a: {_target_: pathlib.Path.write_text, _args_: "
                    f"[{{_target_: pathlib.Path, _args_: [{marker}]}}, pwned]}}\n")
    return path


def archgen(*argv, cwd: Path, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([sys.executable, "-m", "archgen.cli", *map(str, argv)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=environ)


COMMANDS = [
    ("validate",), ("summary",), ("diagram",), ("summary", "encoder.depth=1"),
    ("summary", "-m", "encoder.depth=1,2"), ("summary", "-m", "encoder.depth=1,2", "hydra/launcher=basic"),
    ("build", "-m", "encoder.depth=1"), ("build", "encoder.depth=1"), ("diagram", "encoder.depth=1"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_hydra_block_is_refused_on_every_path(cli, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    code, out, err = cli(command[0], evil_config(tmp_path, marker), *command[1:])
    assert code == 2 and out == ""
    assert err.startswith("error: hydra: a config file may not set Hydra's own keys")
    assert "Hydra settings belong on the command line" in err and err.count("\n") == 1
    assert not marker.exists() and not (tmp_path / "multirun").exists()


@pytest.mark.slow
def test_a_hydra_block_is_refused_on_the_joblib_launcher(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    marker = tmp_path / "pwned"
    result = archgen("build", evil_config(tmp_path, marker), "-m", "encoder.depth=1,2", "hydra/launcher=joblib",
                     cwd=tmp_path)
    assert result.returncode == 2 and "Hydra settings belong on the command line" in result.stderr
    assert not marker.exists()


def test_group_files_chosen_on_the_command_line_are_checked_too(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "enc").mkdir()
    (tmp_path / "enc" / "small.yaml").write_text("depth: 1\n")
    (tmp_path / "enc" / "evil.yaml").write_text("# @package _global_\nhydra: {output_subdir: /tmp}\n")
    (tmp_path / "net.yaml").write_text(TINY)
    code, _, err = cli("validate", "net.yaml", "+enc@encoder=small")
    assert code == 2 and "enc/evil:hydra: a config file may not set Hydra's own keys" in err
    (tmp_path / "enc" / "evil.yaml").unlink()
    code, out, err = cli("validate", "net.yaml", "+enc@encoder=small")
    assert code == 0, err
    assert "1,650 params" in out  # depth 1, from the group file


def test_a_defaults_list_inside_the_folder_still_composes(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "enc").mkdir()
    (tmp_path / "enc" / "small.yaml").write_text("depth: 1\nfilters: ${..base}\n")
    (tmp_path / "net.yaml").write_text("defaults: [_self_, {enc@encoder: small}]\nbase: 4\n" + TINY)
    code, _, err = cli("validate", "net.yaml")
    assert code == 2 and "base=4: unknown key" in err  # composed, interpolated, then validated
    (tmp_path / "net.yaml").write_text("defaults: [_self_, {enc@encoder: small}]\n" + TINY.replace(
        "encoder: {depth: 2, filters: 4}\n", ""))
    (tmp_path / "enc" / "small.yaml").write_text("depth: 1\nfilters: 4\n")
    code, out, err = cli("summary", "net.yaml", "--json")
    assert code == 0, err
    # the default block and up-sampling are the paper's: its network at depth 1, 4 filters, by hand
    assert json.loads(out)["total_params"] == seed_unet_params(depth=1, filters=4)


@pytest.mark.parametrize("command", ["validate", "summary", "build", "diagram"])
def test_defaults_lists_in_a_loop_are_one_message(cli, tmp_path, monkeypatch, command):
    """net -> a -> b -> a: Hydra itself would recurse to Python's limit."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.yaml").write_text("defaults: [b]\n")
    (tmp_path / "b.yaml").write_text("defaults: [a]\n")
    (tmp_path / "net.yaml").write_text("defaults: [a, _self_]\n" + TINY)
    code, out, err = cli(command, "net.yaml")
    assert (code, out) == (2, "") and err.count("error:") == 1
    assert "which is already being read: the defaults lists form a loop" in err and not list(tmp_path.glob("net.*[!l]"))


def test_a_link_out_of_the_folder_is_refused(cli, tmp_path, monkeypatch):
    (tmp_path / "outside.yaml").write_text("depth: 1\n")
    conf = tmp_path / "conf"
    (conf / "enc").mkdir(parents=True)
    (conf / "enc" / "small.yaml").symlink_to(tmp_path / "outside.yaml")
    (conf / "net.yaml").write_text("defaults: [_self_, {enc@encoder: small}]\n" + TINY)
    code, _, err = cli("validate", conf / "net.yaml")
    assert code == 2 and "names a file outside the config's folder" in err


def test_a_file_that_would_shadow_the_checked_config_is_refused(cli, tmp_path):
    (tmp_path / "net.yaml").write_text(TINY)
    (tmp_path / "__archgen_config__.yaml").write_text("hydra: {output_subdir: /tmp}\n" + TINY)
    code, _, err = cli("validate", tmp_path / "net.yaml", "encoder.depth=1")
    assert code == 2 and "a config folder may not hold a file of this name" in err


@pytest.mark.parametrize("overrides", [(), ("decoder.skips=all",), ("name=other",)], ids=str)
@pytest.mark.parametrize("case", ["alias_bomb", "interpolation_bomb", "deep_nesting", "long_list", "huge_count",
                                  "many_digits", "too_many_layers", "float_1e300"])
def test_bombs_and_verdicts_are_the_same_with_and_without_overrides(cli, monkeypatch, case, overrides):
    monkeypatch.chdir(CORPUS)
    start = time.perf_counter()
    code, out, err = cli("validate", f"{case}.yaml", *overrides)
    assert time.perf_counter() - start < 30  # a bomb left to run takes minutes and gigabytes
    assert code == 2 and out == ""
    assert err == (CORPUS / f"{case}.expected").read_text()


def test_every_corpus_case_gets_one_verdict_with_and_without_overrides(cli, monkeypatch):
    monkeypatch.chdir(CORPUS)
    for case in sorted(CORPUS.glob("*.yaml")):
        expected = case.with_suffix(".expected").read_text()
        if "name" in expected.split(":")[1] or b"\nname:" in b"\n" + case.read_bytes():
            continue  # the override below would change what the case is about
        code, _, err = cli("validate", case.name, "name=other")
        assert (code, err) == (2, expected), case.name


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "folder"])
def test_a_path_that_is_not_a_regular_file_is_refused_at_once(cli, tmp_path, special):
    target = {"/dev/zero": Path("/dev/zero"), "fifo": tmp_path / "x.yaml", "folder": tmp_path}[special]
    if special == "fifo":
        os.mkfifo(target)
    code, _, err = cli("summary", target, "-m", "encoder.depth=1,2")
    assert code == 2
    assert "is not a regular file" in err or "is a directory" in err


def test_a_file_over_the_size_cap_is_refused(cli, tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(TINY + "# " + "x" * (1 << 20) + "\n")
    code, _, err = cli("validate", path)
    assert code == 2 and "a config may be at most 1,048,576 bytes (1 MiB)" in err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS as Linux counts it")
def test_a_small_file_is_read_without_reserving_the_bound(tmp_path):
    """A read reserves what it asks for: asking for the 4 GiB bound of a data file (not the 200
    bytes the file holds) failed with "out of memory" under ``ulimit -v 4000000``."""
    path = tmp_path / "case_0.npy"
    path.write_bytes(b"\x93NUMPY" + bytes(range(200)))
    code = ("import resource, sys; from archgen.config.read import read_bounded_file\n"
            "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
            f"raw = read_bounded_file({str(path)!r}, key='data.images', max_bytes=4 << 30)\n"
            "print(len(raw))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr[-300:]) == (0, "206\n", "")


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="no /proc here")
def test_a_file_that_states_no_size_is_read_to_its_end_and_no_further_than_the_bound():
    from archgen.config.read import read_bounded_file
    from archgen.errors import SpecError

    assert os.stat("/proc/self/maps").st_size == 0  # it grows as it is read: chunks until its end
    raw = read_bounded_file("/proc/self/maps", key="k", max_bytes=1 << 30)
    assert len(raw) > 1000 and raw.endswith(b"\n") and b"[stack]" in raw
    with pytest.raises(SpecError, match="^k=/proc/self/maps: is over 100 bytes; a config may be at most 100 bytes"):
        read_bounded_file("/proc/self/maps", key="k", max_bytes=100)


def test_a_file_that_grows_after_its_size_is_read_is_read_to_the_bound(tmp_path, monkeypatch):
    from archgen.config import read
    from archgen.errors import SpecError

    path = tmp_path / "grows.yaml"
    path.write_bytes(b"a: 1\n" * 50_000)  # 250,000 bytes, stated as 10: it grew after both stats
    real_stat, real_fstat = os.stat, os.fstat

    def small(info):
        return os.stat_result((*info[:6], 10, *info[7:]))

    with monkeypatch.context() as patch:
        patch.setattr(read.os, "stat", lambda p, *a, **k: small(real_stat(p, *a, **k)) if str(p) == str(path)
                      else real_stat(p, *a, **k))
        patch.setattr(read.os, "fstat", lambda fd: small(real_fstat(fd)))
        whole = read.read_bounded_file(path, key="k", max_bytes=300_000)
        with pytest.raises(SpecError, match=r"^k=.*: is over 200,000 bytes; a config may be at most"):
            read.read_bounded_file(path, key="k", max_bytes=200_000)
    assert whole == path.read_bytes()


def test_an_alias_bomb_is_refused_when_overrides_would_copy_the_tree(cli, monkeypatch):
    monkeypatch.chdir(CORPUS)
    code, _, err = cli("summary", "alias_bomb.yaml", "-m", "encoder.depth=1,2")
    assert code == 2 and "expands to more than 100,000 values" in err


@pytest.mark.parametrize("argv, message", [
    (("build", "--max-params", "nan"), "--max-params=nan: must be a finite number above 0"),
    (("build", "--max-params", "-5"), "--max-params=-5: must be a finite number above 0"),
    (("summary", "--sizes", "100000000"), "--sizes=100000000: must be between 1 and 10,000"),
    (("summary", "-m", "encoder.depth=range(0,1000000000)", "encoder.filters=1,2"),
     "the sweep would run more than 10,000 variants; pass --max-variants"),
    (("summary", "-m", "--max-variants", "3", "encoder.depth=1,2", "encoder.filters=1,2"), "more than 3 variants"),
    (("summary", "-m", "encoder.depth=interval(1,2)"), "interval() needs a sweeper that samples"),
    (("summary", "-m", "encoder.depth=range(1,"), "error: overrides: bad override"),
    (("build", "-m", "encoder.filters=range(1,inf)"),
     "overrides=encoder.filters=range(1,inf): range() takes finite numbers (not inf or nan)"),
    (("summary", "-m", "encoder.filters=range(1,nan)"), "range() takes finite numbers"),
    (("summary", "-m", "encoder.filters=range(nan,1,-1)"), "range() takes finite numbers"),
    (("summary", "-m", "encoder.filters=range(1,2,-inf)"), "range() takes finite numbers"),
    (("summary", "-m", "encoder.filters=range(0,1e308,1e-308)"), "more than 10,000 variants"),  # a float step
    (("summary", "-m", "encoder.filters=range(-1e308,1e308)"), "more than 10,000 variants"),
    (("summary", "-m", "encoder.filters=range(0,2,1e-5)"), "more than 10,000 variants"),
    (("summary", "-m", f"encoder.filters=range(0,{10**400})"), "more than 10,000 variants"),
    (("summary", "-m", "encoder.filters=range(5,1)"), "range(5,1): range() gives no values"),
    (("summary", "-m", "encoder.filters=range(1,3,0)"), "range() needs a step other than 0"),
    (("summary", "-m", "encoder.filters=range(true,3)"), "range() takes numbers"),
    (("summary", "-m", "encoder.depth=glob(*)"), "glob() picks options of a config group"),
    (("summary", "encoder.multiplier=nan"), "encoder.multiplier=nan: is not a finite number"),
    (("summary", "encoder.multiplier=inf"), "encoder.multiplier=inf: is not a finite number"),
    (("build", "input.shape=[100000,100000,1]", "padding=same"), "more than any single device holds"),
])
def test_absurd_numbers_and_sweeps_get_one_message(cli, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(TINY)
    code, out, err = cli(argv[0], "net.yaml", *argv[1:])
    assert code == 2 and message in err
    assert err.startswith("error: ") and "Traceback" not in err
    assert not list(tmp_path.glob("*.keras")) and not (tmp_path / "multirun").exists()


def test_the_memory_limit_can_be_raised(cli, tmp_path, monkeypatch):
    from archgen.planner import make_plan
    from archgen.planner.guard import check_size
    from archgen.config import load_spec

    (tmp_path / "net.yaml").write_text(TINY)
    plan = make_plan(load_spec(tmp_path / "net.yaml", ["input.shape=[100000,100000,1]", "padding=same"]))
    check_size(plan, max_memory=2**50)  # allowed when asked for
    code, _, err = cli("build", tmp_path / "net.yaml", "input.shape=[1024,1024,1]", "padding=same",
                       "--max-memory", "1MiB")
    assert code == 2 and "pass --max-memory" in err


def test_int64_overflow_is_refused_before_anything_is_written(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(TINY)
    code, _, err = cli("build", "net.yaml", "input.shape=[2147483647,2147483647,2147483647,1]", "padding=same",
                       "encoder.depth=0", "--format", "keras", "--format", "saved_model")
    assert code == 2 and "more than a 64-bit index counts" in err
    assert list(tmp_path.iterdir()) == [tmp_path / "net.yaml"]


def test_nothing_printed_can_drive_the_terminal(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(TINY)
    code, out, err = cli("summary", "net.yaml", "-m", "-q", "name='[red]b[/red]'", "encoder.depth=1,2")
    assert code == 1 and "name=[red]b[/red]" in out  # the markup is shown, not applied
    code, out, err = cli("summary", "net.yaml", "-m", "-q", "+note=':smile: [link=https://x]x[/link]'",
                         "encoder.depth=1,2", "hydra.sweep.dir=:dog:")
    assert code == 1 and "every variant: note=':smile: [link=https://x]x[/link]'" in out
    assert "note=:smile: [link=https://x]x[/link]: unknown key" in out and "results: :dog:/results.csv" in out
    code, out, err = cli("summary", "net.yaml", "-m", "-q", "name=a\x1b[2Jb", "encoder.depth=1,2")
    assert code == 2 and "\x1b" not in out + err and "\\x1b[2Jb" in err
    code, out, err = cli("validate", "net.yaml", "+\x1b]0;title\x07x=1")
    assert code == 2 and "\x1b" not in err and "\x07" not in err


# --- sweeps -----------------------------------------------------------------------------------

def test_a_sweep_folder_with_results_is_not_reused_silently(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(TINY)
    folder = tmp_path / "sweep"
    code, _, _ = cli("summary", "net.yaml", "-m", "-q", "encoder.depth=1,2", f"hydra.sweep.dir={folder}")
    assert code == 0
    (folder / "notes.txt").write_text("mine")
    code, _, err = cli("summary", "net.yaml", "-m", "-q", "encoder.depth=1,2,3", f"hydra.sweep.dir={folder}")
    assert code == 2 and "already holds files" in err and "--force" in err
    assert len(json.loads((folder / "results.json").read_text())) == 2
    code, _, err = cli("summary", "net.yaml", "-m", "-q", "--force", "encoder.depth=1,2,3", f"hydra.sweep.dir={folder}")
    assert code == 0, err
    assert len(json.loads((folder / "results.json").read_text())) == 3
    assert (folder / "notes.txt").read_text() == "mine"
    code, _, err = cli("summary", "net.yaml", "-m", "-q", "--force", "encoder.depth=1", "hydra/launcher=basic",
                       f"hydra.sweep.dir={folder}")
    assert code == 0, err
    rows = json.loads((folder / "results.json").read_text())
    assert [r["overrides"] for r in rows] == ["encoder.depth=1"]  # the older jobs 1 and 2 are not this sweep's


def test_build_sweep_honours_or_refuses_every_option(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(TINY)
    code, _, err = cli("build", "net.yaml", "-m", "encoder.depth=1,2", "-o", "x.keras")
    assert code == 2 and "--output" in err and "hydra.sweep.dir" in err
    code, _, err = cli("build", "net.yaml", "-m", "-q", "encoder.depth=1,2", "--max-params", "2000",
                       "hydra.sweep.dir=s")
    rows = json.loads((tmp_path / "s" / "results.json").read_text())
    assert code == 1 and [r["status"] for r in rows] == ["ok", "error"]
    assert "exceed the build limit of 2,000" in rows[1]["error"]


@pytest.mark.slow
def test_build_sweep_writes_every_format_and_precision(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(TINY)
    code, _, err = cli("build", "net.yaml", "-m", "-q", "encoder.depth=1,2", "--format", "keras", "--format",
                       "saved_model", "--precision", "mixed_bfloat16", "hydra.sweep.dir=s")
    assert code == 0, err
    import keras

    for row in json.loads((tmp_path / "s" / "results.json").read_text()):
        assert set(row["files"]) == {"keras", "saved_model"}
        assert Path(row["files"]["saved_model"], "saved_model.pb").exists()
        model = keras.saving.load_model(row["files"]["keras"], safe_mode=True)
        assert model.get_layer("enc1_conv1").dtype_policy.name == "mixed_bfloat16"


@pytest.mark.parametrize("overrides, message", [
    (("hydra/launcher=nonexistent",), "Hydra could not run the sweep"),
    (("hydra/launcher=joblib", "hydra.launcher.n_jobs=0"), "Hydra could not run the sweep"),
    # Hydra asserts without a word: the message names the settings typed, none of archgen's own
    (("hydra.sweeper.max_batch_size=0",), "could not run the sweep: AssertionError; check the Hydra settings "
                                          "typed: hydra.sweeper.max_batch_size=0\n"),
])
def test_hydra_errors_are_one_message(cli, tmp_path, monkeypatch, overrides, message):
    if "hydra/launcher=joblib" in overrides:
        pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(TINY)
    code, out, err = cli("summary", "net.yaml", "-m", "encoder.depth=1,2", *overrides)
    assert code == 2 and message in err
    assert err.count("error:") == 1 and "Traceback" not in err


@pytest.mark.slow
def test_a_killed_joblib_worker_is_a_killed_row_and_the_others_finish(tmp_path):
    """The slowest variant's worker is killed with SIGKILL while it builds; joblib's pool breaks,
    the variants that never started are run again, and the table has every row."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    (tmp_path / "net.yaml").write_text(TINY)
    proc = subprocess.Popen(
        [sys.executable, "-m", "archgen.cli", "build", "net.yaml", "-m", "-q",
         "encoder.filters=600,4,4,4,4", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweep.dir=s"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    slow = tmp_path / "s" / "0" / "started"
    deadline = time.time() + 120
    while not slow.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert slow.exists(), proc.communicate()
    time.sleep(0.3)
    os.kill(int(slow.read_text()), signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    rows = json.loads((tmp_path / "s" / "results.json").read_text())
    assert proc.returncode == 1, err
    assert len(rows) == 5 and (tmp_path / "s" / "results.csv").exists()
    statuses = {r["job"]: r["status"] for r in rows}
    assert statuses[0] == "killed"
    assert all(statuses[j] == "ok" for j in range(1, 5)), rows
    assert "1 of 5 variants failed" in err


# Put first on a child's PYTHONPATH: a joblib (loky) worker SIGKILLs itself as it starts, before it
# runs any job. "once": the first worker to start, at once; "key=value": any worker about to run
# the variant with that override, before Hydra makes its job folder (every time it is tried).
WORKER_KILLER = """
import os, signal
if b"popen_loky_posix" in open("/proc/self/cmdline", "rb").read():
    mode = os.environ.get("KILL_WORKER", "")
    if mode == "once":
        try:
            os.close(os.open(os.environ["KILL_MARK"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            os.kill(os.getpid(), signal.SIGKILL)
        except FileExistsError:
            pass
    elif mode:
        from hydra_plugins.hydra_joblib_launcher import _core

        run = _core.execute_job

        def execute_job(idx, overrides, *args):
            if any(o.lstrip("+") == mode for o in overrides):
                os.kill(os.getpid(), signal.SIGKILL)
            return run(idx, overrides, *args)

        _core.execute_job = execute_job
"""


@pytest.mark.parametrize("command, mode", [
    ("summary", "once"),
    pytest.param("summary", "encoder.filters=6", marks=pytest.mark.slow),
    pytest.param("build", "once", marks=pytest.mark.slow),
])
def test_a_joblib_worker_killed_as_it_starts_is_not_the_end_of_the_sweep(tmp_path, command, mode):
    """A worker killed before its first job (the pool breaks before any job folder exists) once
    ended the sweep with "Hydra could not run the sweep" and no rows. Now every variant has a row:
    a worker lost once costs nothing (its variants run again), and a variant whose worker dies
    each time it is tried is a ``killed`` row."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    if not Path("/proc/self/cmdline").exists():
        pytest.skip("the worker finds itself through /proc")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(WORKER_KILLER)
    (tmp_path / "net.yaml").write_text(TINY)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    result = archgen(command, "net.yaml", "-m", "-q", "encoder.filters=4,6,4,4,4", "hydra/launcher=joblib",
                     "hydra.launcher.n_jobs=2", "hydra.sweep.dir=s", cwd=tmp_path, timeout=300,
                     env={"PYTHONPATH": path, "KILL_WORKER": mode, "KILL_MARK": str(tmp_path / "killed")})
    assert "Hydra could not run the sweep" not in result.stderr, result.stderr
    rows = json.loads((tmp_path / "s" / "results.json").read_text())
    statuses = {r["job"]: r["status"] for r in rows}
    if mode == "once":
        assert (tmp_path / "killed").exists()  # a worker did die
        assert result.returncode == 0 and statuses == dict.fromkeys(range(5), "ok"), result.stderr
    else:
        assert result.returncode == 1 and statuses == {0: "ok", 1: "killed", 2: "ok", 3: "ok", 4: "ok"}, rows
        assert rows[1]["overrides"] == "encoder.filters=6" and "1 of 5 variants failed" in result.stderr


# --- outputs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("output", ["", "/", ".", "missing/x.keras", "x.txt"])
def test_outputs_that_cannot_be_written_are_refused_before_any_work(cli, tmp_path, monkeypatch, output):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(TINY)
    code, _, err = cli("build", "net.yaml", "-o", output)
    assert code == 2 and err.startswith("error: --output")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.yaml"]


def test_a_dangling_link_counts_as_an_existing_file(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(TINY)
    (tmp_path / "net.svg").symlink_to(tmp_path / "nowhere.svg")
    code, _, err = cli("diagram", "net.yaml", "-o", "net.svg")
    assert code == 2 and "already exists" in err
    assert not (tmp_path / "nowhere.svg").exists()


def test_force_never_deletes_a_folder_archgen_did_not_write(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(TINY)
    mine = tmp_path / "unet_saved_model"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    code, _, err = cli("build", "net.yaml", "--format", "saved_model", "--force")
    assert code == 2 and "is not a folder archgen wrote" in err
    assert (mine / "thesis.tex").read_text() == "years of work"


@pytest.mark.slow
def test_several_formats_are_written_all_or_none(cli, tmp_path, monkeypatch):
    import archgen.export

    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(TINY)
    real = archgen.export._writer

    def failing(model, fmt):
        if fmt == "saved_model":
            def fail(tmp):
                Path(tmp).mkdir()
                raise RuntimeError("simulated export failure")
            return fail
        return real(model, fmt)

    monkeypatch.setattr(archgen.export, "_writer", failing)
    code, _, err = cli("build", "net.yaml", "--format", "keras", "--format", "saved_model")
    assert code == 1 and "simulated export failure" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.yaml"]


def test_a_commit_that_loses_a_race_takes_back_what_it_placed(tmp_path):
    from archgen.errors import OutputError
    from archgen.output import commit, stage

    (tmp_path / "b.onnx").write_text("another process got here first")
    staged = []
    stage(tmp_path / "a.keras", lambda p: p.write_text("a"), suffix=".keras", into=staged)
    stage(tmp_path / "b.onnx", lambda p: p.write_text("b"), suffix=".onnx", into=staged)
    with pytest.raises(OutputError, match="created by another process"):
        commit(staged, force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.onnx"]
    assert (tmp_path / "b.onnx").read_text() == "another process got here first"


def _full_disk(written: bytes = b"partial"):
    """A writer that gets part of the way, then finds the disk full."""
    import errno

    def write(tmp):
        Path(tmp).write_bytes(written)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    return write


@pytest.mark.parametrize("force", [False, True])
def test_a_full_disk_is_one_error_naming_the_file_and_leaves_nothing(tmp_path, force):
    import errno

    from archgen.errors import OutputError
    from archgen.output import write_atomic

    target = tmp_path / f"{'out' * 20}.npy"  # longer than a value is shown whole
    if force:
        target.write_bytes(b"the old file")
    with pytest.raises(OutputError) as caught:
        write_atomic(target, _full_disk(), suffix=".npy", force=force)
    assert caught.value.render() == (f"--output: {target}: cannot be written: {os.strerror(errno.ENOSPC)}; "
                                     "nothing was written")  # the whole path, however long
    assert [p.name for p in tmp_path.iterdir()] == ([target.name] if force else [])
    if force:
        assert target.read_bytes() == b"the old file"


@pytest.mark.parametrize("code", ["EDQUOT", "EROFS", "EIO", "EFBIG"])
def test_other_storage_refusals_and_wrapped_ones_are_output_errors(tmp_path, code):
    import errno

    from archgen.errors import OutputError
    from archgen.output import write_atomic

    number = getattr(errno, code)

    def wrapped(tmp):  # a library that re-raises the OSError as its own error
        try:
            raise OSError(number, os.strerror(number))
        except OSError as exc:
            raise RuntimeError("could not save the model") from exc

    def text_only(tmp):  # ... or keeps only its text
        raise RuntimeError(f"Failed to write {tmp}: {os.strerror(number)}")

    for write in (wrapped, text_only):
        with pytest.raises(OutputError, match=re.escape(f"cannot be written: {os.strerror(number)}")):
            write_atomic(tmp_path / "m.keras", write, suffix=".keras")
        assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="a bug"):  # anything else is not the storage's doing
        write_atomic(tmp_path / "m.keras", lambda tmp: (_ for _ in ()).throw(RuntimeError("a bug")), suffix=".keras")


@pytest.mark.parametrize("call", ["link", "rename"])
def test_a_full_disk_while_putting_the_file_in_place_restores_the_old_one(tmp_path, monkeypatch, call):
    import errno

    from archgen import output
    from archgen.errors import OutputError

    target = tmp_path / "out.svg"
    target.write_text("old")
    staged = []
    output.stage(target, lambda tmp: tmp.write_text("new"), suffix=".svg", into=staged)
    real = getattr(os, call)

    def full(src, dst, *args, **kwargs):  # linking the new file in, or moving the old one aside
        if target in (Path(src), Path(dst)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, call, full)
    with pytest.raises(OutputError, match="out.svg: cannot be written: No space left on device"):
        output.commit(staged, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out.svg"] and target.read_text() == "old"


def test_a_full_disk_in_each_command_is_exit_2_and_one_line(cli, tmp_path, monkeypatch):
    """diagram through the command line; build's and predict's writers through their own code."""
    import errno

    import numpy as np

    from archgen import export
    from archgen.errors import OutputError
    from archgen.predict_cli import _write

    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(TINY)
    (tmp_path / "net.svg").write_text("the old drawing")
    real = Path.write_text

    def full(self, *args, **kwargs):
        if self.name.endswith(".tmp.svg"):
            real(self, "<svg")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    code, out, err = cli("diagram", "net.yaml", "-o", "net.svg", "--force")
    monkeypatch.undo()
    assert code == 2 and out == ""
    assert err == "error: --output=net.svg: cannot be written: No space left on device; nothing was written\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.svg", "net.yaml"]
    assert (tmp_path / "net.svg").read_text() == "the old drawing"

    class Model:  # what build's writer calls: model.save / model.export
        def save(self, path):
            _full_disk()(path)

        def export(self, path, **kwargs):
            Path(path).mkdir()
            _full_disk()(Path(path) / "saved_model.pb")

    for fmt in ("keras", "saved_model"):
        with pytest.raises(OutputError, match="cannot be written: No space left on device"):
            export.write_all(Model(), export.targets(None, "unet", ["keras", fmt]), force=False)
    monkeypatch.setattr(np, "save", lambda handle, array: _full_disk()(handle.name))
    with pytest.raises(OutputError, match="--output[:=].*pred.npy: cannot be written: No space left on device"):
        _write(tmp_path / "pred.npy", {"logits": np.zeros(3)}, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.svg", "net.yaml"]


@pytest.mark.parametrize("output", ["/proc/x.svg", "/sys/x.svg", "/proc/sys/x.svg", "ro/x.svg"])
def test_a_folder_that_cannot_be_written_is_one_error(cli, tmp_path, monkeypatch, output):
    """``os.access`` says yes to root, and for /proc; creating the file is what tells."""
    import errno
    import tempfile

    if output.startswith(("/proc", "/sys")) and not Path(output).parent.is_dir():
        pytest.skip(f"no {Path(output).parent} here")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(TINY)
    if output.startswith("ro/"):  # a read-only mount, as the kernel answers for one
        (tmp_path / "ro").mkdir()
        real = tempfile.mkstemp

        def read_only(*args, dir=None, **kwargs):
            if Path(dir).name == "ro":
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", read_only)
    for command in (("diagram", "-o", output), ("build", "-o", output.replace(".svg", ".keras"))):
        code, out, err = cli(command[0], "net.yaml", *command[1:])
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert err.startswith("error: --output=") and f"folder '{Path(output).parent}'" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.yaml"] + (["ro"] if output.startswith("ro/") else [])


def test_a_killed_writers_temporary_file_goes_with_the_next_write_and_nothing_else(cli, tmp_path, monkeypatch):
    """SIGKILL leaves the temporary file; the next write to the same target removes it, and only
    it: not a live writer's, not another target's, not a file of the user's."""
    from archgen.output import _host_tag, leftover_pattern

    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(TINY)
    killed = subprocess.run(
        [sys.executable, "-c", "import os, signal; from pathlib import Path; from archgen.output import write_atomic; "
         "write_atomic(Path('net.svg'), lambda tmp: (tmp.write_text('<sv'), os.kill(os.getpid(), signal.SIGKILL)), "
         "suffix='.svg')"], cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL
    (left,) = [p.name for p in tmp_path.iterdir() if p.name != "net.yaml"]
    assert leftover_pattern(tmp_path / "net.svg", ".svg").match(left), left
    dead, tag = killed.args and int(left.split(".")[2].split("-")[0]), _host_tag()
    kept = [f".net.{os.getpid()}-{tag}.abcd1234.tmp.svg",  # a live writer's (this process)
            f".net.{dead}-{'0' * 8 if tag != '0' * 8 else '1' * 8}.abcd1234.tmp.svg",  # another host's, recent
            f".other.{dead}-{tag}.abcd1234.tmp.svg",  # another target's
            f".net.{dead}-{tag}.abcd1234.tmp.dot",  # another suffix's
            f".net.{dead}-{tag}.abcd1234.tmp.svg.old", ".net.abcd1234.tmp.svg", "net.notes.tmp.svg",
            f"x.net.{dead}-{tag}.abcd1234.tmp.svg"]
    for name in kept:
        (tmp_path / name).write_text("keep")
    (tmp_path / f".net.{dead}-{tag}.linkto12.tmp.svg").symlink_to(tmp_path / "net.yaml")  # a link: left alone
    (tmp_path / f".net.{dead}-{tag}.folder12.tmp.svg").mkdir()  # not what a file target leaves
    stale = tmp_path / f".net.{dead}-{'0' * 8 if tag != '0' * 8 else '1' * 8}.abcd5678.tmp.svg"
    stale.write_text("another host's, untouched for two days")
    os.utime(stale, (time.time() - 2 * 86400,) * 2)
    code, _, err = cli("diagram", "net.yaml", "-o", "net.svg")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["net.yaml", "net.svg", *kept, f".net.{dead}-{tag}.linkto12.tmp.svg", f".net.{dead}-{tag}.folder12.tmp.svg"])
    assert (tmp_path / "net.yaml").read_text() == TINY


def test_a_killed_export_leaves_a_folder_the_next_one_removes(tmp_path):
    from archgen.output import write_atomic_dir

    target = tmp_path / "m_saved_model"
    killed = subprocess.run(
        [sys.executable, "-c", "import os, signal; from pathlib import Path; from archgen.output import write_atomic_dir; "
         f"write_atomic_dir(Path({str(target)!r}), lambda tmp: (tmp.mkdir(), (tmp / 'v').mkdir(), "
         "os.kill(os.getpid(), signal.SIGKILL)))"])
    assert killed.returncode == -signal.SIGKILL
    (left,) = tmp_path.iterdir()
    assert left.name.startswith(".m_saved_model.") and left.name.endswith(".tmp") and (left / "v").is_dir()
    write_atomic_dir(target, lambda tmp: tmp.mkdir())
    assert [p.name for p in tmp_path.iterdir()] == ["m_saved_model"]


@pytest.mark.slow
def test_two_builds_racing_for_one_output_one_wins(tmp_path):
    (tmp_path / "net.yaml").write_text(TINY)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    procs = [subprocess.Popen([sys.executable, "-m", "archgen.cli", "build", "net.yaml", "-o", "out.keras"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "--output" in loser and ("already exists" in loser or "another process" in loser)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.yaml", "out.keras"]


@pytest.mark.slow
def test_sigterm_leaves_no_temporary_file(tmp_path):
    (tmp_path / "net.yaml").write_text(TINY)
    proc = subprocess.Popen([sys.executable, "-m", "archgen.cli", "build", "net.yaml", "input.shape=[512,512,3]",
                             "encoder.filters=64", "encoder.depth=4", "--format", "keras", "--format", "saved_model"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    deadline = time.time() + 120
    while not any(p.name.endswith(".tmp.keras") or p.name.endswith(".tmp") for p in tmp_path.iterdir()):
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "error: terminated" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.yaml"]


@pytest.mark.parametrize("moment", ["probe", "create", "link", "rename"])
def test_a_sigterm_at_any_step_of_a_write_leaves_nothing(tmp_path, monkeypatch, moment):
    """The signal lands just after a system call made something on disk, before Python has kept
    its name: the file is still removed (the handler's raise waits for the step to end)."""
    import tempfile

    from archgen import output, termination

    monkeypatch.setattr(termination, "_requested", False)
    target, other = tmp_path / "out.keras", tmp_path / "model.onnx"
    other.write_text("old")
    made = []  # the step about to be interrupted: ("mkstemp", 1) is check_target's probe file

    def interrupted_after(module, name):
        real = getattr(module, name)

        def call(*args, **kwargs):
            result = real(*args, **kwargs)
            made.append(name)
            if (name, made.count(name)) == {"probe": ("mkstemp", 1), "create": ("mkstemp", 2),
                                             "link": ("link", 1), "rename": ("rename", 1)}[moment]:
                termination.on_sigterm()  # as if SIGTERM arrived just as the call returned
            return result
        monkeypatch.setattr(module, name, call)

    interrupted_after(tempfile, "mkstemp")
    interrupted_after(os, "link")
    interrupted_after(os, "rename")
    with pytest.raises(termination.Terminated):
        output.check_target(target, force=False, suffix=".keras")
        output.write_together([output.Output(target, lambda tmp: tmp.write_text("new"), ".keras"),
                               output.Output(other, lambda tmp: tmp.write_text("new"), ".onnx")], force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"] and other.read_text() == "old"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_sigterm_whose_exception_was_dropped_still_stops_the_write(tmp_path, monkeypatch):
    """Python drops an exception raised in a __del__ or a garbage-collector callback, and a
    signal handler's raise can land there; the recorded request still stops the commit."""
    from archgen import termination
    from archgen.output import write_atomic

    class Finalised:
        def __del__(self):
            termination.on_sigterm()  # as if SIGTERM arrived while this ran: the raise is dropped

    monkeypatch.setattr(termination, "_requested", False)
    target = tmp_path / "out.bin"

    def write(tmp):
        tmp.write_bytes(b"data")
        obj = Finalised()
        del obj  # "Exception ignored in ... __del__": the write carries on

    with pytest.raises(termination.Terminated):
        write_atomic(target, write, suffix=".bin")
    assert list(tmp_path.iterdir()) == []


def test_a_write_in_another_thread_does_not_hold_the_main_threads_sigterm(monkeypatch):
    import threading

    from archgen import termination

    monkeypatch.setattr(termination, "_requested", False)
    inside, release = threading.Event(), threading.Event()

    def hold():
        with termination.held():
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=hold)
    worker.start()
    inside.wait(10)
    try:
        with pytest.raises(termination.Terminated):
            termination.on_sigterm()  # the handler, in the main thread, while the worker holds
    finally:
        release.set()
        worker.join(10)
