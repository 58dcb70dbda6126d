"""conf/hydra/launcher/slurm.yaml without a Slurm cluster: the sweep goes through archgen, Hydra
and hydra-submitit-launcher as on a cluster, up to the one step that needs Slurm (``sbatch``),
where the test takes the script submitit wrote and the job files it pickled for the nodes."""

from __future__ import annotations

import re
import sys

import pytest
import yaml

from tests.conftest import CONF

SLURM_YAML = CONF / "hydra" / "launcher" / "slurm.yaml"
SMALL = CONF / "unet_same.yaml"
# slurm.yaml's keys -> the sbatch flag submitit writes for each (and how it writes the value)
FLAGS = {"partition": ("partition", str), "timeout_min": ("time", str), "cpus_per_task": ("cpus-per-task", str),
         "gpus_per_node": ("gpus-per-node", str), "mem_gb": ("mem", lambda gb: f"{gb}GB")}


class Submitted(Exception):
    """Raised where ``sbatch`` would run: the sweep stops there."""


@pytest.fixture
def sbatch(monkeypatch):
    """``{"script": ..., "folder": ..., "submissions": n}`` of the array job the sweep would submit."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install 'archgen[submitit]'")
    # submitit configures logging as it is imported (dictConfig), which closes the handlers already
    # there: one TensorFlow's absl left on a stream pytest has since swapped would close pytest's capture.
    monkeypatch.setenv("SUBMITIT_LOG_LEVEL", "NOCONFIG")
    from submitit.slurm.slurm import SlurmExecutor

    seen: dict = {"submissions": 0}

    def submit(self, command):
        seen.update(script=self._make_submission_file_text(command, "uid"), folder=self.folder,
                    submissions=seen["submissions"] + 1)
        raise Submitted("sbatch would run here")

    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # as if srun were on PATH
    monkeypatch.setattr(SlurmExecutor, "_submit_command", submit)
    return seen


def sbatch_flags(script: str) -> dict[str, str]:
    return dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)$", script, re.M))


def test_the_slurm_config_becomes_these_sbatch_flags(cli, tmp_path, monkeypatch, sbatch):
    monkeypatch.chdir(tmp_path)
    conf = yaml.safe_load(SLURM_YAML.read_text())
    assert conf.pop("defaults") == ["submitit_slurm"]
    parallel = conf.pop("array_parallelism")
    assert set(conf) == set(FLAGS)  # a key added to slurm.yaml needs its flag checked here
    variants = parallel + 1  # one more than may run at once
    code, out, err = cli("build", SMALL, "-m", f"encoder.filters=range(1,{variants + 1})", "hydra/launcher=slurm",
                         "hydra.sweep.dir=s")
    assert code == 2 and "sbatch would run here" in err and out == ""
    assert sbatch["submissions"] == 1  # one array job; a refused submission is not tried per variant
    flags = sbatch_flags(sbatch["script"])
    for key, value in conf.items():
        flag, shown = FLAGS[key]
        assert flags[flag] == shown(value), (key, flags)
    assert flags["array"] == f"0-{variants - 1}%{parallel}"
    folder = (tmp_path / "s" / ".submitit").resolve()
    assert sbatch["folder"] == folder / "%j"
    assert flags["output"] == str(folder / "%A_%a" / "%A_%a_0_log.out")
    (command,) = [line for line in sbatch["script"].splitlines() if line.startswith("srun ")]
    assert command.endswith(f"{sys.executable} -u -m submitit.core._submit {folder / '%j'}")


def test_command_line_settings_reach_the_script(cli, tmp_path, monkeypatch, sbatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("summary", SMALL, "-m", "encoder.depth=1,2", "hydra/launcher=slurm", "hydra.sweep.dir=s",
                       "hydra.launcher.partition=debug", "hydra.launcher.timeout_min=5",
                       "hydra.launcher.mem_gb=16", "+hydra.launcher.additional_parameters={account: lab}")
    assert code == 2 and "sbatch would run here" in err
    flags = sbatch_flags(sbatch["script"])
    assert (flags["partition"], flags["time"], flags["mem"], flags["account"], flags["array"]) == (
        "debug", "5", "16GB", "lab", "0-1%2")


def test_each_pickled_job_carries_the_command_and_its_variant(cli, tmp_path, monkeypatch, sbatch):
    """What a node unpickles: Hydra's launcher with archgen's task (the command and its options,
    not read from the environment) and the variant's overrides."""
    from submitit.core.utils import DelayedSubmission

    from archgen.sweep import SweepTask

    monkeypatch.chdir(tmp_path)
    code, _, _ = cli("build", SMALL, "-m", "-q", "encoder.depth=1,2", "--precision", "mixed_bfloat16",
                     "hydra/launcher=slurm", "hydra.sweep.dir=s")
    assert code == 2
    jobs = [DelayedSubmission.load(p) for p in (tmp_path / "s" / ".submitit").rglob("*.pkl")]
    # the overrides as archgen hands them to Hydra
    assert sorted(job.args[0] for job in jobs) == [["++encoder.depth=1"], ["++encoder.depth=2"]]
    task = jobs[0].function.task_function
    assert isinstance(task, SweepTask)
    assert (task.command, task.options.precision, task.options.quiet) == ("build", "mixed_bfloat16", True)


def test_a_pickled_job_run_as_a_node_runs_it_writes_its_row(cli, tmp_path, monkeypatch, sbatch):
    """Each job unpickled and called in a Slurm job's environment, as ``submitit.core._submit``
    does on a node: every variant writes its row into the sweep folder."""
    from hydra.core.singleton import Singleton
    from submitit.core.utils import DelayedSubmission

    import archgen
    from archgen.sweep import collect_results

    monkeypatch.chdir(tmp_path)
    code, _, _ = cli("summary", SMALL, "-m", "-q", "input.shape=[32,32,1],[30,30,1]", "encoder.depth=2",
                     "hydra/launcher=slurm", "hydra.sweep.dir=s")
    assert code == 2
    expected = archgen.plan(SMALL, ["input.shape=[32,32,1]", "encoder.depth=2"]).total_params
    saved = Singleton.get_state()  # a job sets Hydra's singletons to the sweep's, as a node's process starts
    try:
        for task, path in enumerate(sorted((tmp_path / "s" / ".submitit").rglob("*.pkl"))):
            for key, value in {"SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": f"42_{task}", "SLURM_ARRAY_JOB_ID": "42",
                               "SLURM_ARRAY_TASK_ID": str(task), "SLURM_PROCID": "0", "SLURM_NTASKS": "1",
                               "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_JOB_NUM_NODES": "1",
                               "SLURM_JOB_NODELIST": "node1"}.items():
                monkeypatch.setenv(key, value)
            DelayedSubmission.load(path).result()
    finally:
        Singleton.set_state(saved)  # a node's process ends here; this one goes on with other tests
    rows = collect_results(tmp_path / "s")
    assert [(r["job"], r["status"], r.get("total_params")) for r in rows] == [(0, "ok", expected), (1, "error", None)]
    assert "enc2_pool gets 15" in rows[1]["error"]
