"""``sweep status``: what a study holds right now, as text."""

from __future__ import annotations

import socket
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from optuna.trial import TrialState

from sweep.defaults import CHECKPOINT_DIR
from sweep.errors import StorageError, megabytes
from sweep.records import TrialKey
from sweep.report.disk import folder_bytes
from sweep.store import (
    StoredStudy,
    StoredTrial,
    claims,
    epochs_frame,
    existing_folder,
    halving,
    open_storage,
    open_study,
    read_trials,
    safe_url,
)
from sweep.study.plugins import SAMPLERS
from sweep.training.checkpoints import checkpoint_file, saved_epochs

if TYPE_CHECKING:
    import optuna

# the user attributes status reads (the rest, provenance and layers, is never decoded here)
STATUS_KEYS = (TrialKey.CONFIG, TrialKey.SEED, TrialKey.OBJECTIVE_EPOCH, TrialKey.FAIL_REASON,
               TrialKey.DIED, TrialKey.INTERRUPTED)


def study_status(name: str, storage_url: str, checkpoint_dir: Path = CHECKPOINT_DIR) -> str:
    """Trial counts by state, the best complete trial, what each worker is doing (its trial,
    the last epoch stored, its heartbeat), failures with reasons, and the disk its kept
    models take in ``checkpoint_dir``."""
    store = open_storage(storage_url, create=False)
    study = open_study(store, name)
    stored = StoredStudy.read(store, study)
    trials = read_trials(store.engine, stored.study_id, STATUS_KEYS)  # in bulk, by number
    current = stored.current(trials)  # one per point; earlier attempts are history
    counts = Counter(_state(t) for t in current)
    history = len(trials) - len(current)
    waiting = stored.planned - len(current)  # points no trial has started yet
    lines = [
        f"study {name} in {safe_url(storage_url)}: {stored.planned} planned; "
        + ", ".join([f"{n} {state}" for state, n in sorted(counts.items())]
                    + [f"{waiting} not started"] * (waiting > 0))
        + (f" ({history} earlier attempt(s) kept as history)" if history else "")
    ]
    lines += _best_lines(study, stored, current, counts)
    if stored.definition.get("search", {}).get("schedule"):
        reached = halving.rungs_reached(store.engine, stored.study_id)
        lines.append(f"rungs reached (halving): {halving.reached_text(reached)}")
    lines += _worker_lines(store, stored, trials)
    folder: Path | None
    try:
        folder = existing_folder(store, stored.study_id, name, checkpoint_dir)
    except StorageError as e:  # the folder of this name holds another database's study
        lines.append(f"disk: none of this study's; {e}")
        folder = None
    lines += _unfinished_lines(stored, current, folder)
    models = folder_bytes(folder) if folder else 0
    if models:
        lines.append(f"disk: {megabytes(models)} of kept models and checkpoints in "
                     f"{folder} (`sweep clean {name}` frees them)")
    return "\n".join(lines)


def _best_lines(study: optuna.Study, stored: StoredStudy, current: list[StoredTrial],
                counts: Counter[str]) -> list[str]:
    """The best complete trial (or the Pareto front) among ``current``."""
    if not counts["complete"]:
        return []
    if len(study.directions) > 1:
        shown = {t.number for t in current}
        front = sorted(t.number for t in study.best_trials if t.number in shown)
        return [f"Pareto front of {' vs '.join(stored.metrics)}: trials {front}"]
    best = stored.best(current)
    assert best is not None  # counts say one is complete
    epoch = best.user_attrs.get(TrialKey.OBJECTIVE_EPOCH)
    where = "" if epoch is None else f" at epoch {epoch}" + (
        " (its best)" if stored.at == "best" else "")
    return [f"best {stored.metrics[0]} {best.value:.4f}{where}: trial {best.number} "
            f"{best.params}"]


def _worker_lines(store: optuna.storages.RDBStorage, stored: StoredStudy,
                  trials: list[StoredTrial]) -> list[str]:
    """What each worker holding a claim is doing (its trial, the last epoch stored, its
    heartbeat), or that it is dead."""
    running = claims.running(store.engine, stored.study_id)
    if not running:
        return []
    epochs = epochs_frame(store, stored.study_id)
    last_epoch = epochs.groupby("trial_number")["epoch"].max().to_dict() if len(epochs) else {}
    now, host, lines = time.time(), socket.gethostname(), []
    for claim in running:
        if claims.is_dead(claim.worker, claim.heartbeat, now, host):
            # before: listed as running ("heartbeat 74s ago") until a worker took it over
            lines.append(f"dead worker {claim.worker} (no heartbeat for "
                         f"{now - claim.heartbeat:.0f}s): its point runs again, from its "
                         "checkpoint, when a worker takes it over (`sweep run` again)")
            continue
        if claim.trial_number is None or claim.trial_number >= len(trials):
            lines.append(f"worker {claim.worker}: starting a trial")
            continue
        t = trials[claim.trial_number]  # Optuna lists a study's trials by number
        total_epochs = t.user_attrs.get(TrialKey.CONFIG, {}).get("training", {}).get("epochs", "?")
        lines.append(
            f"worker {claim.worker}: trial {t.number} {t.params} epoch "
            f"{last_epoch.get(t.number, 0)}/{total_epochs} "
            f"(heartbeat {now - claim.heartbeat:.0f}s ago)"
        )
    return lines


def _unfinished_lines(stored: StoredStudy, current: list[StoredTrial],
                      folder: Path | None) -> list[str]:
    """Each interrupted trial (what the next run does with it) and failed one (why)."""
    # a grid point's checkpoint is keyed by the point; a random/tpe slot's by its slot, which
    # no trial records
    sampler = SAMPLERS.get(stored.definition.get("search", {}).get("sampler", "grid"))
    lines = []
    for t in current:
        if _state(t) == "interrupted":
            point = stored.point_key(t) if sampler and sampler.enumerates else None
            lines.append(f"interrupted: trial {t.number} {t.params}: {_resumes(folder, point)}")
        elif t.state == TrialState.FAIL:
            reason = t.user_attrs.get(TrialKey.FAIL_REASON) or t.user_attrs.get(TrialKey.DIED)
            lines.append(f"failed: trial {t.number} {t.params}: {reason or 'unknown'}")
    return lines


def _resumes(folder: Path | None, point: str | None) -> str:
    """What the next run does with an interrupted point, from what is on disk (``point``:
    None where its checkpoint cannot be named)."""
    if point is None:
        return "runs again with the next `sweep run`, from its checkpoint if one was written"
    saved = saved_epochs(checkpoint_file(folder, point)) if folder else 0
    if saved:
        return f"runs again from its checkpoint (after epoch {saved}) with the next `sweep run`"
    return ("starts over from epoch 1 with the next `sweep run` (no checkpoint was written "
            "before it stopped)")


def _state(trial: StoredTrial) -> str:
    """A trial's state as ``status`` counts it: a trial stopped by Ctrl-C or a crash is
    stored failed (Optuna has no other end for it) but is ``interrupted``, not failed."""
    if trial.state == TrialState.FAIL and trial.user_attrs.get(TrialKey.INTERRUPTED):
        return "interrupted"
    return trial.state.name.lower()
