"""Slurm: the rendered job array script and scrontab entry, and a real single-node cluster
(munge, slurmctld, slurmd on localhost; tests/slurm/start.sh) running a 2-task array."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest

from sweep.errors import SchedulerError
from sweep.launch import SCHEDULERS, slurm
from sweep.launch.submit import submit

from conftest import PG_PASSWORD, SUBMIT_PASSWORD, tiny_study, write_study

SLURM_SCRIPTS = Path(__file__).parent / "slurm"
JOB_WAIT_S = 600  # the whole array, seconds


def _options(script: str) -> dict[str, str]:
    pairs = (line.removeprefix("#SBATCH --").split("=", 1)
             for line in script.splitlines() if line.startswith("#SBATCH "))
    return dict(pairs)


def test_script_runs_one_worker_per_array_task(cluster_job, tmp_path):
    job = cluster_job(workers=3, time="1-00:30:00", partition="gpu", account="lab-7")
    script = slurm.render_script(job)
    options = _options(script)
    assert options["array"] == "0-2" and options["time"] == "24:30:00"
    assert options["partition"] == "gpu" and options["account"] == "lab-7"
    assert options["job-name"] == "sweep-tiny" and options["chdir"] == str(tmp_path)
    assert options["output"] == f"{tmp_path}/reports/tiny/slurm-%A_%a.out"
    assert "gres" not in options  # no GPU asked for
    worker = shlex.split(script.splitlines()[-1])
    assert worker[:6] == ["exec", sys.executable, "-m", "sweep.cli", "worker",
                          str(tmp_path / "study.yaml")]
    assert worker[-2:] == ["--storage", "postgresql+psycopg://sweep@db.example:5432/sweeps"]
    assert SUBMIT_PASSWORD not in script
    assert f"source {tmp_path}/reports/tiny/storage.env" in script
    assert SCHEDULERS["slurm"].render_secrets(job) == {
        "storage.env": f"PGPASSWORD={SUBMIT_PASSWORD}\n"
    }
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)  # valid bash


def test_gpus_python_and_worker_options_reach_the_script(cluster_job):
    job = cluster_job(gpus_per_worker=2, python="/opt/env/bin/python",
                      worker_options=["--set", "training.epochs=1", "--data-dir", "/data x"])
    script = slurm.render_script(job)
    assert _options(script)["gres"] == "gpu:2"
    worker = shlex.split(script.splitlines()[-1])
    assert worker[1] == "/opt/env/bin/python"
    assert worker[-6:-2] == ["--set", "training.epochs=1", "--data-dir", "/data x"]


def test_workdir_sets_the_working_checkpoint_artifact_and_log_folders(cluster_job, tmp_path):
    # before: --chdir was the folder the user was in, and checkpoints/artifacts relative
    shared = tmp_path / "shared"
    job = cluster_job(workdir=shared, artifact_dir=Path("/abs/artifacts"))
    script = slurm.render_script(job)
    options = _options(script)
    assert options["chdir"] == str(shared)
    assert options["output"] == f"{shared}/reports/tiny/slurm-%A_%a.out"
    worker = shlex.split(script.splitlines()[-1])
    assert worker[worker.index("--checkpoint-dir") + 1] == f"{shared}/checkpoints"
    assert worker[worker.index("--artifact-dir") + 1] == "/abs/artifacts"  # as given


def test_node_local_folders_are_one_warning_line(cluster_job, tmp_path, monkeypatch):
    job = cluster_job(checkpoint_dir=Path("/dev/shm/ckpt"))
    (line,) = SCHEDULERS["slurm"].warnings(job)
    assert line.startswith(f"working folder {tmp_path} (under /tmp, with the study file, "
                           "artifacts and logs in it); ")
    assert "checkpoints /dev/shm/ckpt (under /dev/shm)" in line
    assert "--workdir DIR" in line and "\n" not in line
    # a network file system, as `stat -f` names it, is shared: only /tmp is still named
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "stat").write_text("#!/bin/sh\necho nfs\n")
    (fake / "stat").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    (line,) = SCHEDULERS["slurm"].warnings(cluster_job(workdir=Path.home() / "shared"))
    named, sep, _ = line.partition(": Slurm tasks on other nodes may not see them")
    assert sep and named.split("; ")[0] == f"study file {tmp_path}/study.yaml (under /tmp)"
    # only what is under /tmp is named now (the interpreter too, where its environment is:
    # a clean clone under /tmp, as CI may make)
    assert all(item.endswith("(under /tmp)") for item in named.split("; "))


def test_without_a_password_nothing_is_sourced(cluster_job):
    job = cluster_job(storage_url="postgresql+psycopg://sweep@db:5432/sweeps")  # ~/.pgpass
    assert (
        "source" not in slurm.render_script(job) and SCHEDULERS["slurm"].render_secrets(job) == {}
    )


def test_one_task_may_use_sqlite(cluster_job):
    job = cluster_job(workers=1, storage_url="sqlite:///sweeps.db")
    assert "--storage sqlite:///sweeps.db" in slurm.render_script(job)


def test_schedule_adds_a_scrontab_entry_that_submits_the_script(cluster_job, tmp_path):
    job = cluster_job(schedule="0 2 * * *", partition="gpu")
    entry = SCHEDULERS["slurm"].render(job)["tiny.scrontab"]
    lines = entry.splitlines()
    assert lines[0].startswith("# sweep tiny begin") and "--unschedule" in lines[0]
    assert "#SCRON --partition=gpu" in lines and "#SCRON --time=00:05:00" in lines
    assert lines[-2] == f"0 2 * * * sbatch {tmp_path}/reports/tiny/tiny.sbatch"
    assert lines[-1] == "# sweep tiny end"


def test_crontab_merge_replaces_only_this_studys_block(cluster_job):
    job = cluster_job(schedule="0 2 * * *")
    entry = slurm.render_cron_entry(job)
    others = "#SCRON -t 1\n*/5 * * * * date\n"
    once = slurm.merge_crontab(others, "tiny", entry)
    assert once == others + entry
    again = slurm.merge_crontab(once, "tiny", slurm.render_cron_entry(
        cluster_job(schedule="30 3 * * *")))
    assert again.count("# sweep tiny begin") == 1 and "30 3 * * * sbatch" in again
    assert "0 2 * * * sbatch" not in again
    assert slurm.merge_crontab(again, "tiny", None) == others
    assert slurm.merge_crontab("", "tiny", None) == ""


def test_missing_scrontab_says_what_to_do_instead(cluster_job, tmp_path, monkeypatch):
    job = cluster_job(schedule="0 2 * * *")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(SchedulerError, match=r"scrontab not found on PATH.*add `0 2 \* \* \* "
                       r"sbatch .*/reports/tiny/tiny.sbatch` with `crontab -e`"):
        submit(job, "slurm")


@pytest.fixture(scope="module")
def slurm_cluster():
    """The single-node cluster of tests/slurm/start.sh, stopped at the end; SLURM_CONF set
    for this process and its children (sweep submit, sbatch, the jobs)."""
    if shutil.which("slurmctld") is None or shutil.which("munged") is None:
        pytest.skip("Slurm missing: `make test-cluster` installs slurm-wlm and munge")
    if os.geteuid() != 0:
        pytest.skip("the test cluster's slurmd runs as root")
    folder = Path("/tmp/sweep-slurm-test")
    env = os.environ | {"SWEEP_SLURM_DIR": str(folder)}
    subprocess.run(["bash", SLURM_SCRIPTS / "start.sh"], env=env, check=True, timeout=120)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", str(folder / "slurm.conf"))
        yield folder
    subprocess.run(["bash", SLURM_SCRIPTS / "stop.sh"], env=env, timeout=120)


def _sweep_submit(study: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    return subprocess.run([sys.executable, "-m", "sweep.cli", "submit", str(study),
                           "--scheduler", "slurm", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _wait_for(job_id: str) -> None:
    deadline = time.monotonic() + JOB_WAIT_S
    while time.monotonic() < deadline:
        queue = subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True)
        if queue.returncode == 0 and not queue.stdout.strip():
            return
        time.sleep(1)
    raise AssertionError(f"job {job_id} still queued or running after {JOB_WAIT_S} s")


@pytest.mark.cluster
def test_two_task_array_trains_every_point_on_postgres(tmp_path, tiny_npz, postgres,
                                                       slurm_cluster):
    raw = tiny_study(tiny_npz, name="slurm_tiny", search={"params": {
        "model.pooling": ["max", "avg"], "model.kernel": [2, 3]}})
    raw["training"] = {"epochs": 1, "batch_size": 16}
    study = write_study(tmp_path, raw)
    # The password only in the URL: the jobs can get it from storage.env alone.
    url = postgres.replace("sweep@", f"sweep:{PG_PASSWORD}@")
    proc = _sweep_submit(study, "--workers", "2", "--time", "00:10:00", "--storage", url,
                         cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    job_id = re.fullmatch(r"submitted job (\d+): 2 workers of slurm_tiny .*\n",
                          proc.stdout).group(1)
    job_dir = tmp_path / "reports" / "slurm_tiny"
    assert PG_PASSWORD not in proc.stdout + proc.stderr
    assert PG_PASSWORD not in (job_dir / "slurm_tiny.sbatch").read_text()
    assert stat.S_IMODE((job_dir / "storage.env").stat().st_mode) == 0o600
    _wait_for(job_id)
    for task in (0, 1):
        log = (job_dir / f"slurm-{job_id}_{task}.out").read_text()
        assert f"array task {task}" in log
        assert re.search(r"\[slurm_tiny\] 4 points: \d run now \(0 failed\)", log), (
            log
        )  # it ended well
        assert PG_PASSWORD not in log
    trials = optuna.load_study(study_name="slurm_tiny", storage=url).trials
    assert len(trials) == 4
    assert len(Counter(json.dumps(t.params, sort_keys=True) for t in trials)) == 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


@pytest.mark.cluster
def test_a_two_task_array_promotes_each_halving_point_once_on_postgres(tmp_path, tiny_npz,
                                                                       postgres,
                                                                       slurm_cluster):
    # 6 points, rungs 1 and 3 (factor 3): 2 promoted, 6 + 2 * 2 = 10 epochs in all, each
    # promotion claimed by one of the array's tasks and continued from its kept model
    raw = tiny_study(tiny_npz, name="slurm_halving", search={
        "params": {"model.pooling": ["max", "avg"],
                   "training.learning_rate": [0.03, 0.01, 0.003]},
        "schedule": {"kind": "halving", "min_epochs": 1, "factor": 3}})
    raw["training"] = {"epochs": 3, "batch_size": 16, "learning_rate": 0.01}
    study = write_study(tmp_path, raw)
    url = postgres.replace("sweep@", f"sweep:{PG_PASSWORD}@")
    proc = _sweep_submit(study, "--workers", "2", "--time", "00:10:00", "--storage", url,
                         cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    job_id = re.match(r"submitted job (\d+)", proc.stdout).group(1)
    _wait_for(job_id)
    trials = optuna.load_study(study_name="slurm_halving", storage=url).trials
    by_point: dict[str, list] = {}
    for t in trials:
        by_point.setdefault(json.dumps(t.params, sort_keys=True), []).append(t)
    assert len(by_point) == 6
    reached = []
    for point in by_point.values():
        ran = [t for t in point if t.intermediate_values]
        ends = [max(t.intermediate_values) for t in ran]
        starts = [t.user_attrs.get("resumed_from_epoch", 0) for t in ran]
        assert starts == [0, *ends[:-1]], (starts, ends)  # no epoch trained twice
        reached.append(ends[-1])
    assert sorted(reached) == [1, 1, 1, 1, 3, 3]


@pytest.mark.cluster
def test_sbatch_refusal_is_one_line(tmp_path, tiny_npz, postgres, slurm_cluster):
    study = write_study(tmp_path, tiny_study(tiny_npz))
    proc = _sweep_submit(study, "--workers", "2", "--time", "00:10:00", "--partition",
                         "nosuch", "--storage", postgres, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    *warnings, error = proc.stderr.splitlines()  # the folders under /tmp: warned, not refused
    assert all(line.startswith("sweep: warning: ") for line in warnings)
    assert error.startswith("sweep: error: sbatch refused the job: ")
    assert "invalid partition" in error
