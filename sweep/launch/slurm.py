"""Slurm: a study's workers as one job array, submitted now (sbatch) or on a schedule (scrontab).

Each array task runs one ``sweep worker``; the workers share the study through the storage
and each claims points until none is left, so the array's size is only how many train at
once. The script names the interpreter that ran ``sweep submit`` (a virtual environment on
a shared filesystem reaches every node) and runs in the working folder (``--workdir``, by
default the folder ``sweep submit`` ran in), with absolute checkpoint and artifact folders;
a warning names any of these that look like this node's alone.
The storage password goes to ``storage.env`` (mode 0600) next to the script, which the
script sources; with ``~/.pgpass`` on the nodes no such file is written.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from sweep.errors import SchedulerError, UsageError
from sweep.launch._base import ClusterJob, Scheduler
from sweep.launch.shared import node_local_warning

ENV_FILE = "storage.env"
CRON_TIME = "00:05:00"  # limit of the small cron job that submits the array, HH:MM:SS
SUBMIT_TIMEOUT_S = 60


def script_name(job: ClusterJob) -> str:
    return f"{job.study}.sbatch"


def render_script(job: ClusterJob) -> str:
    """The sbatch script of the job array: one ``sweep worker`` per task."""
    assert job.time_s is not None  # Slurm needs --time (SlurmScheduler.needs_time)
    options = [
        f"--job-name={job.job_name}",
        f"--array=0-{job.workers - 1}",
        "--ntasks=1",
        f"--time={format_time(job.time_s)}",
        f"--chdir={job.workdir}",
        f"--output={job.job_dir}/slurm-%A_%a.out",  # %A: the array's job id, %a: the task
    ]
    if job.gpus_per_worker:
        options.append(f"--gres=gpu:{job.gpus_per_worker}")
    options += [f"--partition={job.partition}"] if job.partition else []
    options += [f"--account={job.account}"] if job.account else []
    worker = [job.python, "-m", "sweep.cli", *job.worker_argv(str(job.study_file), job.workdir),
              "--storage", job.storage]
    lines = ["#!/bin/bash", *(f"#SBATCH {o}" for o in options),
             f"# Written by `sweep submit {job.study} --scheduler slurm`: {job.workers} workers "
             "of one study;", "# each claims points until none is left.", "set -euo pipefail"]
    if job.password:
        lines.append(f"set -a; source {shlex.quote(str(job.job_dir / ENV_FILE))}; set +a")
    lines += [
        "export TF_FORCE_GPU_ALLOW_GROWTH=true  # several trials may share a card",
        'echo "sweep worker: array task ${SLURM_ARRAY_TASK_ID} on $(hostname)"',
        "exec " + shlex.join(worker),
    ]
    return "\n".join(lines) + "\n"


def format_time(seconds: int) -> str:
    """Seconds as ``HH:MM:SS`` (hours may exceed 24), a form sbatch reads."""
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _cron_markers(study: str) -> tuple[str, str]:
    return f"# sweep {study} begin", f"# sweep {study} end"


def render_cron_entry(job: ClusterJob) -> str:
    """The scrontab block: on ``job.schedule``, a small job submits the array's script."""
    begin, end = _cron_markers(job.study)
    options = [f"--job-name={job.job_name}-cron", f"--time={CRON_TIME}",
               f"--chdir={job.workdir}", f"--output={job.job_dir}/cron-%j.out"]
    options += [f"--partition={job.partition}"] if job.partition else []
    options += [f"--account={job.account}"] if job.account else []
    return "\n".join([
        f"{begin} (remove: sweep submit {job.study} --scheduler slurm --unschedule)",
        *(f"#SCRON {o}" for o in options),
        f"{job.schedule} sbatch {shlex.quote(str(job.job_dir / script_name(job)))}",
        end,
    ]) + "\n"


def merge_crontab(current: str, study: str, entry: str | None) -> str:
    """``current`` with the study's block replaced by ``entry`` (removed when None); the
    other lines are kept as they are."""
    begin, end = _cron_markers(study)
    kept, inside = [], False
    for line in current.splitlines():
        if line.startswith(begin):
            inside = True
        elif inside and line == end:
            inside = False
        elif not inside:
            kept.append(line)
    text = "\n".join(kept).strip("\n")
    text = f"{text}\n" if text else ""
    return text + (entry or "")


def _install_crontab(study: str, entry: str | None, instead: str) -> None:
    """Replace the study's block in the user's scrontab; ``instead`` is what to do by hand
    where this Slurm has no scrontab."""
    if shutil.which("scrontab") is None:
        raise SchedulerError(
            "scrontab not found on PATH (Slurm's cron; some builds, e.g. Debian's "
            f"slurm-client 22.05, lack it); with cron on a login node instead: {instead}"
        )
    listing = subprocess.run(["scrontab", "-l"], capture_output=True, text=True,
                             timeout=SUBMIT_TIMEOUT_S)
    current = listing.stdout if listing.returncode == 0 else ""  # none yet: non-zero
    with tempfile.NamedTemporaryFile("w", suffix=".scrontab", delete=False) as handle:
        handle.write(merge_crontab(current, study, entry))
    try:
        _run(["scrontab", handle.name], "scrontab")
    finally:
        Path(handle.name).unlink()


