"""Sweeps on a Ray cluster (hydra/launcher=ray_cluster and ray_local): the cluster is started
here on 127.0.0.1 with two CPUs and a small object store, shared by this file's tests, and
stopped at the end. Its workers were started before any sweep, so nothing reaches them through
the environment: the command, its options and the oc.env verdict travel with each job."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import CONF, ROOT
from tests.test_hostile import evil_config
from tests.test_sweep import SAME, VARIANTS, check_table, sweep_dir

pytestmark = pytest.mark.slow

# Ray otherwise swaps 127.0.0.1 for the machine's network address (and listens there). Token
# authentication with a token of this run's own, passed in the environment: no other process on
# the machine can use the cluster, and Ray writes no ~/.ray/auth_token (its default for a new one).
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    """This checkout first on the path: the cluster's workers import the archgen the tests run."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    inherited = {k: v for k, v in os.environ.items() if k not in ("ARCHGEN_ALLOW_ENV", "RAY_AUTH_TOKEN_PATH")}
    return {**inherited, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": path, **LOOPBACK, **extra}


@pytest.fixture(scope="module")
def ray_address():
    """``127.0.0.1:PORT`` of a one-node cluster; its environment allows oc.env on purpose (the
    tests show a sweep still follows the command line's choice)."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="see the README: hydra-ray-launcher and ray")
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent))
    if ray_cli is None:
        pytest.skip("the ray command is not installed beside this Python")
    # A short folder: Ray's socket paths inside it must stay under the 107 characters a socket may have.
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp" if os.path.isdir("/tmp") else None))
    port = free_port()
    log = (temp / "head.log").open("w")
    head = subprocess.Popen(
        [ray_cli, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", "--object-store-memory=80000000", f"--temp-dir={temp}",
         "--disable-usage-stats", f"--dashboard-port={free_port()}", f"--ray-client-server-port={free_port()}",
         f"--dashboard-agent-listen-port={free_port()}"],
        stdout=log, stderr=subprocess.STDOUT, env=child_env(ARCHGEN_ALLOW_ENV="1"), start_new_session=True)
    try:
        deadline = time.time() + 120
        while "Ray runtime started" not in (temp / "head.log").read_text():
            if head.poll() is not None or time.time() > deadline:
                pytest.fail(f"the Ray head did not start:\n{(temp / 'head.log').read_text()[-3000:]}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        stop(head)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def stop(head: subprocess.Popen) -> None:
    """SIGTERM to `ray start --block` stops its node gracefully (~4 s); whatever of its process
    group is left after a minute is killed."""
    head.send_signal(signal.SIGTERM)
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(head.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    head.wait(timeout=10)


def archgen_on(address: str, *argv, cwd: Path, **env: str) -> subprocess.Popen:
    """archgen on the cluster through conf/hydra/launcher/ray_cluster.yaml (the search path finds
    it for a config outside conf/ too)."""
    return subprocess.Popen(
        [sys.executable, "-m", "archgen.cli", *map(str, argv), "hydra/launcher=ray_cluster",
         f"hydra.launcher.ray.init.address={address}", f"hydra.searchpath=[file://{CONF}]"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(**env))


def test_build_sweep_on_a_ray_cluster(ray_address, tmp_path):
    proc = archgen_on(ray_address, "build", SAME, "-m", *VARIANTS, "--precision", "mixed_bfloat16", cwd=tmp_path)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, err
    rows = check_table(tmp_path, err, built=True)  # built: the command reached the workers
    import keras

    model = keras.saving.load_model(rows[0]["model"], safe_mode=True)
    assert model.get_layer("enc1_conv1").dtype_policy.name == "mixed_bfloat16"  # and so did its options
    assert [r["swept"] for r in rows[:2]] == [{"input.shape": [32, 32, 1], "encoder.filters": 2},
                                              {"input.shape": [32, 32, 1], "encoder.filters": 4}]
    workers = {int((sweep_dir(tmp_path) / str(r["job"]) / "started").read_text()) for r in rows}
    assert proc.pid not in workers  # the variants ran in the cluster's processes


def test_a_hydra_block_is_refused_before_the_cluster_sees_it(ray_address, tmp_path):
    marker = tmp_path / "pwned"
    proc = archgen_on(ray_address, "build", evil_config(tmp_path, marker), "-m", "encoder.depth=1,2", cwd=tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and out == ""
    assert err.startswith("error: hydra: a config file may not set Hydra's own keys"), err
    assert not marker.exists() and not (tmp_path / "multirun").exists()


@pytest.mark.parametrize("allowed", [False, True])
def test_oc_env_follows_the_command_line_not_the_clusters_environment(ray_address, tmp_path, allowed):
    """oc.env, when allowed, reads the environment of the process the variant runs in (on Ray: a
    worker's, which lacks ARCHGEN_NET_NAME, so the default applies)."""
    (tmp_path / "net.yaml").write_text("name: ${oc.env:ARCHGEN_NET_NAME,net}\ninput: {shape: [32, 32, 1]}\n"
                                       "encoder: {depth: 2, filters: 4}\nheads: [{name: logits, filters: 2}]\n")
    env = {"ARCHGEN_ALLOW_ENV": "1"} if allowed else {}
    proc = archgen_on(ray_address, "summary", "net.yaml", "-m", "-q", "encoder.depth=1,2", "hydra.sweep.dir=s",
                      cwd=tmp_path, **env)
    out, err = proc.communicate(timeout=300)
    rows = json.loads((tmp_path / "s" / "results.json").read_text())
    if allowed:
        assert proc.returncode == 0, err
        assert [r["status"] for r in rows] == ["ok", "ok"]
    else:  # the cluster's environment allows oc.env; this command line did not
        assert proc.returncode == 1
        assert [r["status"] for r in rows] == ["error", "error"]
        assert all("reading the environment (oc.env) is off" in r["error"] for r in rows)


def test_ray_local_starts_and_stops_its_own_cluster(tmp_path):
    """hydra/launcher=ray_local: a new cluster of this machine for the sweep, gone with it."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="see the README: hydra-ray-launcher and ray")
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp" if os.path.isdir("/tmp") else None))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "archgen.cli", "summary", str(SAME), "-m", "-q", *VARIANTS,
             "hydra/launcher=ray_local", f"+hydra.launcher.ray.init._temp_dir={temp}"],
            cwd=tmp_path, capture_output=True, text=True, env=child_env(), timeout=300)
        assert proc.returncode == 1, proc.stderr
        check_table(tmp_path, proc.stderr, built=False)
        leftover = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert str(temp) not in leftover  # no process of that cluster outlives the sweep
    finally:
        shutil.rmtree(temp, ignore_errors=True)
