"""Checkpoints: a point's model, optimizer state and epoch rows, so that a worker that dies
mid-trial loses at most ``CHECKPOINT_EVERY_S`` of training; the next worker resumes there.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import time
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sweep.errors import DiskFull, free_megabytes, megabytes

if TYPE_CHECKING:
    import keras
    import numpy as np

SEED_STATES = "sweep_seed_states.json"  # in a checkpoint's archive, beside Keras' own files
# An epoch that takes at least this many times what a checkpoint's write takes is saved at
# its end (a stop then loses at most that epoch, for at most 1/EPOCH_SHARE more time); a
# shorter one once ``checkpoint_every_s`` passed. A write's first estimate: measured on this
# 2-core machine, 14-21 ms for the seeds' models (0.9-1.5 MB), 0.14 s for 30 MB.
EPOCH_SHARE = 20
WRITE_S, WRITE_BYTES_PER_S = 0.01, 250e6


class CheckpointClock:
    """When a trial saves its checkpoint: at the end of an epoch that took at least
    ``EPOCH_SHARE`` times the last write (estimated from the model's size before the first),
    else once ``every_s`` seconds passed since the last save. One rule for Keras' fit and a
    fused group."""

    def __init__(self, every_s: float) -> None:
        self.every_s, self.saved = every_s, time.monotonic()
        self.write_s: float | None = None  # the last save's seconds

    def due(self, epoch_s: float, model: keras.Model, copies: int = 1) -> bool:
        """Whether to save now, at the end of an epoch of ``epoch_s`` seconds (``copies``: the
        checkpoints of ``model``'s size a save writes, a fused group's members)."""
        if self.write_s is None:
            self.write_s = copies * (WRITE_S + _state_bytes(model) / WRITE_BYTES_PER_S)
        return (time.monotonic() - self.saved >= self.every_s
                or epoch_s >= EPOCH_SHARE * self.write_s)

    @contextlib.contextmanager
    def saving(self) -> Iterator[None]:
        """Time a save (or the saves of a group's members) within this block."""
        started = time.monotonic()
        yield
        self.saved = time.monotonic()
        self.write_s = self.saved - started


def checkpoint_file(folder: Path, point: str) -> Path:
    """Where a point's training state is kept, the same for every worker of the study
    (``folder``: the study's own, ``sweep.store.study_folder``)."""
    return folder / f"{hashlib.sha1(point.encode()).hexdigest()[:16]}.keras"


def kept_model_file(folder: Path, trial_number: int) -> Path:
    """Where a finished trial's model is kept (weights, optimizer state, epoch rows): to
    continue it when the study's epochs grow, and for ``sweep export --model``
    (``folder``: the study's own)."""
    return folder / "trials" / f"{trial_number}.keras"


def copy_checkpoint(source: Path, target: Path) -> bool:
    """Copy a checkpoint (model and rows) whole; False when ``source`` has none."""
    if not source.is_file() or not source.with_suffix(".json").is_file():
        return False
    pairs = ((source, target), (source.with_suffix(".json"), target.with_suffix(".json")))
    temporary = [dst.with_name(dst.name + ".tmp") for _, dst in pairs]
    with _room_for(target, source.stat().st_size, temporary):
        for (src, dst), tmp in zip(pairs, temporary, strict=True):
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
    return True


def save_checkpoint(path: Path, model: keras.Model, rows: list[dict]) -> None:
    """Model, optimizer state and the epoch rows so far; written whole or not at all.

    Raises:
        DiskFull: the folder has no room left; nothing half-written stays behind.
    """
    tmp = path.with_name(path.name + ".tmp.keras")
    rows_tmp = path.with_suffix(".tmp.json")
    with _room_for(path, _state_bytes(model), [tmp, rows_tmp]):
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:  # what Keras' archive leaves out
            archive.writestr(SEED_STATES, json.dumps(
                [_value(v).tolist() for v in _seed_states(model)]))
        rows_tmp.write_text(json.dumps(rows))
        os.replace(tmp, path)  # the model first: a rows file always has its model
        os.replace(rows_tmp, path.with_suffix(".json"))


@contextlib.contextmanager
def _room_for(path: Path, needed: int, temporary: list[Path]) -> Iterator[None]:
    """Write ``path`` (about ``needed`` bytes) within this block; a full disk removes the
    ``temporary`` files, which would keep it full, and becomes one ``DiskFull`` line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        for file in temporary:
            file.unlink(missing_ok=True)
        raise DiskFull(f"checkpoint folder {path.parent}: no space left "
                       f"({free_megabytes(path.parent)} free, a checkpoint of this model "
                       f"takes about {megabytes(needed)}); free space there or give another "
                       "--checkpoint-dir, then run the same command again") from None


def _seed_states(model: keras.Model) -> list:
    """The model's random-number states (dropout and augmentation draws), in layer order.
    Keras' archive does not keep them: a checkpoint keeps them beside it (``SEED_STATES``),
    so a resumed point draws what it would have drawn had it never stopped."""
    return [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]


def _value(variable: keras.Variable) -> np.ndarray:
    """A Keras variable's value as a numpy array (any backend)."""
    import keras

    return keras.ops.convert_to_numpy(variable.value)


def _state_bytes(model: keras.Model) -> int:
    """The bytes of a model's weights and optimizer state: about what its checkpoint takes."""
    import numpy as np

    optimizer = getattr(model, "optimizer", None)
    variables = [*model.weights, *(optimizer.variables if optimizer is not None else ())]
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)


def load_checkpoint(path: Path) -> tuple[keras.Model, list[dict]] | None:
    """The compiled model and epoch rows saved by ``save_checkpoint``, or None."""
    import keras

    from sweep.training.device import mark_jax_compilable

    rows_file = path.with_suffix(".json")
    if not path.is_file() or not rows_file.is_file():
        return None
    with warnings.catch_warnings():  # the saved jit_compile=True meets unmarked layers (JAX)
        warnings.filterwarnings("ignore", "Model doesn't support `jit_compile=True`")
        model = keras.models.load_model(path)
    mark_jax_compilable(model)  # and gets it back here
    with zipfile.ZipFile(path) as archive:
        if SEED_STATES in archive.namelist():
            states = json.loads(archive.read(SEED_STATES))
            for variable, state in zip(_seed_states(model), states, strict=True):
                variable.assign(keras.ops.convert_to_tensor(state, dtype=variable.dtype))
    return model, json.loads(rows_file.read_text())


def set_aside_if_unreadable(path: Path) -> str | None:
    """Check a point's checkpoint before training resumes from it. A model archive that is
    truncated or damaged, or epoch rows that are not a JSON list, are renamed
    ``*.unreadable`` (kept for a look, never read again) and a line saying so is returned:
    the point trains from its first epoch; None when the checkpoint is whole, or there is
    none (a model saved without its rows yet counts as none: ``save_checkpoint``)."""
    rows_file = path.with_suffix(".json")
    if not rows_file.is_file():
        return None
    try:
        with zipfile.ZipFile(path) as archive:  # FileNotFoundError: rows without their model
            damaged = archive.testzip()
            if damaged is not None:
                raise ValueError(f"{damaged} in it is damaged")
            if not isinstance(json.loads(archive.read("config.json")), dict):
                raise ValueError("its config.json is not a model's")
        _check_rows(json.loads(rows_file.read_text()))
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        return set_aside(path, err.strerror if isinstance(err, OSError) and err.strerror
                         else err)
    return None


def set_aside(path: Path, reason: object) -> str:
    """Rename a checkpoint (model and rows) ``*.unreadable``, kept for a look and never read
    again; the line that says so."""
    for file in (path, path.with_suffix(".json")):
        if file.exists():
            os.replace(file, file.with_name(file.name + ".unreadable"))
    return (f"its checkpoint {path} cannot be read ({reason}); set aside as "
            f"{path.name}.unreadable, the point trains from epoch 1")


def _check_rows(rows: object) -> None:
    """Epoch rows as ``save_checkpoint`` writes them: a list of dicts for epochs 1, 2, ...

    Raises:
        ValueError: anything else (``[{"epoch": 1}, "x", 3]`` failed every run after it).
    """
    if not isinstance(rows, list):
        raise ValueError("its epoch rows are not a list")
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or row.get("epoch") != number:
            raise ValueError(f"its epoch row {number} is not epoch {number}'s")


def saved_epochs(path: Path) -> int:
    """How many epochs a point's checkpoint holds (0 without one, or with rows that do not
    read: ``set_aside_if_unreadable`` says so when the point starts)."""
    rows_file = path.with_suffix(".json")
    if not path.is_file() or not rows_file.is_file():
        return 0
    try:
        rows = json.loads(rows_file.read_text())
    except (OSError, ValueError):
        return 0
    return len(rows) if isinstance(rows, list) else 0


def remove_checkpoint(path: Path) -> None:
    for file in (path, path.with_suffix(".json")):
        file.unlink(missing_ok=True)
