"""A study's identity in our tables: delete and re-create under the same name, old databases."""

from __future__ import annotations

import optuna
import pytest
import sqlalchemy as sa

from sweep.cli import main
from sweep.store import epochs_frame, open_storage, set_trial_user_attrs

from conftest import tiny_study, write_study


@pytest.mark.slow
def test_a_study_deleted_and_created_again_trains_again_with_only_its_own_epochs(
        tmp_path, tiny_npz, db_url, monkeypatch, capsys):
    # before: claims and epochs were keyed by name, so every point counted as done and the
    # dead study's epoch rows leaked into the new one
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, tiny_study(tiny_npz))  # 2 points x 2 epochs
    assert main(["run", str(path), "--storage", db_url]) == 0
    optuna.delete_study(study_name="tiny", storage=db_url)  # what `optuna delete-study` does
    capsys.readouterr()
    assert main(["run", str(path), "--storage", db_url]) == 0
    assert "2 points: 2 run now (0 failed), 0 already done" in capsys.readouterr().out
    store = open_storage(db_url)
    epochs = epochs_frame(store, store.get_study_id_from_name("tiny"))
    assert sorted(zip(epochs.trial_number, epochs.epoch, strict=True)) == [
        (0, 1), (0, 2), (1, 1), (1, 2)]
    with store.engine.connect() as conn:  # nothing of the deleted study is left anywhere
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM sweep_epochs").scalar() == 4
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM sweep_claims").scalar() == 2


def test_a_database_keyed_by_study_name_is_migrated(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    storage = optuna.storages.RDBStorage(url)  # Optuna's tables, as sweep 0.1 left them
    study = optuna.create_study(study_name="old", storage=storage)
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name("old"), study.ask().number)
    with storage.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE sweep_epochs (study_name VARCHAR(512), trial_number INTEGER, "
            "epoch INTEGER, train_loss FLOAT, val_accuracy FLOAT, seconds FLOAT, "
            "PRIMARY KEY (study_name, trial_number, epoch))")
        conn.exec_driver_sql("INSERT INTO sweep_epochs VALUES ('old', 0, 1, 2.0, 0.5, 1.5), "
                             "('gone', 0, 1, 2.0, 0.5, 1.5)")
        conn.exec_driver_sql(
            "CREATE TABLE sweep_claims (study_name VARCHAR(512), point VARCHAR(1024), "
            "worker VARCHAR(256), state VARCHAR(16), trial_id INTEGER, heartbeat FLOAT, "
            "PRIMARY KEY (study_name, point))")
        conn.exec_driver_sql(f"INSERT INTO sweep_claims VALUES ('old', 'p', 'h:1', 'done', "
                             f"{trial_id}, 1.0)")
    store = open_storage(url)
    study_id = store.get_study_id_from_name("old")
    epochs = epochs_frame(store, study_id)
    assert epochs[["trial_number", "epoch", "train_loss", "val_accuracy"]].values.tolist() == [
        [0, 1, 2.0, 0.5]]
    assert epochs["roc_auc"].isna().all()  # a newer column, added empty
    with store.engine.connect() as conn:
        claim = conn.execute(sa.text("SELECT * FROM sweep_claims")).mappings().one()
    assert dict(claim) == {"study_id": study_id, "point": "p", "worker": "h:1",
                           "state": "done", "trial_number": 0, "heartbeat": 1.0,
                           "rung": None, "scores": None}  # halving's columns, empty


def test_a_trial_that_is_starting_is_current_before_its_seed_is_stored(tmp_path):
    # before: the --workers parent read a trial between its config and seed attributes and
    # crashed on KeyError: 'seed'
    from sweep.store import StoredStudy

    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_storage(url)
    study = optuna.create_study(study_name="s", storage=store)
    study.set_user_attr("study", {"search": {"params": {}}, "model": {}, "seed": 0})
    trial = study.ask()
    trial.set_user_attr("config", {"model": {}})  # the seed comes in the next transaction
    stored = StoredStudy.read(store, study)
    assert [t.number for t in stored.current(study.get_trials())] == [trial.number]


def test_a_trials_user_attributes_are_set_together_in_one_transaction(tmp_path):
    store = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(study_name="s", storage=store)
    trial = study.ask()
    trial.set_user_attr("seed", 1)
    trial_id = store.get_trial_id_from_study_id_trial_number(store.get_study_id_from_name("s"),
                                                             trial.number)
    commits = []
    sa.event.listen(store.engine, "commit", lambda conn: commits.append(conn))
    attrs = {"seed": 2, "layers": [{"layer": "conv", "stride": None}], "reused_step": True}
    set_trial_user_attrs(store, trial_id, attrs)
    assert len(commits) == 1
    assert store.get_trial(trial_id).user_attrs == attrs  # as Optuna reads them, seed replaced
    study.tell(trial, 0.5)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        set_trial_user_attrs(store, trial_id, {"seed": 3})  # as Optuna's own setter refuses
    assert store.get_trial(trial_id).user_attrs["seed"] == 2


def test_the_early_check_lets_a_study_another_worker_is_creating_pass(tmp_path, tiny_npz,
                                                                        db_url):
    # create_study and storing its study file are two transactions: a worker that looks in
    # between saw an empty study file and refused every field as changed (two Slurm tasks)
    from sweep.errors import StorageError
    from sweep.store import check_study, create_study
    from sweep.study import validate

    spec = validate(tiny_study(tiny_npz), "s.yaml")
    store = open_storage(db_url)
    optuna.create_study(study_name=spec.name, storage=store)  # the file is not stored yet
    check_study(store, spec)
    optuna.delete_study(study_name=spec.name, storage=store)
    create_study(store, spec)  # stored now: a refused change is refused early
    changed = validate(tiny_study(tiny_npz, dataset={"name": "digits"}), "s.yaml")
    with pytest.raises(StorageError, match="dataset.name"):
        check_study(store, changed)
