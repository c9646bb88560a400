"""The bulk reader of a study's trials against Optuna's own ``study.get_trials()``."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from sweep.store import (
    LiveTrials,
    StoredStudy,
    count_trials,
    open_storage,
    open_study,
    read_trials,
)

CHOICES = CategoricalDistribution([None, True, 1, "avg", 2.5, "[16, 16]"])
DISTRIBUTIONS = {"pooling": CHOICES, "lr": FloatDistribution(1e-4, 1e-2, log=True),
                 "units": IntDistribution(8, 64, step=8), "drop": FloatDistribution(0, 0.5)}


def _fill(study: optuna.Study, offset: float, artifact_dir) -> None:
    states = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE]
    for i, choice in enumerate(CHOICES.choices):
        state = states[i % len(states)]
        values = None if state == TrialState.FAIL else [
            offset + i / 10, [math.inf, -math.inf, 0.5][i % 3]]
        params = {"pooling": choice, "lr": 10 ** -(2 + i / 3), "units": 8 * (i + 1)}
        if i % 2:
            params["drop"] = i / 20  # a conditional param: some trials only
        study.add_trial(create_trial(
            state=state, values=values, params=params,
            distributions={k: DISTRIBUTIONS[k] for k in params},
            user_attrs={"config": {"model": {"kernel": i}}, "seed": i, "fail_reason": None,
                        "diagnostics": {"5": {"per_class_accuracy": [0.5, i / 6]}}},
            system_attrs={"other": [i]}))
    trial = study.ask()  # a running trial: no values, no params
    trial.set_user_attr("died", "host:1 gone")
    store = optuna.artifacts.FileSystemArtifactStore(str(artifact_dir))
    picture = artifact_dir.parent / "pca-epoch5.png"
    picture.write_bytes(b"png")
    optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(picture),
                                     study_or_trial=trial)


@pytest.fixture
def stored(tmp_path):
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    storage = open_storage(url)
    (tmp_path / "artifacts").mkdir()
    for name, offset in (("a", 0.0), ("b", 10.0)):  # two studies: only one's trials are read
        study = optuna.create_study(study_name=name, storage=storage,
                                    directions=["maximize", "minimize"])
        _fill(study, offset, tmp_path / "artifacts")
    return storage


@pytest.mark.parametrize("name", ["a", "b"])
def test_bulk_reader_returns_what_optuna_returns(stored, name):
    study = open_study(stored, name)
    expected = study.get_trials(deepcopy=False)
    got = read_trials(stored.engine, stored.get_study_id_from_name(name), artifacts=True)
    assert [t.number for t in got] == [t.number for t in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.state == theirs.state
        assert mine.values == theirs.values
        assert mine.value == (theirs.values[0] if theirs.values else None)
        # the same values of the same types, in the same order (True is not 1)
        assert list(mine.params.items()) == list(theirs.params.items())
        assert [type(v) for v in mine.params.values()] == [
            type(v) for v in theirs.params.values()]
        assert mine.user_attrs == theirs.user_attrs
        metas = optuna.artifacts.get_all_artifact_meta(theirs, storage=stored)
        assert sorted(mine.artifacts) == sorted((m.filename, m.artifact_id) for m in metas)
    assert any(t.artifacts for t in got) and any(math.isinf(v) for t in got
                                                 for v in t.values or ())


def test_bulk_reader_reads_only_the_user_attributes_asked_for(stored):
    got = read_trials(stored.engine, stored.get_study_id_from_name("a"), ("seed", "died"))
    assert [t.user_attrs for t in got] == [{"seed": i} for i in range(6)] + [
        {"died": "host:1 gone"}]
    assert all(t.artifacts == () for t in got)  # not asked for


def test_live_trials_follow_the_study_reading_only_what_can_have_changed(stored):
    study = open_study(stored, "a")
    study_id = stored.get_study_id_from_name("a")
    live = LiveTrials(stored.engine, study_id, ("seed", "died"))

    def same_as_a_full_read():
        everything = read_trials(stored.engine, study_id, ("seed", "died"))
        assert live.read() == everything
        assert count_trials(stored.engine, study_id) == len(everything)

    same_as_a_full_read()  # six finished trials and a running one
    running = study.trials[-1]
    study.tell(running.number, [0.1, 0.2])  # the running trial finishes
    study.ask().set_user_attr("seed", 7)  # and two more come, one finished
    study.add_trial(create_trial(state=TrialState.COMPLETE, values=[1.0, 2.0],
                                 user_attrs={"seed": 8}))
    same_as_a_full_read()
    # a trial finished at the last read is not read again (Optuna's cached storage keeps its
    # finished trials the same way): changed behind its back, it reads as it was
    with stored.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE trial_user_attributes SET value_json = '99' "
                             "WHERE key = 'seed' AND value_json = '0'")
    assert live.read()[0].user_attrs["seed"] == 0
    assert read_trials(stored.engine, study_id, ("seed",))[0].user_attrs["seed"] == 99


@pytest.mark.slow
def test_current_trials_are_the_same_read_in_bulk(swept):
    _, _, url = swept
    storage = open_storage(url, create=False)
    study = open_study(storage, "tiny")
    stored = StoredStudy.read(storage, study)
    bulk = stored.current(read_trials(storage.engine, stored.study_id, ("config", "seed")))
    optuna_current = stored.current(study.get_trials())
    assert [t.number for t in bulk] == [t.number for t in optuna_current] == [0, 1]
    assert stored.best(bulk).number == stored.best(optuna_current).number
