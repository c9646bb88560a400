"""What leaves a study as files other tools read: the results frame as csv or parquet, and a
trial's kept model as a ``.keras`` file."""

from __future__ import annotations

import shutil
from pathlib import Path

from sweep.errors import UsageError
from sweep.report.frames import StudyResult
from sweep.store import existing_folder, open_storage
from sweep.study import file_name
from sweep.training.checkpoints import kept_model_file


def export(result: StudyResult, fmt: str, path: Path) -> Path:
    """Write the snapshot frame (the one the grouped plots are drawn from) as csv or parquet."""
    if fmt == "csv":
        result.snapshots.to_csv(path, index=False)
    else:
        result.snapshots.to_parquet(path, index=False)
    return path


# What an exported model expects, said beside its path (stderr) and in docs/storage.md: fed
# raw 8-bit pixels, a CIFAR-10 model scored 0.319 where it had 0.4335 (issue 34)
MODEL_INPUTS = ("the model expects images as it trained on them: float32 arrays (N, height, "
                "width, channels) with pixel values in [0, 1] (8-bit pixels divided by 255)")


def export_model(result: StudyResult, which: str, storage_url: str, checkpoint_dir: Path,
                 out: Path | None = None) -> Path:
    """Copy a trial's kept model (``best``: the best complete trial shown in the report, or
    a trial number) to ``out``: a ``.keras`` file for ``keras.models.load_model``, with its
    optimizer state, as it was after its last epoch. The model is looked for in this study's
    own folder of ``checkpoint_dir`` (``sweep.store.existing_folder``), never in a folder of
    another study of the same name.

    Raises:
        StorageError: the study's folder holds another study's files.
    """
    if which == "best":
        if result.best_trial is None:
            raise UsageError(f"--model best: study {result.name!r} has no complete trial yet")
        number = result.best_trial
    elif which.isdigit():
        number = int(which)
    else:
        raise UsageError(f"--model {which!r}: expected best or a trial number")
    assert result.study_id is not None  # a stored study's result (load_study_result)
    folder = existing_folder(open_storage(storage_url, create=False), result.study_id,
                             result.name, checkpoint_dir)
    kept = kept_model_file(folder, number) if folder else None
    if kept is None or not kept.is_file():
        where = f"at {kept}" if kept else f"in {checkpoint_dir} (no folder of this study there)"
        raise UsageError(f"--model {which}: trial {number} of {result.name!r} has no kept "
                         f"model {where} (kept for trials that completed; --checkpoint-dir "
                         "names the folder the runs used)")
    out = out or Path(f"{file_name(result.name)}-trial{number}.keras")
    shutil.copyfile(kept, out)
    return out
