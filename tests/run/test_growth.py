"""Studies that grow (issue 13): add values, add an axis, fix an axis, train longer, take a
model out, compare studies; only the new work trains, on SQLite and on PostgreSQL."""

from __future__ import annotations

import optuna
import pytest

from sweep.cli import main
from sweep.report import load_study_result
from sweep.store import epochs_frame, open_storage

from conftest import tiny_study, write_study

pytestmark = pytest.mark.slow


def digits_study(**changes) -> dict:
    """A small study on scikit-learn's digits: a 2 x 2 grid at 2 epochs."""
    study = tiny_study(None, dataset={"name": "digits", "max_train": 300},
                       search={"params": {"model.pooling": ["max", "avg"],
                                          "model.kernel": [3, 5]}})
    study["training"] = {"learning_rate": 0.01, "batch_size": 32, "epochs": 2}
    return study | changes


def _run(tmp_path, raw, url, *extra) -> None:
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", url, *extra]) == 0


def _trials(url: str, name: str = "tiny") -> list:
    return optuna.load_study(study_name=name, storage=url).trials


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request, db_url):
    return db_url if request.param == "sqlite" else request.getfixturevalue("postgres_db")


@pytest.fixture
def postgres_db(postgres, monkeypatch, request):
    """The suite's PostgreSQL server (its password from the environment, as a user would give
    it), with no study named tiny before or after."""
    from conftest import PG_PASSWORD

    monkeypatch.setenv("PGPASSWORD", PG_PASSWORD)
    _forget(postgres)
    yield postgres
    _forget(postgres)  # the server is the suite's: leave no study named tiny behind


def _forget(url: str) -> None:
    try:
        optuna.delete_study(study_name="tiny", storage=url)
    except KeyError:
        pass


