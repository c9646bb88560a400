"""What a run works on: the study opened, created or grown, its points, and what to continue.

Shared by a worker and by the parent of local workers (which plans once and never trains).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from sweep.data import Dataset, load_dataset
from sweep.errors import StorageError
from sweep.records import StudyKey, TrialKey
from sweep.store import (
    StoredTrial,
    check_study,
    claims,
    create_study,
    existing_study,
    halving,
    open_storage,
    open_study,
    read_trials,
    record_class_names,
)
from sweep.store.growth import stored_choices, with_choices
from sweep.store.halving import Ladder
from sweep.study import StudySpec
from sweep.study.space import identity, study_points, trial_config
from sweep.trial.feasible import why_not_trainable
from sweep.trial.hparams import require_tensorboard
from sweep.trial.sampling import suggest


@dataclass(frozen=True)
class PreparedRun:
    """A prepared run. ``spec``'s categorical axes carry the study's stored choices;
    ``points`` maps a claim key to its point in stored form (None: a random/tpe slot)."""

    spec: StudySpec
    store: optuna.storages.RDBStorage
    study_id: int
    points: dict[str, dict | None]
    dataset_for: Callable[[dict, int], Dataset]
    rejected: tuple[dict, ...] = ()  # grid points recorded as failed here (``_reject``)
    # grid points whose last attempt stopped (Ctrl-C, a worker's death): the console says
    # whether they resume from a checkpoint or start over
    stopped: frozenset[str] = frozenset()
    ladder: Ladder | None = None  # successive halving (``search.schedule``), or None


def prepare(spec: StudySpec, storage_url: str, data_dir: str | None) -> PreparedRun:
    """Open the storage, load the study's data, open (growing it to ``spec``) or create the
    study, and give back the done points that must train more epochs.

    The data is loaded before anything is written: a dataset that cannot be had (no download,
    a wrong path), like TensorBoard logs asked for without TensorFlow, is one line of error
    and leaves no half-made study behind.
    ``PreparedRun.dataset_for(cfg, seed)`` caches datasets so a process loads each one once.
    """
    require_tensorboard(spec)
    _check_stored(storage_url, spec)
    datasets: dict[str, Dataset] = {}

    def dataset_for(cfg: dict, seed: int) -> Dataset:
        key = json.dumps([cfg, seed], sort_keys=True)
        if key not in datasets:
            datasets[key] = load_dataset(cfg, seed, data_dir, spec.source)
        return datasets[key]

    data = dataset_for(spec.config["dataset"], spec.seed)
    store = open_storage(storage_url)  # after the data: a bad dataset creates no database file
    if existing_study(store, spec) is None:
        try:
            create_study(store, spec)
        except optuna.exceptions.DuplicatedStudyError:  # another worker created it just now
            existing_study(store, spec)
    record_class_names(store, spec.name, data.class_names)  # the report labels classes so
    study = open_study(store, spec.name)
    study_id = store.get_study_id_from_name(spec.name)
    points = study_points(spec)
    # in bulk, what the two below read (Optuna's get_trials is slow on large studies)
    keys = (TrialKey.CONFIG, TrialKey.SEED, TrialKey.STOPPED_EPOCH, TrialKey.INTERRUPTED,
            TrialKey.DIED)
    trials = read_trials(store.engine, study_id, user_keys=keys)
    _rekey_legacy(store, study_id, spec, trials)
    short, ladder = _short(store, study_id, spec, points, trials), Ladder.of(spec, points)
    if ladder is None:
        claims.reopen(store.engine, study_id, short)
    else:  # a halving study's epochs grew: its old top is a rung, where its points rest
        halving.rest_grown(store.engine, study_id, {
            point: (number, trials[number].value) for point, number in short.items()}, ladder)
    return PreparedRun(with_choices(spec, stored_choices(study)), store, study_id, points,
                       dataset_for, _reject(store, study_id, spec, points, data),
                       _stopped(spec, trials), ladder)


def _stopped(spec: StudySpec, trials: list[StoredTrial]) -> frozenset[str]:
    """The grid points of trials that were stopped before they finished (their claim key)."""
    if not spec.search.enumerates:
        return frozenset()
    axes = frozenset(p.name for p in spec.search.params)
    return frozenset(
        identity(t.user_attrs[TrialKey.CONFIG], t.user_attrs[TrialKey.SEED], axes)
        for t in trials if t.state == TrialState.FAIL and TrialKey.CONFIG in t.user_attrs
        and TrialKey.SEED in t.user_attrs
        and (TrialKey.INTERRUPTED in t.user_attrs or TrialKey.DIED in t.user_attrs))


def _check_stored(storage_url: str, spec: StudySpec) -> None:
    """Refuse a change the stored study may not make before its data is loaded (a changed
    dataset would otherwise be downloaded first). Nothing is created: where there is no
    database yet there is nothing to compare."""
    try:
        store = open_storage(storage_url, create=False)
    except StorageError:
        return  # no database yet, or one that cannot be opened: said when it is opened below
    check_study(store, spec)
    _check_renamed(store, spec)


def _check_renamed(store: optuna.storages.RDBStorage, spec: StudySpec) -> None:
    """Refuse to start the study file's study afresh where the database holds it under
    another name: that run retrained every point. optuna-dashboard renames a study by
    copying its trials into a new study, without sweep's claims, epoch rows and kept models
    (keyed by the old study and trials), so a run under either name would train again.

    Raises:
        StorageError: no study has the file's name, and one stored from a file of that name
            has another.
    """
    summaries = optuna.get_all_study_summaries(store, include_best_trial=False)
    if any(s.study_name == spec.name for s in summaries):
        return
    renamed = [s.study_name for s in summaries
               if (s.user_attrs.get(StudyKey.STUDY) or {}).get("name") == spec.name]
    if renamed:
        raise StorageError(
            f"{spec.source}: name: {spec.name!r}: this database holds that study as "
            f"{renamed[0]!r}, renamed since it ran (optuna-dashboard copies the trials into a "
            "new study, without sweep's epoch rows, claims and kept models): running it "
            "would train every point again, so nothing was trained; give the file a new "
            f"name to start afresh, and read the results of {renamed[0]!r} as they are")


def _reject(store: optuna.storages.RDBStorage, study_id: int, spec: StudySpec, points: dict,
            data: Dataset) -> tuple[dict, ...]:
    """Record as failed, here, each grid point nobody holds whose model cannot be built on
    the study's data or is over ``max_params``: no worker starts only to reject it. Returns
    ``{"trial", "values", "note"}`` of each. Points on other data (a dataset axis) and
    hypermodels are left to the trial."""
    rejected, worker = [], f"{socket.gethostname()}:{os.getpid()}"
    for point, stored in points.items():
        if stored is None:
            continue
        fixed = optuna.trial.FixedTrial(stored)
        values = suggest(fixed, spec.search.params)
        config, seed = trial_config(spec.config, values, spec.seed)
        if config["dataset"] != spec.config["dataset"]:
            continue
        note = why_not_trainable(spec, config, data.input_shape, data.num_classes)
        if note is None or not claims.claim_free(store.engine, study_id, point, worker):
            continue
        trial_id = store.create_new_trial(study_id, template_trial=optuna.trial.create_trial(
            state=TrialState.FAIL, params=fixed.params, distributions=fixed.distributions,
            user_attrs={TrialKey.CONFIG: config, TrialKey.SEED: seed,
                        TrialKey.FAIL_REASON: note}))
        number = store.get_trial_number_from_id(trial_id)
        claims.update(store.engine, study_id, point, worker, trial_number=number, state="done")
        rejected.append({"trial": number, "values": values, "note": note})
    return tuple(rejected)


def _rekey_legacy(store: optuna.storages.RDBStorage, study_id: int, spec: StudySpec,
                  trials: list[StoredTrial]) -> None:
    """sweep 0.1 keyed grid claims by their values (JSON text); key them by identity."""
    axes = frozenset(p.name for p in spec.search.params)
    keys = {}
    for point, number in claims.done(store.engine, study_id).items():
        if point.startswith("{") and number is not None and number < len(trials):
            t = trials[number]
            attrs = t.user_attrs
            keys[point] = identity(attrs[TrialKey.CONFIG], attrs[TrialKey.SEED], axes)
    claims.rekey(store.engine, study_id, keys)


def _short(store: optuna.storages.RDBStorage, study_id: int, spec: StudySpec, points: dict,
           trials: list[StoredTrial]) -> dict[str, int]:
    """The done points whose complete trial trained fewer epochs than the study asks now
    (stopped by ``stop_at_loss``: done; ``training.epochs`` an axis: each point its own)."""
    if any(p.name == "training.epochs" for p in spec.search.params):
        return {}
    target, short = spec.training.epochs, {}
    for point, number in claims.done(store.engine, study_id).items():
        if point not in points or number is None or number >= len(trials):
            continue
        t = trials[number]
        trained = t.user_attrs.get(TrialKey.CONFIG, {}).get("training", {}).get("epochs", target)
        if t.state == TrialState.COMPLETE and TrialKey.STOPPED_EPOCH not in t.user_attrs and (
                trained < target):
            short[point] = number
    return short
