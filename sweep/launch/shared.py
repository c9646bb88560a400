"""Whether a path is on this node only: what Slurm's workers on other nodes would not see.

A batch job runs where the scheduler puts it, so the working folder, the study file, the
Python environment and the checkpoint and artifact folders must be on a file system the
nodes share. ``/tmp`` never is (each node has its own), and ``stat -f`` names the type of
the rest: local disks and memory file systems are not shared; network and cluster file
systems (nfs, lustre, gpfs, beegfs, cephfs, ...) are; a type ``stat`` cannot name is given
the benefit of the doubt.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path, PurePath

NODE_LOCAL_DIRS = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"))
# `stat -f -c %T` names of file systems that live on one machine ("ext2/ext3": any ext).
LOCAL_TYPES = frozenset({"tmpfs", "ramfs", "devtmpfs", "ext2/ext3", "xfs", "btrfs", "zfs",
                         "f2fs", "overlayfs", "squashfs", "vfat", "msdos", "jfs", "reiserfs"})


def node_local(path: Path) -> str | None:
    """Why ``path`` is likely this node's alone ("under /tmp", "on tmpfs"), or None."""
    resolved = Path(path).resolve()
    for folder in NODE_LOCAL_DIRS:
        if resolved == folder or folder in resolved.parents:
            return f"under {folder}"
    kind = file_system_type(resolved)
    return f"on {kind}, a local file system" if kind in LOCAL_TYPES else None


def file_system_type(path: Path) -> str | None:
    """``stat -f``'s name for the file system of ``path`` (or of its nearest existing
    folder: checkpoint folders are made by the workers), None when stat cannot say."""
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        found = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if found.returncode != 0:
        return None
    return found.stdout.strip() or None


def node_local_warning(paths: Mapping[str, PurePath], where: str, fix: str) -> str | None:
    """One line naming each of ``paths`` (what it is -> path) that is this node's alone, those
    inside an earlier one by name only; None when all may be shared. ``where`` says who runs
    elsewhere, ``fix`` what to do."""
    listed: dict[Path, list] = {}  # a node-local path -> [what, why, names of paths inside]
    for what, path in paths.items():
        resolved = Path(path).resolve()
        holder = next((p for p in listed if p in resolved.parents), None)
        if holder is not None:
            listed[holder][2].append(what)
        elif (why := node_local(resolved)) is not None:
            listed[resolved] = [what, why, []]
    if not listed:
        return None
    named = []
    for path, (what, why, inside) in listed.items():
        held = f", with the {_and(inside)} in it" if inside else ""
        named.append(f"{what} {path} ({why}{held})")
    return f"{'; '.join(named)}: {where} may not see them; {fix}"


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
