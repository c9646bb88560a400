"""The contract of a cluster scheduler, and the job it is given.

``ClusterJob`` is one submission as plain data (``submit.plan_job`` makes it); a
``Scheduler`` turns it into files with pure functions and hands them over. One module per
scheduler (``slurm.py``, ``kubernetes.py``) is the only code that knows that scheduler.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from sweep.defaults import ARTIFACT_DIR, CHECKPOINT_DIR


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
    workdir: Path  # absolute: where Slurm workers run (relative paths in arguments start here)
    python: str  # the interpreter Slurm workers run (the one that ran `sweep submit`)
    partition: str | None = None
    account: str | None = None
    schedule: str | None = None  # five-field cron expression
    image: str | None = None  # Kubernetes worker image; None: sweep:latest (docker/Dockerfile)
    namespace: str | None = None
    cpus: float = 2.0  # Kubernetes: CPU cores each pod requests
    memory: str = "4Gi"  # Kubernetes: memory each pod requests (a Kubernetes quantity)
    volume_claim: str | None = None  # Kubernetes: a PVC for checkpoints and artifacts
    checkpoint_dir: Path = CHECKPOINT_DIR  # as given: relative ones start at each launcher's base
    artifact_dir: Path = ARTIFACT_DIR
    worker_options: tuple[str, ...] = ()  # --set, --data-dir, --checkpoint-every for workers
    hypermodel: str | None = None  # the study's model.hypermodel, "file.py:name" as written
    data_path: str | None = None  # the study's dataset.path (folder and npz datasets)
    password: str | None = field(default=None, repr=False)

    @property
    def job_name(self) -> str:
        return f"sweep-{self.study}"

    def folder(self, folder: Path, base: PurePath | None) -> PurePath:
        """A worker's checkpoint or artifact folder: a relative one below ``base`` (the
        folder the workers' files must be in), else as given."""
        return base / folder if base is not None else folder

    def worker_argv(self, study_file: str, base: PurePath | None = None) -> list[str]:
        """``sweep`` arguments of one worker (storage excepted: each scheduler passes it);
        relative checkpoint and artifact folders start at ``base`` (see ``folder``)."""
        return ["worker", study_file,
                "--checkpoint-dir", str(self.folder(self.checkpoint_dir, base)),
                "--artifact-dir", str(self.folder(self.artifact_dir, base)),
                *self.worker_options]


class Scheduler(abc.ABC):
    """A batch scheduler that runs a study's workers.

    ``needs_time``: whether ``--time`` is required (a site's limit, backfill).
    """

    needs_time: bool = False

    @abc.abstractmethod
    def check(self, job: ClusterJob) -> None:
        """Raise UsageError, in one line, when the job cannot work on this scheduler: a
        storage its workers cannot share, files of the study its workers cannot see."""

    def warnings(self, job: ClusterJob) -> list[str]:
        """One line each for what will run, but likely not as the user expects (a folder
        the nodes do not share, an image never built); the submission goes on."""
        return []

    @abc.abstractmethod
    def render(self, job: ClusterJob) -> dict[str, str]:
        """The files to write next to the study's results, by name (pure: no side effect).
        None of them may hold the storage password."""

    @abc.abstractmethod
    def render_secrets(self, job: ClusterJob) -> dict[str, str]:
        """The files that hold the storage password, by name; written readable by their
        owner only."""

    @abc.abstractmethod
    def launch(self, job: ClusterJob, paths: dict[str, Path]) -> str:
        """Hand the written files (``paths`` by name) to the scheduler; returns what to print:
        what was submitted, and how to follow or undo it. Raises SchedulerError."""

    @abc.abstractmethod
    def unschedule(self, study: str) -> str:
        """Remove the recurring run that a ``--schedule`` submission installed."""