def test_a_grid_grown_in_values_and_epochs_trains_only_the_new_work(tmp_path, storage_url,
                                                                     monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    raw = digits_study()
    _run(tmp_path, raw, storage_url)
    first = _trials(storage_url)
    assert len(first) == 4
    raw["search"]["params"]["model.kernel"] = [3, 5, 7]
    raw["training"]["epochs"] = 4
    capsys.readouterr()
    _run(tmp_path, raw, storage_url, *(["--workers", "2"] if "postgres" in storage_url else []))
    # the console says what happens: 4 points continued, only their new epochs shown (before:
    # "0 already done, 6 to train", then epochs 1-2 of the earlier trials printed again)
    printed = capsys.readouterr()
    lines = printed.err.splitlines()
    assert ": 0 already done, 4 to continue with more epochs, 2 to train" in lines[0]
    assert sum(" continues trial " in line and " from epoch 2" in line for line in lines) == 4
    shown = [line for line in lines if " epoch 1/4 " in line or " epoch 2/4 " in line]
    assert len(shown) == 4 and all("kernel=7" in line for line in shown)
    assert sum(" epoch 4/4 " in line for line in lines) == 6
    assert "6 run now (4 continued with more epochs, 0 failed), 0 already done" in printed.out
    trials = _trials(storage_url)
    new = trials[4:]
    assert len(new) == 6  # 4 points continued + 2 new points, nothing else
    continued = [t for t in new if "continued_from_trial" in t.user_attrs]
    fresh = [t for t in new if "continued_from_trial" not in t.user_attrs]
    assert len(continued) == 4 and len(fresh) == 2
    assert {t.params["model.kernel"] for t in fresh} == {7}
    trained = sum(4 - t.user_attrs.get("resumed_from_epoch", 0) for t in new)
    assert trained == 2 * 4 + 4 * 2
    assert all(t.state.name == "COMPLETE" for t in new)
    store = open_storage(storage_url)
    epochs = epochs_frame(store, store.get_study_id_from_name("tiny"))
    # the trials continued say which trial counts now (the dashboard lists both as complete)
    superseded = {t.number: t.user_attrs.get("superseded_by_trial") for t in trials[:4]}
    assert superseded == {t.user_attrs["continued_from_trial"]: t.number for t in continued}
    for t in continued:  # one curve: epochs 1..4, the first two those of the trial continued
        rows = epochs[epochs.trial_number == t.number].set_index("epoch")
        old = epochs[epochs.trial_number == t.user_attrs["continued_from_trial"]].set_index(
            "epoch")
        assert list(rows.index) == [1, 2, 3, 4]
        assert rows.loc[2, "train_loss"] == pytest.approx(old.loc[2, "train_loss"])
        # the joint: on from where the trial stopped (a fresh model would start near epoch 1's
        # loss again, above epoch 2's)
        assert rows.loc[3, "train_loss"] < rows.loc[2, "train_loss"] < rows.loc[1, "train_loss"]
        # its training time counts the epochs it continued too (issue 34: only its new ones)
        assert t.user_attrs["train_seconds"] == pytest.approx(rows["seconds"].sum())
        earlier = trials[t.user_attrs["continued_from_trial"]].user_attrs["train_seconds"]
        assert t.user_attrs["train_seconds"] > earlier
    from sweep.report import study_status

    assert "6 planned; 6 complete (4 earlier attempt(s) kept as history)" in study_status(
        "tiny", storage_url).splitlines()[0]
    result = load_study_result("tiny", storage_url)  # the report: one trial per point
    assert sorted(result.trials["trial"]) == [t.number for t in new]
    assert result.snapshots.groupby("trial")["epoch"].max().eq(4).all()
    stock = optuna.load_study(study_name="tiny", storage=storage_url)  # stock Optuna reads it
    assert len(stock.trials_dataframe()) == 10
    assert stock.trials[0].distributions["model.kernel"].choices == (3, 5, 7)


def test_a_new_axis_at_the_old_fixed_value_trains_only_its_new_values(tmp_path, db_url,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = digits_study(search={"params": {"model.pooling": ["max", "avg"]}})
    _run(tmp_path, raw, db_url)
    raw["search"]["params"]["model.dropout"] = [0.0, 0.2]
    _run(tmp_path, raw, db_url)
    trials = _trials(db_url)
    assert len(trials) == 4
    assert [t.params.get("model.dropout") for t in trials[2:]] == [0.2, 0.2]
    shown = load_study_result("tiny", db_url).trials
    assert sorted(zip(shown["model.pooling"], shown["model.dropout"], strict=True)) == [
        ("avg", 0.0), ("avg", 0.2), ("max", 0.0), ("max", 0.2)]
    # fixing the axis again keeps the matching trials and hides the others
    raw["search"]["params"].pop("model.dropout")
    raw["model"] = {**raw["model"], "dropout": 0.2}
    _run(tmp_path, raw, db_url)
    assert len(_trials(db_url)) == 4
    assert sorted(load_study_result("tiny", db_url).trials["trial"]) == [2, 3]
    from sweep.report import study_status
    from sweep.run.progress import SweepResult
    from sweep.store import open_storage, open_study

    best_line = study_status("tiny", db_url).splitlines()[1]  # the best of what is shown
    assert best_line.split(": trial ")[1].split(" ")[0] in ("2", "3")
    result = SweepResult(total=2)
    store = open_storage(db_url)
    result.update_best(store, open_study(store, "tiny"))  # the console's best, the same
    assert result.best_trial in (2, 3)


def test_the_best_model_comes_out_and_scores_what_was_recorded(tmp_path, db_url, monkeypatch):
    import keras

    from sweep.data import load_dataset

    monkeypatch.chdir(tmp_path)
    raw = digits_study(search={"params": {"model.pooling": ["max", "avg"]}})
    _run(tmp_path, raw, db_url)
    assert main(["export", "tiny", "--storage", db_url, "--model", "best",
                 "--out", "best.keras"]) == 0
    result = load_study_result("tiny", db_url)
    recorded = result.snapshots.set_index("trial").loc[result.best_trial, "test_accuracy"]
    model = keras.models.load_model(tmp_path / "best.keras")
    data = load_dataset({"name": "digits", "validation_split": 0.25, "max_train": 300}, 0)
    _, accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
    assert accuracy == pytest.approx(recorded, abs=1e-6)
    assert main(["export", "tiny", "--storage", db_url, "--model", "9"]) == 2


def test_two_studies_compare_in_one_report(tmp_path, db_url, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = digits_study(search={"params": {"model.pooling": ["max", "avg"]}})
    _run(tmp_path, raw, db_url)
    _run(tmp_path, raw | {"name": "with_bn", "model": {**raw["model"], "batch_norm": True}},
         db_url)
    assert main(["report", "tiny", "with_bn", "--storage", db_url]) == 0
    from sweep.report import compare_figures

    figures = compare_figures([load_study_result(n, db_url) for n in ("tiny", "with_bn")])
    assert [f.layout.title.text for f in figures] == [
        "Studies compared, grouped by study", "Studies compared, grouped by model.pooling",
        "Learning curves: tiny", "Learning curves: with_bn"]
    assert {trace.name for trace in figures[0].data} == {"tiny", "with_bn"}
    # by pooling: a box per study within each value, side by side (before: one box per value
    # holding both studies' trials)
    by_pooling = figures[1]
    assert by_pooling.layout.boxmode == "group"
    boxes = [(t.name, set(t.x), len(t.y)) for t in by_pooling.data if t.xaxis == "x"]
    assert sorted((name, *x) for name, x, _ in boxes) == [
        ("tiny", "avg"), ("tiny", "max"), ("with_bn", "avg"), ("with_bn", "max")]
    assert all(n == 1 for _, _, n in boxes)
    page = (tmp_path / "reports" / "compare-tiny-with_bn.html").read_text()
    assert "<td>model.batch_norm</td>" in page.replace("\n", "").replace(" ", "")
    answer = page.split("<h2>The answer</h2>")[1].split("</pre>")[0]  # issue 26
    first = answer.split(">")[-1].splitlines()[0]  # with_bn against tiny, point by point
    assert first.startswith(("study: ", "study matters: "))
    assert "over 4 trials, blocks 2 model.pooling" in first
    assert "None" not in page.split("sweep-figures")[-1]  # the tables: blanks stay blank
    assert main(["report", "tiny", "--storage", db_url]) == 0
    single = (tmp_path / "reports" / "tiny.html").stat().st_size
    assert len(page) < single * 1.3  # plotly.js packed once, as in a single report


def test_random_studies_grow_their_choices_and_refuse_to_lose_one(tmp_path, db_url,
                                                                  monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    raw = digits_study(search={"sampler": "random", "n_trials": 2, "params": {
        "model.pooling": ["max"], "training.learning_rate": {"low": 0.001, "high": 0.01}}})
    _run(tmp_path, raw, db_url)
    raw["search"]["params"]["model.pooling"] = ["max", "avg"]
    raw["search"]["params"]["training.learning_rate"] = {"low": 0.0005, "high": 0.05}
    raw["search"]["n_trials"] = 4
    _run(tmp_path, raw, db_url)
    trials = _trials(db_url)
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    assert trials[0].distributions["model.pooling"].choices == ("max", "avg")
    raw["search"]["params"]["model.pooling"] = ["avg"]
    capsys.readouterr()
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", db_url]) == 2
    assert "values can be added, not removed" in capsys.readouterr().err


def test_a_refused_dataset_change_is_said_before_any_download(tmp_path, db_url, monkeypatch,
                                                               capsys):
    # before: `--set training.epochs=8` without the earlier dataset flags tried to download
    # CIFAR-10 for 30 s, then failed offline; the stored study is compared first now
    import keras

    monkeypatch.chdir(tmp_path)
    _run(tmp_path, digits_study(search={"params": {"model.pooling": ["max"]}}), db_url)
    downloads = []
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: downloads.append(1))
    changed = digits_study(search={"params": {"model.pooling": ["max"]}},
                           dataset={"name": "cifar10", "max_train": 300})
    assert main(["run", str(write_study(tmp_path, changed)), "--storage", db_url]) == 2
    err = capsys.readouterr().err
    assert "dataset.name" in err and "Traceback" not in err
    assert downloads == []


def test_repeats_train_each_point_with_more_seeds_and_grow_keeping_those_trained(tmp_path,
                                                                                 db_url):
    raw = digits_study(search={"params": {"model.pooling": ["max", "avg"]}})
    _run(tmp_path, raw, db_url)
    first = {t.number: t.params for t in _trials(db_url)}
    assert sorted(p["model.pooling"] for p in first.values()) == ["avg", "max"]
    _run(tmp_path, raw | {"search": {**raw["search"], "repeats": 3}}, db_url)
    trials = _trials(db_url)
    assert {t.number: t.params for t in trials[:2]} == first  # trained once, kept
    seeds = sorted((t.params["model.pooling"], t.params.get("seed", 0)) for t in trials)
    assert seeds == [("avg", 0), ("avg", 1), ("avg", 2), ("max", 0), ("max", 1), ("max", 2)]
    assert len({t.user_attrs["seed"] for t in trials[2:]}) == 2  # the new trials' own seeds
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


def test_a_study_renamed_in_the_dashboard_is_not_trained_again(tmp_path, db_url, capsys,
                                                               monkeypatch):
    # issue 33: renamed in optuna-dashboard, then `sweep run` of its file: "0 already done, 6
    # to train", every point retrained and the old epoch rows purged
    monkeypatch.chdir(tmp_path)
    storage_url = db_url
    path = write_study(tmp_path, digits_study())
    assert main(["run", str(path), "--storage", storage_url]) == 0
    old = optuna.load_study(study_name="tiny", storage=storage_url)
    renamed = optuna.create_study(study_name="tiny-renamed", storage=storage_url,
                                  directions=old.directions)  # as the dashboard renames
    renamed.add_trials(old.get_trials(deepcopy=False))
    for key, value in old.user_attrs.items():
        renamed.set_user_attr(key, value)
    optuna.delete_study(study_name="tiny", storage=storage_url)
    capsys.readouterr()
    assert main(["run", str(path), "--storage", storage_url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "this database holds that study as 'tiny-renamed'" in err[0]
    assert [s.study_name for s in optuna.get_all_study_summaries(storage_url)] == [
        "tiny-renamed"]  # nothing created, nothing trained
    assert len(optuna.load_study(study_name="tiny-renamed", storage=storage_url).trials) == 4
