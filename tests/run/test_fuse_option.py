"""``--fuse`` where fusing cannot happen: under TensorFlow (this suite's backend) the points
train one at a time through Keras' fit, said in one line; a bad value is one usage line."""

from __future__ import annotations

import optuna
import pytest

from sweep.cli import main

from conftest import tiny_study, write_study

pytestmark = pytest.mark.slow


def test_fuse_under_tensorflow_says_so_once_and_trains_every_point(tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.chdir(tmp_path)
    study = tiny_study(None, dataset={"name": "digits", "max_train": 200},
                       search={"sampler": "grid", "repeats": 2,
                               "params": {"training.learning_rate": [0.05, 0.02]}})
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["run", str(write_study(tmp_path, study)), "--storage", url, "--workers", "1",
                 "--progress", "plain", "--fuse", "4"]) == 0
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if "--fuse 4:" in line]  # the header names it too
    assert said == ["[tiny] --fuse 4: fused training needs KERAS_BACKEND=jax (this worker "
                    "runs tensorflow); its points train one at a time"]
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 4
    assert not any("fused" in t.user_attrs for t in trials)


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_fuse_that_is_not_a_size_is_one_usage_line(value, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "study.yaml", "--fuse", value])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(f"argument --fuse: expected a number of at least 1, auto or off, "
                            f"got {value!r}")
