"""Where a study's files live: its checkpoints and kept models (a folder of
``--checkpoint-dir``) and its report (``reports/``), keyed by the study's identity in its
database, not by its name alone: two databases (a scratch SQLite file beside the real one, or
a file and a PostgreSQL server) may each hold a study called ``poolkernel``.

A study gets an identity the first time sweep writes files for it: a random id kept in the
study (the system attribute ``FILES``, with the folder's name) and in a marker file in its
folder (``MARKER``). The folder is named after the study (``file_name``) where that name is
free, else the name and the id's first 8 digits (``poolkernel-1a2b3c4d``); that second name
is also where its files go in another ``--checkpoint-dir`` whose folder of the first name
another study marked. A folder written before studies had markers belongs to the first study
that asks for it, so that existing studies keep their files where they are. A folder whose
marker names another study is never used for this one: reading it is refused in one line.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import cast

import optuna
import sqlalchemy as sa

from sweep.errors import StorageError
from sweep.store.engine import storage_label
from sweep.store.studies import study_system_attr
from sweep.store.tables import OPTUNA_STUDY_SYSTEM
from sweep.study.schema import file_name

FILES = "sweep:files"  # the study system attribute: {"id": ..., "folder": ...}
MARKER = ".sweep-study"  # in the study's folder: {"id", "study": name, "storage": where}


def study_folder(storage: optuna.storages.RDBStorage, study_id: int, name: str,
                 checkpoint_dir: Path) -> Path:
    """The study's folder of ``checkpoint_dir``, made and marked as its own if it is not yet
    (what ``sweep run`` and every worker use before writing a checkpoint).

    Raises:
        StorageError: both folders the study may have here (``_candidates``) hold another
            study's marker, or its ``FILES`` attribute is not sweep's.
    """
    files = _files(storage, study_id)
    if files is None:
        own = uuid.uuid4().hex
        files = _claim(storage, study_id, {"id": own,
                                           "folder": _free_folder(name, own, checkpoint_dir)})
    for leaf in _candidates(files, name):
        folder = checkpoint_dir / leaf
        owner = _owner(folder)
        if owner == files["id"]:
            return folder
        if owner is None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / MARKER).write_text(json.dumps({  # "storage": no password
                "id": files["id"], "study": name, "storage": storage_label(storage.url)}))
            return folder
    raise _foreign(checkpoint_dir / files["folder"], name)


def existing_folder(storage: optuna.storages.RDBStorage, study_id: int, name: str,
                    checkpoint_dir: Path) -> Path | None:
    """The study's folder where sweep wrote its files (None: it has none), read without
    writing anything (``sweep export``, ``status``, ``clean``).

    Raises:
        StorageError: the study's folder holds another study's marker.
    """
    files = _files(storage, study_id)
    if files is None:  # a study from before markers: its name's folder, if no one claimed it
        folder = checkpoint_dir / file_name(name)
        return folder if folder.is_dir() and _owner(folder) is None else None
    for leaf in _candidates(files, name):
        if _owner(checkpoint_dir / leaf) == files["id"]:
            return checkpoint_dir / leaf
    folder = checkpoint_dir / files["folder"]
    if _owner(folder) is not None:
        raise _foreign(folder, name)
    return folder if folder.is_dir() else None  # unmarked: the study's, as it was named


def report_name(storage: optuna.storages.RDBStorage, study_id: int, name: str) -> str:
    """The file name (without ``.html``) of the study's report: its folder's name."""
    files = _files(storage, study_id)
    return files["folder"] if files else file_name(name)


def _candidates(files: dict, name: str) -> list[str]:
    """The folder names a study's files may have in a ``--checkpoint-dir``: the one it was
    given, else (where another study marked that one in this folder) its name and id."""
    return [files["folder"], f"{file_name(name)}-{files['id'][:8]}"]


def _files(storage: optuna.storages.RDBStorage, study_id: int) -> dict | None:
    """The study's ``FILES`` attribute (None: not set yet).

    Raises:
        StorageError: it is not what sweep writes (any Optuna client may write one): a
            folder name that is no plain file name would put files outside their folder.
    """
    files = study_system_attr(storage, study_id, FILES)
    if files is None:
        return None
    if not isinstance(files, dict) or not _sweeps(files):
        raise StorageError(f"study {study_id}: its {FILES} attribute is not sweep's "
                           f"({files!r}); remove it to give the study its files again")
    return files


def _sweeps(files: dict) -> bool:
    """Whether ``files`` is what sweep writes: a plain folder name and a 32-digit id."""
    folder = files.get("folder")
    return isinstance(folder, str) and folder == file_name(folder) and re.fullmatch(
        r"[0-9a-f]{32}", str(files.get("id"))) is not None


def _free_folder(name: str, own: str, checkpoint_dir: Path) -> str:
    """The study's name as a folder where no other study marked it, else with the first 8
    digits of its id (``own``)."""
    plain = file_name(name)
    if _owner(checkpoint_dir / plain) is None:
        return plain
    return f"{plain}-{own[:8]}"


def _claim(storage: optuna.storages.RDBStorage, study_id: int, files: dict) -> dict:
    """Store ``files`` as the study's unless another process stored its own first (Optuna's
    table has one row per study and key): the stored one."""
    try:
        with storage.engine.begin() as conn:
            conn.execute(sa.insert(OPTUNA_STUDY_SYSTEM).values(
                study_id=study_id, key=FILES, value_json=json.dumps(files)))
        return files
    except sa.exc.IntegrityError:  # the other process's, as it wrote it
        return cast(dict, study_system_attr(storage, study_id, FILES))


def marker(folder: Path) -> dict | None:
    """What ``folder``'s marker says (None: no marker, an unreadable one, or no folder)."""
    try:
        said = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return said if isinstance(said, dict) and isinstance(said.get("id"), str) else None


def study_ids(storage: optuna.storages.RDBStorage) -> set[str]:
    """The ids of every study of ``storage`` that has files (``FILES``)."""
    with storage.engine.connect() as conn:
        texts = conn.execute(sa.select(OPTUNA_STUDY_SYSTEM.c.value_json).where(
            OPTUNA_STUDY_SYSTEM.c.key == FILES)).scalars()
        return {json.loads(text)["id"] for text in texts}


def _owner(folder: Path) -> str | None:
    """The id in ``folder``'s marker (None: no marker, or no folder)."""
    said = marker(folder)
    return said["id"] if said else None


def _foreign(folder: Path, name: str) -> StorageError:
    return StorageError(f"{folder} holds the files of another study called {name!r} (in "
                        f"another database: its {MARKER} names another study); give this "
                        "study another --checkpoint-dir, or move that folder away")
