"""TensorBoard's HParams tab: with ``training.tensorboard: true`` a sweep writes the HParams
plugin's experiment (axes with their domains, the objective) and one session per trial (its
values, its objective), read back here from the event files as TensorBoard reads them."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata
from tensorboard.util import tensor_util

from sweep.cli import main
from sweep.study import load_study
from sweep.trial.hparams import TrialSession

from conftest import tiny_study, write_study


def _hparams_content(folder: Path, tag: str) -> bytes:
    events = EventAccumulator(str(folder))
    events.Reload()
    return events.PluginTagToContent(metadata.PLUGIN_NAME)[tag]


def experiment_in(folder: Path):
    return metadata.parse_experiment_plugin_data(
        _hparams_content(folder, metadata.EXPERIMENT_TAG))


def session_in(folder: Path) -> dict:
    """The trial's hparams, each as the plain value TensorBoard shows."""
    start = metadata.parse_session_start_info_plugin_data(
        _hparams_content(folder, metadata.SESSION_START_INFO_TAG))
    return {name: getattr(v, v.WhichOneof("kind")) for name, v in start.hparams.items()}


def scalar_in(folder: Path, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return [(e.step, float(tensor_util.make_ndarray(e.tensor_proto)))
            for e in events.Tensors(tag)]


def domain(info) -> list | tuple:
    if info.HasField("domain_discrete"):  # TensorBoard keeps the values sorted
        return [getattr(v, v.WhichOneof("kind")) for v in info.domain_discrete.values]
    return (info.domain_interval.min_value, info.domain_interval.max_value)


@pytest.mark.slow
def test_a_sweep_writes_its_axes_and_objective_for_the_hparams_tab(tmp_path, tiny_npz, db_url,
                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = tiny_study(tiny_npz, search={"sampler": "grid", "params": {
        "model.pooling": ["max", "avg"], "model.dense": [[8], [4, 4]]}})
    raw["training"] |= {"tensorboard": True, "epochs": 2, "snapshots": [2]}
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", db_url]) == 0
    root = tmp_path / "tensorboard" / "tiny"
    experiment = experiment_in(root)
    assert {h.name: domain(h) for h in experiment.hparam_infos} == {
        "model.pooling": ["avg", "max"], "model.dense": ["[4, 4]", "[8]"]}
    assert [m.name.tag for m in experiment.metric_infos] == ["val_accuracy"]
    assert len(list(root.glob("events.out.tfevents.*"))) == 1  # once per study
    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    assert len(trials) == 4
    for t in trials:
        logs = root / f"trial-{t.number}"
        assert session_in(logs) == {"model.pooling": t.params["model.pooling"],
                                    "model.dense": t.params["model.dense"]}
        # the objective, at the last epoch: what the study stored as the trial's value
        assert scalar_in(logs, "val_accuracy") == [(2, pytest.approx(t.value))]
    # the Keras callback's own logs sit beside it, as before
    assert list((root / "trial-0" / "validation").glob("events.out.tfevents.*"))


def test_ranges_booleans_and_a_grown_axis(tmp_path, tiny_npz):
    raw = tiny_study(tiny_npz, search={"sampler": "random", "n_trials": 2, "params": {
        "training.learning_rate": {"low": 0.001, "high": 0.1, "log": True},
        "model.kernel": {"low": 2, "high": 4},
        "model.batch_norm": [False, True]}},
        objective={"metric": ["val_accuracy", "param_count"],
                   "direction": ["maximize", "minimize"]})
    spec = load_study(str(write_study(tmp_path, raw)))
    root = tmp_path / "tensorboard" / "tiny"
    values = {"training.learning_rate": 0.01, "model.kernel": 3, "model.batch_norm": True}
    TrialSession(spec, values, root / "trial-0").end([0.5, 1234.0], epoch=2)
    experiment = experiment_in(root)
    assert {h.name: domain(h) for h in experiment.hparam_infos} == {
        "training.learning_rate": (0.001, 0.1), "model.kernel": (2, 4),
        "model.batch_norm": [False, True]}
    assert [(m.name.tag, m.description) for m in experiment.metric_infos] == [
        ("val_accuracy", "objective: maximize val_accuracy"),
        ("param_count", "objective: minimize param_count")]
    assert session_in(root / "trial-0") == {"training.learning_rate": 0.01, "model.kernel": 3.0,
                                            "model.batch_norm": True}
    assert scalar_in(root / "trial-0", "param_count") == [(2, 1234.0)]
    # A second trial of the same study leaves the experiment as it is ...
    TrialSession(spec, values, root / "trial-1").end([0.5, 1.0], epoch=2)
    assert len(list(root.glob("events.out.tfevents.*"))) == 1
    # ... and a changed search space (an axis added) replaces it: TensorBoard reads one
    # experiment per study.
    raw["search"]["params"]["model.pooling"] = ["max", "avg"]
    grown = load_study(str(write_study(tmp_path, raw)))
    TrialSession(grown, values | {"model.pooling": "avg"}, root / "trial-2").end([0.5, 1.0], 2)
    assert len(list(root.glob("events.out.tfevents.*"))) == 1
    assert [h.name for h in experiment_in(root).hparam_infos][-1] == "model.pooling"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_tensorboard_without_tensorflow_is_one_line_and_nothing_written(
        tmp_path, tiny_npz, db_url, monkeypatch, capsys, workers):
    import keras  # noqa: F401  (Keras itself loaded first: under TensorFlow it needs it)

    # a JAX or PyTorch machine without TensorFlow (the GPU machines lent here have none)
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    monkeypatch.chdir(tmp_path)
    raw = tiny_study(tiny_npz)
    raw["training"]["tensorboard"] = True
    path = write_study(tmp_path, raw)
    assert main(["run", str(path), "--storage", db_url, "--workers", workers]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{path}: training.tensorboard needs TensorFlow" in err
    assert not (tmp_path / "sweeps.db").exists() and not (tmp_path / "tensorboard").exists()
