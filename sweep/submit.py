"""Cluster batch jobs: a study's workers as a Slurm job array or a Kubernetes Indexed Job.

``plan_job`` checks the options and turns them into a ``ClusterJob`` (plain data). Each
scheduler module renders that into files with pure functions (``slurm.py``,
``kubernetes.py``: the only modules that know their scheduler); ``write_files`` writes them
next to the study's results (``reports/NAME/``), and the scheduler's ``launch`` hands them
over. The storage password never enters a script or manifest: it goes to a file only its
owner reads (Slurm) or a Secret (Kubernetes).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sweep import kubernetes, slurm
from sweep.errors import UsageError
from sweep.spec import StudySpec
from sweep.storage import split_password

# The words of --scheduler, to the module that renders and launches for that scheduler.
SCHEDULERS = {"slurm": slurm, "kubernetes": kubernetes}
_TIME = re.compile(r"(?:(\d+)-)?(\d+):([0-5]\d):([0-5]\d)")  # [D-]HH:MM:SS
_CRON_FIELD = re.compile(r"[0-9A-Za-z*/,-]+")
_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly")
_WORD = re.compile(r"[A-Za-z0-9_.,:/@+-]+")  # partition, account, image, namespace


@dataclass(frozen=True)
class ClusterJob:
    """One submission: N workers of one study, as the schedulers need it. Plain data.

    ``storage`` is the URL without its password; ``password`` (the URL's, else
    ``$PGPASSWORD``) is kept apart so that renderers can leave it out.
    """

    study: str  # the study's name
    study_file: Path  # absolute
    storage: str
    workers: int
    gpus_per_worker: int
    time_s: int | None  # wall-clock limit per worker, seconds
    job_dir: Path  # absolute: scripts, manifests and logs go here (reports/NAME/)
    workdir: Path  # absolute: where workers run (relative paths in arguments start here)
    python: str  # the interpreter Slurm workers run (the one that ran `sweep submit`)
    partition: str | None = None
    account: str | None = None
    schedule: str | None = None  # five-field cron expression
    image: str = "sweep:latest"  # Kubernetes worker image (docker/Dockerfile)
    namespace: str | None = None
    worker_options: tuple[str, ...] = ()  # --set, --data-dir, --checkpoint-dir ... for workers
    password: str | None = field(default=None, repr=False)

    @property
    def job_name(self) -> str:
        return f"sweep-{self.study}"

    def worker_argv(self, study_file: str) -> list[str]:
        """``sweep`` arguments of one worker (storage excepted: each scheduler passes it)."""
        return ["worker", study_file, *self.worker_options]


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
    worker_options: list[str] = (),
) -> ClusterJob:
    """Check the submit options against each other and the scheduler; UsageError if bad."""
    module = scheduler_module(scheduler)
    if workers < 1 or gpus_per_worker < 0:
        raise UsageError("--workers must be at least 1 and --gpus-per-worker at least 0")
    for option, value in (("--partition", partition), ("--account", account),
                          ("--image", image), ("--namespace", namespace)):
        if value is not None and not _WORD.fullmatch(value):
            raise UsageError(f"{option} {value!r}: expected one word (letters, digits, '_.,:/@+-')")
    storage, password = split_password(storage_url)
    module.check_storage(storage, workers)
    return ClusterJob(
        study=spec.name,
        study_file=Path(spec.source).resolve(),
        storage=storage,
        workers=workers,
        gpus_per_worker=gpus_per_worker,
        time_s=parse_time(time, required=module.NEEDS_TIME),
        job_dir=job_dir.resolve(),
        workdir=Path.cwd(),
        python=python or sys.executable,
        partition=partition,
        account=account,
        schedule=check_schedule(schedule),
        image=image or ClusterJob.image,
        namespace=namespace,
        worker_options=tuple(worker_options),
        password=password or os.environ.get("PGPASSWORD") or None,
    )


def scheduler_module(name: str):
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
    if text in _CRON_MACROS or (len(fields) == 5 and all(_CRON_FIELD.fullmatch(f) for f in fields)):
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
    module = scheduler_module(scheduler)
    files, secrets = module.render(job), module.render_secrets(job)
    if dry_run:
        shown = [f"# ==> {job.job_dir / name} <==\n{text}" for name, text in files.items()]
        shown += [f"# ==> {job.job_dir / name} <== (holds the storage password; not shown)\n"
                  for name in secrets]
        return "\n".join(shown).rstrip("\n")
    paths = write_files(job.job_dir, files, secrets)
    return module.launch(job, paths)


def unschedule(study: str, scheduler: str) -> str:
    """Remove the recurring run that ``--schedule`` installed for ``study``."""
    return scheduler_module(scheduler).unschedule(study)


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
