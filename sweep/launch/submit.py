"""Cluster batch jobs: a study's workers as a Slurm job array or a Kubernetes Indexed Job.

``plan_job`` checks the options and turns them into a ``ClusterJob`` (plain data). Each
scheduler (``_base.Scheduler``: ``slurm.py``, ``kubernetes.py``, the only modules that know
their scheduler) renders that into files with pure functions; ``write_files`` writes them
next to the study's results (``reports/NAME/``), and the scheduler's ``launch`` hands them
over. The storage password never enters a script or manifest: it goes to a file only its
owner reads (Slurm) or a Secret (Kubernetes).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from sweep.defaults import ARTIFACT_DIR, CHECKPOINT_DIR
from sweep.errors import UsageError
from sweep.launch._base import ClusterJob, Scheduler
from sweep.launch.kubernetes import KubernetesScheduler
from sweep.launch.slurm import SlurmScheduler
from sweep.store import split_password
from sweep.study import StudySpec

# The words of --scheduler, to the scheduler that renders and launches for it.
SCHEDULERS: dict[str, Scheduler] = {"slurm": SlurmScheduler(), "kubernetes": KubernetesScheduler()}
_TIME = re.compile(r"(?:(\d+)-)?(\d+):([0-5]\d):([0-5]\d)")  # [D-]HH:MM:SS
_CRON_FIELD = re.compile(r"[0-9A-Za-z*/,-]+")
_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly")
_WORD = re.compile(r"[A-Za-z0-9_.,:/@+-]+")  # partition, account, image, namespace
_QUANTITY = re.compile(r"\d+(\.\d+)?([KMGTPE]i?)?")  # a Kubernetes memory quantity: 4Gi, 512M
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?")  # a Kubernetes object's name


def plan_job(
    spec: StudySpec,
    *,
    scheduler: str,
    storage_url: str,
    workers: int,
    gpus_per_worker: int,
    time: str | None,
    job_dir: Path,
    partition: str | None = None,
    account: str | None = None,
    schedule: str | None = None,
    image: str | None = None,
    namespace: str | None = None,
    python: str | None = None,
    workdir: Path | None = None,
    cpus_per_worker: float = 2.0,
    memory_per_worker: str = "4Gi",
    volume_claim: str | None = None,
    checkpoint_dir: Path = CHECKPOINT_DIR,
    artifact_dir: Path = ARTIFACT_DIR,
    worker_options: Sequence[str] = (),
) -> ClusterJob:
    """Check the submit options against each other and the scheduler; UsageError if bad.

    ``workdir`` (default: this folder) is where Slurm workers run; a relative ``job_dir``
    (scripts and logs) starts there too.
    """
    chosen = scheduler_for(scheduler)
    _check_resources(workers, gpus_per_worker, cpus_per_worker, memory_per_worker)
    _check_names({"--partition": partition, "--account": account, "--image": image,
                  "--namespace": namespace}, volume_claim)
    workdir = (workdir or Path.cwd()).resolve()
    storage, password = split_password(storage_url)
    job = ClusterJob(
        study=spec.name,
        study_file=Path(spec.source).resolve(),
        storage=storage,
        workers=workers,
        gpus_per_worker=gpus_per_worker,
        time_s=parse_time(time, required=chosen.needs_time),
        job_dir=(workdir / job_dir).resolve(),
        workdir=workdir,
        python=python or sys.executable,
        partition=partition,
        account=account,
        schedule=check_schedule(schedule),
        image=image,
        namespace=namespace,
        cpus=cpus_per_worker,
        memory=memory_per_worker,
        volume_claim=volume_claim,
        checkpoint_dir=Path(checkpoint_dir),
        artifact_dir=Path(artifact_dir),
        worker_options=tuple(worker_options),
        password=password or os.environ.get("PGPASSWORD") or None,
        hypermodel=spec.hypermodel,
        data_path=spec.config["dataset"]["path"],
    )
    chosen.check(job)
    return job


def _check_resources(workers: int, gpus_per_worker: int, cpus_per_worker: float,
                     memory_per_worker: str) -> None:
    if workers < 1 or gpus_per_worker < 0:
        raise UsageError("--workers must be at least 1 and --gpus-per-worker at least 0")
    if not cpus_per_worker > 0:
        raise UsageError(f"--cpus-per-worker {cpus_per_worker:g}: expected a number above 0")
    if not _QUANTITY.fullmatch(memory_per_worker):
        raise UsageError(f"--memory-per-worker {memory_per_worker!r}: expected a quantity "
                         "such as 4Gi or 512Mi")


def _check_names(words: dict[str, str | None], volume_claim: str | None) -> None:
    """``words``: option → value, each one word; ``volume_claim``: a Kubernetes name."""
    for option, value in words.items():
        if value is not None and not _WORD.fullmatch(value):
            raise UsageError(f"{option} {value!r}: expected one word (letters, digits, "
                             "'_.,:/@+-')")
    if volume_claim is not None and not _NAME.fullmatch(volume_claim):
        raise UsageError(f"--volume-claim {volume_claim!r}: expected the name of a "
                         "PersistentVolumeClaim (lowercase letters, digits and '-')")


def scheduler_for(name: str) -> Scheduler:
    try:
        return SCHEDULERS[name]
    except KeyError:
        raise UsageError(
            f"--scheduler {name!r}: unknown scheduler; expected one of {', '.join(SCHEDULERS)}"
        ) from None


def parse_time(text: str | None, *, required: bool) -> int | None:
    """``[D-]HH:MM:SS`` to seconds (Slurm's --time; a Kubernetes Job's deadline)."""
    if text is None:
        if required:
            raise UsageError("--time HH:MM:SS is required: the wall-clock limit of each worker")
        return None
    match = _TIME.fullmatch(text.strip())
    if not match:
        raise UsageError(f"--time {text!r}: expected HH:MM:SS or D-HH:MM:SS, e.g. 02:00:00")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total == 0:
        raise UsageError(f"--time {text!r}: must be longer than zero")
    return total


def check_schedule(schedule: str | None) -> str | None:
    """A cron expression of five fields (minute hour day month weekday) or a macro."""
    if schedule is None:
        return None
    text = " ".join(schedule.split())
    fields = text.split(" ")
    five_fields = len(fields) == 5 and all(_CRON_FIELD.fullmatch(f) for f in fields)
    if text in _CRON_MACROS or five_fields:
        return text
    raise UsageError(
        f"--schedule {schedule!r}: expected a cron expression of five fields "
        "(minute hour day-of-month month day-of-week), e.g. \"0 2 * * *\" for 02:00 every night"
    )


def submit(job: ClusterJob, scheduler: str, *, dry_run: bool = False) -> str:
    """Render the job's files; with ``dry_run`` return them as text, else write and launch.

    Returns:
        What to print: the files (dry run), or what was submitted and how to follow or undo it.
    """
    chosen = scheduler_for(scheduler)
    files, secrets = chosen.render(job), chosen.render_secrets(job)
    if dry_run:
        shown = [f"# ==> {job.job_dir / name} <==\n{text}" for name, text in files.items()]
        shown += [f"# ==> {job.job_dir / name} <== (holds the storage password; not shown)\n"
                  for name in secrets]
        return "\n".join(shown).rstrip("\n")
    paths = write_files(job.job_dir, files, secrets)
    return chosen.launch(job, paths)


def warnings(job: ClusterJob, scheduler: str) -> list[str]:
    """What the scheduler finds likely to surprise in the job (see ``Scheduler.warnings``)."""
    return scheduler_for(scheduler).warnings(job)


def unschedule(study: str, scheduler: str) -> str:
    """Remove the recurring run that ``--schedule`` installed for ``study``."""
    return scheduler_for(scheduler).unschedule(study)


def write_files(folder: Path, files: dict[str, str], secrets: dict[str, str]) -> dict[str, Path]:
    """Write ``files`` into ``folder``, and ``secrets`` readable by their owner only (0600,
    set before the content is written). Returns every path by file name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, text in files.items():
        paths[name] = folder / name
        paths[name].write_text(text)
    for name, text in secrets.items():
        paths[name] = folder / name
        fd = os.open(paths[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
    return paths
