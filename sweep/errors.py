"""The project's exception types.

Domain code raises these with a message a user can act on; only ``cli.py`` turns them into a
printed line and an exit code.
"""

import shutil
from pathlib import Path


def megabytes(size: int) -> str:
    """Bytes in MB, as the messages say them."""
    return f"{size / 1e6:.1f} MB"


def free_megabytes(folder: Path) -> str:
    """The space left on ``folder``'s disk (0 where the folder is gone), for a message."""
    return megabytes(shutil.disk_usage(folder).free if folder.is_dir() else 0)


class SweepError(Exception):
    """Base class: a problem the user can fix. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class SpecError(SweepError):
    """A study file (or a ``--set`` override) is malformed: names the file and the field."""

    exit_code = 2


class UsageError(SweepError):
    """A command-line option has a value that cannot work."""

    exit_code = 2


class DataError(SweepError):
    """A dataset cannot be loaded: says which file to put where."""

    exit_code = 2


class StorageError(SweepError):
    """The storage URL cannot be reached or holds a study that conflicts with this one."""

    exit_code = 2


class DiskFull(SweepError):
    """A folder sweep writes to has no space left: the run stops (every worker would meet
    the same full disk) and the same command continues once there is room."""

    exit_code = 2


class SchedulerError(SweepError):
    """A cluster scheduler's command (sbatch, scrontab) is missing or refused a job."""


class TrialFailed(SweepError):
    """A trial failed for a reason the sweep records on the trial before moving on
    (e.g. its loss became NaN). Such a trial counts as done: running the study again does not
    repeat it."""


class ConfigError(TrialFailed):
    """One configuration of the search space cannot be built (e.g. a kernel wider than the
    feature map it meets). The trial is rejected with this reason; the sweep goes on."""
