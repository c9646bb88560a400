"""A connection lost during a trial's write (the server stopped or killed the session in the
millisecond a statement ran): the write is made once more, and made once, whether or not
the lost transaction had committed. Before: the worker died with "the storage's connection
was lost during a transaction", its trial failed and the point trained again
(test_a_postgres_restart_mid_sweep_..., 1 run in 4 under load)."""

from __future__ import annotations

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from sweep.store import claims, open_storage, record_epoch, set_trial_user_attrs
from sweep.store.tables import EPOCHS

from conftest import PG_PASSWORD


class _Killer:
    """Ends this engine's session (as ``pg_ctl stop -m fast`` would) just before its next
    statement that holds ``words``; with ``commit_first``, what that statement writes is
    committed first through another connection (the lost transaction had committed)."""

    def __init__(self, engine: sa.Engine, url: str):
        self.other = sa.create_engine(url)
        self.words: str | None = None
        self.commit_first: str | None = None
        self.kills = 0
        sa.event.listen(engine, "before_cursor_execute", self._before)

    def arm(self, words: str, commit_first: str | None = None) -> None:
        self.words, self.commit_first = words, commit_first

    def _before(self, conn, _cursor, statement, *_args) -> None:
        if self.words is None or self.words not in statement:
            return
        self.words = None
        pid = conn.connection.dbapi_connection.info.backend_pid
        with self.other.begin() as other:  # first: the session may hold the row's lock
            other.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        if self.commit_first is not None:
            with self.other.begin() as other:
                other.exec_driver_sql(self.commit_first)
        self.kills += 1


@pytest.fixture
def killed(postgres):
    url = postgres.replace("sweep@", f"sweep:{PG_PASSWORD}@")
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name=f"lost-{id(storage)}")
    killer = _Killer(storage.engine, url)
    yield storage, study, killer
    killer.other.dispose()
    storage.engine.dispose()


def test_an_epoch_row_lost_mid_write_is_written_once(killed):
    storage, study, killer = killed
    trial = study.ask()
    killer.arm("sweep_epochs")  # lost before it committed
    record_epoch(storage, study._study_id, trial.number, {"epoch": 1, "val_loss": 0.5})
    killer.arm("sweep_epochs", commit_first=(  # lost after it committed
        f"INSERT INTO sweep_epochs (study_id, trial_number, epoch, val_loss) "
        f"VALUES ({study._study_id}, {trial.number}, 2, 0.25)"))
    record_epoch(storage, study._study_id, trial.number, {"epoch": 2, "val_loss": 0.25})
    with storage.engine.connect() as conn:
        rows = conn.execute(sa.select(EPOCHS.c.epoch, EPOCHS.c.val_loss)
                            .where(EPOCHS.c.study_id == study._study_id)).all()
    assert sorted(rows) == [(1, 0.5), (2, 0.25)] and killer.kills == 2


def test_optunas_writes_and_the_claims_lost_mid_write_are_made_once(killed):
    storage, study, killer = killed
    trial = study.ask()
    trial_id = trial._trial_id
    killer.arm("trial_intermediate_values")
    trial.report(0.5, step=1)
    killer.arm("trial_user_attributes")
    set_trial_user_attrs(storage, trial_id, {"layers": 4})
    killer.arm("trial_user_attributes")
    trial.set_user_attr("note", "kept")
    assert claims.claim_next(storage.engine, study._study_id, ["a"], "w1") is not None
    killer.arm("sweep_claims")
    assert claims.update(storage.engine, study._study_id, "a", "w1", state="done")
    killer.arm("FROM trial_values")  # a read: read again
    assert storage.get_trial(trial_id).state == TrialState.RUNNING
    killer.arm("UPDATE trials", commit_first=(  # the end committed, its answer lost
        f"UPDATE trials SET state = 'COMPLETE', datetime_complete = now() "
        f"WHERE trial_id = {trial_id}; INSERT INTO trial_values (trial_id, objective, value, "
        f"value_type) VALUES ({trial_id}, 0, 0.5, 'FINITE')"))
    study.tell(trial, 0.5)
    stored = storage.get_trial(trial_id)
    assert stored.state == TrialState.COMPLETE and stored.values == [0.5]
    assert stored.intermediate_values == {1: 0.5}
    assert stored.user_attrs == {"layers": 4, "note": "kept"}
    assert killer.kills == 6


def test_a_lost_write_that_is_not_ours_to_repeat_still_stops_the_run(killed):
    # tell() after another worker ended the trial differently: not taken for our own end
    storage, study, killer = killed
    trial = study.ask()
    killer.arm("UPDATE trials", commit_first=(
        f"UPDATE trials SET state = 'FAIL' WHERE trial_id = {trial._trial_id}"))
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        study.tell(trial, 0.5)
    assert storage.get_trial(trial._trial_id).state == TrialState.FAIL