def _run(command: list[str], what: str) -> str:
    """Run a Slurm command; SchedulerError with its first line of complaint if it fails."""
    if shutil.which(command[0]) is None:
        raise SchedulerError(
            f"{what} not found on PATH: run `sweep submit` on a Slurm login node, "
            "or add --dry-run to print the script"
        )
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=SUBMIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SchedulerError(f"{what} did not answer in {SUBMIT_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        reason = (proc.stderr.strip() or proc.stdout.strip() or "no message").splitlines()[0]
        raise SchedulerError(f"{what} refused the job: {reason}")
    return proc.stdout


def _environment(python: str) -> Path:
    """The virtual environment an interpreter belongs to (its ``bin/``'s parent, holding
    ``pyvenv.cfg``), else the interpreter itself."""
    folder = Path(python).absolute().parent.parent
    return folder if (folder / "pyvenv.cfg").is_file() else Path(python)


class SlurmScheduler(Scheduler):
    """Slurm: sbatch job arrays now, scrontab for a schedule."""

    needs_time = True  # sites reject jobs without a limit, and backfill needs one

    def check(self, job: ClusterJob) -> None:
        """Refuse SQLite for an array whose tasks may land on different nodes. (The nodes
        share the filesystem the study, its hypermodel and its data are on.)"""
        if job.storage.startswith("sqlite") and job.workers > 1:
            raise UsageError(
                f"--storage {job.storage}: the {job.workers} tasks of the array may run on "
                "different nodes, and a SQLite file shared over a network filesystem corrupts; "
                "use PostgreSQL: --storage postgresql+psycopg://USER@HOST:5432/DB with the "
                "password in PGPASSWORD or ~/.pgpass (docs/clusters.md), or "
                "--workers 1"
            )

    def warnings(self, job: ClusterJob) -> list[str]:
        """The folders and files every task needs, where they look like this node's alone."""
        paths = {"working folder": job.workdir, "study file": job.study_file,
                 "Python environment": _environment(job.python),
                 "checkpoints": job.folder(job.checkpoint_dir, job.workdir),
                 "artifacts": job.folder(job.artifact_dir, job.workdir), "logs": job.job_dir}
        if job.data_path is not None:
            paths["dataset.path"] = job.workdir / job.data_path
        line = node_local_warning(paths, "Slurm tasks on other nodes",
                                  "use folders on a file system the nodes share (--workdir DIR "
                                  "moves the working, checkpoint, artifact and log folders)")
        return [line] if line else []

    def render(self, job: ClusterJob) -> dict[str, str]:
        """The files to keep next to the study's results, by name: the sbatch script, and with
        a schedule the scrontab entry that submits it."""
        files = {script_name(job): render_script(job)}
        if job.schedule:
            files[f"{job.study}.scrontab"] = render_cron_entry(job)
        return files

    def render_secrets(self, job: ClusterJob) -> dict[str, str]:
        """``storage.env``: the password for libpq, when the URL or ``$PGPASSWORD`` gave one."""
        return {ENV_FILE: f"PGPASSWORD={shlex.quote(job.password)}\n"} if job.password else {}

    def launch(self, job: ClusterJob, paths: dict[str, Path]) -> str:
        """Submit the array now, or with a schedule install the scrontab block that does."""
        script = paths[script_name(job)]
        if job.schedule:
            _install_crontab(job.study, render_cron_entry(job),
                             f"add `{job.schedule} sbatch {script}` with `crontab -e`")
            return (f"scheduled {job.job_name}: '{job.schedule}' runs sbatch {script} "
                    f"(logs in {job.job_dir}); remove it with: "
                    f"sweep submit {job.study} --scheduler slurm --unschedule")
        out = _run(["sbatch", "--parsable", str(script)], "sbatch")
        job_id = out.strip().split(";")[0]  # --parsable: "id" or "id;cluster"
        return (f"submitted job {job_id}: {job.workers} workers of {job.study} "
                f"(script {script}, logs {job.job_dir}/slurm-{job_id}_*.out); "
                f"follow with: squeue -j {job_id}; sweep status {job.study}")

    def unschedule(self, study: str) -> str:
        """Remove the study's scrontab block, leaving the user's other entries."""
        _install_crontab(study, None, f"delete the lines of sweep {study} with `crontab -e`")
        return f"removed the scrontab entry of sweep-{study}"
