"""What a study keeps on disk, and ``sweep clean``: its kept models and checkpoints (its own
folder of ``--checkpoint-dir``, marked as its own: ``sweep.store.files``) and its trials'
pictures (files of the artifact store, named by the ids its trials hold). 6 points x 10
epochs of the quickstart keep 9.1 MB of models; nothing removes them but this.
"""

from __future__ import annotations

import re
import shutil
import socket
import time
from pathlib import Path

from sweep.errors import UsageError, megabytes
from sweep.store import (
    artifact_file,
    claims,
    existing_folder,
    forget_artifacts,
    marker,
    open_storage,
    open_study,
    storage_label,
    study_ids,
)

# how optuna.artifacts' file store names a file: the artifact's id, a UUID
ARTIFACT_NAME = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def folder_bytes(folder: Path) -> int:
    """The bytes of the regular files under ``folder`` (0 where there is none)."""
    if not folder.is_dir():
        return 0
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())


def clean(study: str | None, everything: bool, storage_url: str, checkpoint_dir: Path,
          artifact_dir: Path, dry_run: bool = False) -> str:
    """``sweep clean NAME`` (``clean_study``) or ``sweep clean --all`` (``clean_orphans``);
    ``dry_run``: say what would be deleted, delete nothing."""
    if everything == (study is not None):
        raise UsageError("sweep clean: give a study's name, or --all (not both)")
    if everything:
        said = clean_orphans(storage_url, checkpoint_dir, artifact_dir, dry_run)
    else:
        assert study is not None  # a study's name or --all, checked above
        said = clean_study(study, storage_url, checkpoint_dir, artifact_dir, dry_run)
    return said.replace("freed", "would free", 1) + "; nothing deleted (--dry-run)" \
        if dry_run else said


def clean_study(name: str, storage_url: str, checkpoint_dir: Path, artifact_dir: Path,
                dry_run: bool = False) -> str:
    """Remove the study's kept models and checkpoints and its trials' pictures (``dry_run``:
    only count them); say what was freed and what it costs. Its results in the database stay.

    Raises:
        UsageError: workers are training the study now.
    """
    store = open_storage(storage_url, create=False)
    open_study(store, name)  # the one-line error for a study that is not there
    study_id = store.get_study_id_from_name(name)
    now, host = time.time(), socket.gethostname()
    live = [c.worker for c in claims.running(store.engine, study_id)
            if not claims.is_dead(c.worker, c.heartbeat, now, host)]
    if live:
        raise UsageError(f"{name}: workers are training it ({', '.join(live)}); clean it "
                         "once they are done")
    folder = existing_folder(store, study_id, name, checkpoint_dir)  # never another's
    models = folder_bytes(folder) if folder else 0
    if folder and not dry_run:
        shutil.rmtree(folder, ignore_errors=True)
    pictures, count = _remove(artifact_dir, forget_artifacts(store.engine, study_id,
                                                             forget=not dry_run), dry_run)
    return (f"{name}: freed {megabytes(models)} of kept models and checkpoints "
            f"({folder or 'no folder of this study in ' + str(checkpoint_dir)}) "
            f"and {megabytes(pictures)} of pictures ({count} files in {artifact_dir}); its "
            "results stay, but a trial whose epochs grow now trains from epoch 1, and "
            "`sweep export --model` has no model to copy")


def clean_orphans(storage_url: str, checkpoint_dir: Path, artifact_dir: Path,
                  dry_run: bool = False) -> str:
    """``sweep clean --all``: what studies no longer in the database left on disk, their
    checkpoint folders (those whose marker names this database and a study it no longer
    holds: a folder of another database's study, or without sweep's marker, is left alone)
    and pictures no study's trial names."""
    store = open_storage(storage_url, create=False)
    here, ids = storage_label(storage_url), study_ids(store)
    marked = {f: marker(f) for f in sorted(checkpoint_dir.iterdir())
              if f.is_dir()} if checkpoint_dir.is_dir() else {}
    left = [f for f, said in marked.items()
            if said and said.get("storage") == here and said["id"] not in ids]
    models = sum(folder_bytes(f) for f in left)
    for folder in left if not dry_run else ():
        shutil.rmtree(folder, ignore_errors=True)
    named = set(forget_artifacts(store.engine))
    # only files named as Optuna names an artifact (a UUID): never the database, a report or
    # anything else that shares the folder (`--artifact-dir .` removed sweeps.db)
    unnamed = [f.name for f in artifact_dir.iterdir()
               if ARTIFACT_NAME.fullmatch(f.name) and f.name not in named
               ] if artifact_dir.is_dir() else []
    pictures, count = _remove(artifact_dir, unnamed, dry_run)
    return (f"freed {megabytes(models)} of {len(left)} deleted studies' models "
            f"({', '.join(f.name for f in left) or 'none'}) and {megabytes(pictures)} of "
            f"pictures no trial names ({count} files in {artifact_dir})")


def _remove(artifact_dir: Path, ids: list[str], dry_run: bool = False) -> tuple[int, int]:
    """Delete the files of ``ids`` in ``artifact_dir`` (``artifact_file``; ``dry_run``: only
    count them): ``(bytes, files)``."""
    size, count = 0, 0
    for artifact_id in ids:
        path = artifact_file(artifact_dir, artifact_id)
        if path is not None:
            size += path.stat().st_size
            if not dry_run:
                path.unlink()
            count += 1
    return size, count
