"""The dashboard's side of storage: figures saved into a study, the artifact option, errors.
(The dashboard itself, in a browser: test_browser.py.)"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from sweep.cli import _parser, main
from sweep.report import load_study_result, report_figures, study_answer
from sweep.report.dashboard import one_per_panel, save_figures
from sweep.report.effect_figures import answer_figures
from sweep.run.options import worker_options


def _system_attrs(url: str) -> dict:
    store = optuna.storages.RDBStorage(url)
    return store.get_study_system_attrs(store.get_study_id_from_name("tiny"))


def _plot_keys(url: str) -> list[str]:
    return sorted(k for k in _system_attrs(url) if k.startswith("dashboard:plot_data:"))


@pytest.mark.slow
def test_report_figures_are_saved_into_the_study_once(swept):
    _, _, url = swept  # `sweep run` saved them when it wrote the report
    keys = _plot_keys(url)
    ids = {k.split(":")[2] for k in keys}
    result = load_study_result("tiny", url)
    figures = answer_figures(result, study_answer(result)) + report_figures(result)
    # no effects figure: two points, one run each, leave nothing to measure the noise with
    titles = ["sweep-grouped-by-model.pooling", "sweep-grouped-by-epoch",
              "sweep-learning-curves", "sweep-diagnostics-by-model.pooling",
              "sweep-diagnostics-by-epoch", "sweep-per-class-test-accuracy-by-model.pooling",
              "sweep-confusion-matrix-of-the-best-trial"]
    # a figure per panel: the dashboard's panes are half the page wide, of a fixed height
    panels = [panel for figure in figures for panel in one_per_panel(figure)]
    expected = save_figures(url, "tiny", figures)
    assert set(expected) == ids and len(expected) == len(panels)
    grouped = titles[0]
    assert [i for i in expected if i.startswith(grouped)] == [
        f"{grouped}-train-accuracy", f"{grouped}-test-accuracy", f"{grouped}-test-loss"]
    assert {next(t for t in titles if i.startswith(t)) for i in expected} == set(titles)
    assert _plot_keys(url) == keys  # saved again: replaced, not added
    # What optuna-dashboard itself reads back (its reader of save_plotly_graph_object's layout)
    from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

    shown = get_plotly_graph_objects(_system_attrs(url))
    assert shown == {i: f.to_json() for i, f in zip(expected, panels, strict=True)}
    one = json.loads(shown[f"{grouped}-test-loss"])
    assert one["layout"]["title"]["text"] == "Grouped by model.pooling: test loss"
    assert {t["xaxis"] for t in one["data"]} == {"x"} and "xaxis2" not in one["layout"]
    assert one["layout"]["yaxis"]["title"]["text"] == "cross-entropy (nats)"
    assert all(t["showlegend"] for t in one["data"])  # each value in the legend once
    # Fewer and shorter figures: nothing of the longer ones is left behind
    figures[0].data = figures[0].data[:1]
    assert save_figures(url, "tiny", figures[0:1]) == expected[0:3]
    assert set(get_plotly_graph_objects(_system_attrs(url))) == set(expected[0:3])


def test_artifact_dir_is_an_option_of_run_worker_and_dashboard(tmp_path, tiny_npz):

    parser = _parser()
    for argv in (["run", "x"], ["worker", "x"], ["dashboard"]):
        assert parser.parse_args(argv).artifact_dir == Path("artifacts")
        assert parser.parse_args([*argv, "--artifact-dir", "a/b"]).artifact_dir == Path("a/b")
    assert parser.parse_args(["dashboard"]).host == "127.0.0.1"
    args = parser.parse_args(["run", "x", "--artifact-dir", "shared/art"])
    child = worker_options(args)
    assert child[child.index("--artifact-dir") + 1] == "shared/art"


def test_dashboard_on_a_missing_database_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "dashboard", "--storage",
         f"sqlite:///{tmp_path / 'none.db'}", "--port", "0"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"sweep: error: --storage sqlite:///{tmp_path / 'none.db'}: no such database file"]
    assert not (tmp_path / "none.db").exists() and not (tmp_path / "artifacts").exists()


@pytest.mark.parametrize("host,allowed", [("127.0.0.1", True), ("::1", True),
                                          ("localhost", True), ("0.0.0.0", False),
                                          ("10.1.2.3", False), ("dash.example", False)])
def test_a_dashboard_off_loopback_needs_allow_remote(tmp_path, host, allowed, capsys):
    # issue 25, item 7: --host 0.0.0.0 served the write API to the network without a word
    from sweep.report.dashboard import _loopback

    assert _loopback(host) is allowed
    if allowed:
        return
    url = f"sqlite:///{tmp_path / 'none.db'}"
    code = main(["dashboard", "--storage", url, "--host", host])
    assert code == 2
    err = capsys.readouterr().err
    assert f"--host {host}: optuna-dashboard has no authentication" in err
    assert "add --allow-remote" in err and not (tmp_path / "none.db").exists()


@pytest.mark.slow
def test_the_dashboards_importance_counts_only_the_trials_that_count(tmp_path, tiny_npz,
                                                                     db_url, monkeypatch):
    # issue 35: optuna-dashboard's importance counted the attempts a continuation superseded
    # (and the seed of the repeats: "pooling 0.86 / kernel 0.14 / seed 0.00")
    from sweep.report.importance import importances
    from sweep.report.summary import completed

    from conftest import tiny_study, write_study

    raw = tiny_study(tiny_npz, search={"sampler": "grid", "repeats": 2, "params": {
        "model.pooling": ["max", "avg"], "training.learning_rate": [0.003, 0.03]}})
    raw["training"] = {**raw["training"], "epochs": 1, "snapshots": [1]}
    raw["objective"] = {"metric": "val_loss", "direction": "minimize"}
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", db_url]) == 0
    raw["training"]["epochs"] = 2  # every point continued: its first trial superseded
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", db_url]) == 0
    study = optuna.load_study(study_name="tiny", storage=db_url)
    assert len([t for t in study.trials if t.state.name == "COMPLETE"]) == 16
    result = load_study_result("tiny", db_url)
    expected = importances(completed(result), result.params, "value", "minimize")
    assert len(completed(result)) == 8 and set(expected.index) == {
        "model.pooling", "training.learning_rate"}

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "sweep.cli", "dashboard", "--storage", db_url,
                             "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        url = (f"http://127.0.0.1:{port}/api/studies/{study._study_id}/param_importances")
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = json.load(urllib.request.urlopen(url, timeout=5))
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    shown = {row["name"]: row["importance"] for row in answer["param_importances"][0]}
    assert shown == pytest.approx(expected.to_dict())
    assert {row["distribution"] for row in answer["param_importances"][0]} == {
        "CategoricalDistribution"}
