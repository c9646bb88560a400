"""The console of a sweep: events in, lines (or a live view) out; framework banners kept off.

The real ``sweep run --workers 2`` console is tested in test_local.py; these feed it events."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from sweep.run.console import SweepConsole
from sweep.run.quiet import is_banner
from sweep.study import load_study

from conftest import tiny_study, write_study


def _spec(tmp_path, tiny_npz):
    return load_study(str(write_study(tmp_path, tiny_study(tiny_npz))))


def _start(trial, point, position, pooling="max"):
    return {"event": "start", "trial": trial, "point": point, "position": position,
            "values": {"model.pooling": pooling}, "epochs": 2, "resumed_from": 0,
            "continues": None}


def _row(epoch):
    return {"epoch": epoch, "train_loss": 1.0, "val_accuracy": 0.5, "seconds": 0.1}


NO_BEST = {"value": None, "trial": None, "pareto": None}


def test_plain_lines_name_trials_by_number_and_place_them_k_of_n(tmp_path, tiny_npz):
    out = io.StringIO()
    console = SweepConsole(_spec(tmp_path, tiny_npz), stream=out)
    console.event({"event": "begin", "total": 3, "done": 1, "where": "2 workers", "best": NO_BEST})
    console.event(_start(4, "a", 2))
    console.event(_start(5, "b", 2, "avg"), worker=1)  # two claims at once counted the same
    console.event({"event": "epoch", "trial": 5, "row": _row(1)}, worker=1)
    console.event({"event": "end", "trial": 4, "state": "failed", "note": "failed: NaN",
                   "best": NO_BEST})
    console.event(_start(6, "a", 3))  # point a again (its worker died): it keeps its place
    console.event({"event": "epoch", "trial": 6, "row": _row(1)})
    console.event({"event": "end", "trial": 6, "state": "complete", "note": None,
                   "best": {"value": 0.5, "trial": 6, "pareto": None}})
    console.event({"event": "epoch", "trial": 5, "row": _row(2)}, worker=1)
    console.note("a warning", worker=1)
    assert out.getvalue().splitlines() == [
        "[tiny] 3 points: 1 already done, 2 to train; 2 workers",
        "[tiny] trial 5 (3 of 3) pooling=avg epoch 1/2 loss 1.0000 val_accuracy 0.5000 (0.1s)",
        "[tiny] trial 4 (2 of 3) pooling=max failed: NaN",
        "[tiny] trial 6 (2 of 3) pooling=max epoch 1/2 loss 1.0000 val_accuracy 0.5000 (0.1s)",
        "[tiny] trial 5 (3 of 3) pooling=avg epoch 2/2 loss 1.0000 val_accuracy 0.5000 (0.1s)"
        " | best val_accuracy 0.5000 (trial 6)",
        "[tiny] worker 1: a warning",
    ]
    result = console.result
    assert (result.total, result.skipped, result.ran, result.failed) == (3, 1, 2, 1)
    assert result.summary(console.spec) == (
        "[tiny] 3 points: 2 run now (1 failed), 1 already done; best val_accuracy 0.5000 "
        "(trial 6)")


def test_a_continued_or_resumed_trial_says_so_and_is_counted_apart(tmp_path, tiny_npz):
    out = io.StringIO()
    console = SweepConsole(_spec(tmp_path, tiny_npz), stream=out)
    console.event({"event": "begin", "total": 3, "done": 1, "to_continue": 1, "where": None,
                   "best": NO_BEST})
    console.event(_start(7, "a", 2) | {"resumed_from": 2, "continues": 3})
    console.event(_start(8, "b", 3, "avg") | {"resumed_from": 1})
    for trial in (7, 8):
        console.event({"event": "end", "trial": trial, "state": "complete", "note": None,
                       "best": {"value": 0.5, "trial": 7, "pareto": None}})
    assert out.getvalue().splitlines() == [
        "[tiny] 3 points: 1 already done, 1 to continue with more epochs, 1 to train",
        "[tiny] trial 7 (2 of 3) pooling=max continues trial 3 from epoch 2",
        "[tiny] trial 8 (3 of 3) pooling=avg resumes after epoch 1 (from its checkpoint)",
    ]
    assert console.result.summary(console.spec) == (
        "[tiny] 3 points: 2 run now (1 continued with more epochs, 0 failed), 1 already done; "
        "best val_accuracy 0.5000 (trial 7)")


def test_a_point_taken_over_from_an_earlier_run_is_never_past_the_total(tmp_path, tiny_npz):
    # issue 25, item 6: "trial 4 (5 of 4)"
    out = io.StringIO()
    console = SweepConsole(_spec(tmp_path, tiny_npz), stream=out)
    console.event({"event": "begin", "total": 2, "done": 0, "where": None, "best": NO_BEST})
    console.event(_start(3, "a", 2))
    console.event(_start(4, "b", 2, "avg") | {"resumed_from": 1})  # a dead worker's point
    assert out.getvalue().splitlines()[-1] == (
        "[tiny] trial 4 (2 of 2) pooling=avg resumes after epoch 1 (from its checkpoint)")


def test_live_view_draws_bars_and_prints_each_trial_as_it_ends(tmp_path, tiny_npz,
                                                               monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich: draw as on a terminal
    monkeypatch.setenv("COLUMNS", "160")
    out = io.StringIO()
    console = SweepConsole(_spec(tmp_path, tiny_npz), live=True, stream=out)
    with console:
        console.event({"event": "begin", "total": 2, "done": 0, "where": None, "best": NO_BEST,
                       "storage": "/data/sweeps.db"})
        console.event(_start(0, "a", 1))
        console.event({"event": "epoch", "trial": 0, "row": _row(1)})
        console._view.progress.refresh()
        drawn = out.getvalue()
        console.event({"event": "end", "trial": 0, "state": "complete", "note": None,
                       "best": {"value": 0.5, "trial": 0, "pareto": None}})
        console._view.progress.refresh()
    assert "trial 0 (1 of 2) pooling=max" in drawn and "epoch 1/2" in drawn
    assert "0 of 2 trials done" in drawn and "elapsed" in drawn and " left" in drawn
    text = out.getvalue()
    assert "[tiny] trial 0 (1 of 2) pooling=max: complete, val_accuracy 0.5000" in text
    assert "[tiny] 2 points in /data/sweeps.db: 0 already done, 2 to train" in text
    assert "1 of 2 trials done" in text and "best val_accuracy 0.5000 (trial 0)" in text


def test_banners_are_recognised_and_errors_are_not():
    assert is_banner("I0000 00:00:1796161037.453120   25427 port.cc:153] oneDNN custom "
                     "operations are on. You may see slightly different numerical results")
    assert is_banner("W0000 00:00:1796161037.4 25427 gpu_device.cc:2341] Cannot dlopen some "
                     "GPU libraries.")
    assert is_banner("WARNING: All log messages before absl::InitializeLog() is called are "
                     "written to STDERR")
    assert is_banner("2024-05-01 12:00:00.123456: I tensorflow/core/platform/cpu_feature_guard"
                     ".cc:182] This TensorFlow binary is optimized")
    assert not is_banner("E0000 00:00:1796161037.4 25427 cuda_dnn.cc:8310] Unable to register "
                         "cuDNN factory")
    assert not is_banner("sweep: error: studies/x.yaml: model.kernal: unknown key")


def test_native_banners_are_filtered_from_descriptor_2_only(tmp_path):
    # what TensorFlow's C++ does at import: write straight to descriptor 2
    code = (
        "import os, sys\n"
        "from sweep.run.quiet import native_banners_filtered\n"
        "with native_banners_filtered():\n"
        "    os.write(2, b'I0000 00:00:17.45 25427 port.cc:153] oneDNN custom operations\\n')\n"
        "    os.write(2, b'E0000 00:00:17.45 25427 cuda_dnn.cc:8310] a real error\\n')\n"
        "    print('python says', file=sys.stderr)\n"
        "os.write(2, b'after\\n')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    assert sorted(proc.stderr.splitlines()) == sorted([
        "E0000 00:00:17.45 25427 cuda_dnn.cc:8310] a real error", "python says", "after"])


def test_the_offline_download_error_is_one_whole_line_without_banners(tmp_path):
    # no internet, as on a cluster node: name resolution fails as it does offline
    (tmp_path / "offline").mkdir()
    (tmp_path / "offline" / "sitecustomize.py").write_text(
        "import socket\n"
        "def _no_dns(*args, **kwargs):\n"
        "    raise socket.gaierror(-2, 'Name or service not known')\n"
        "socket.getaddrinfo = _no_dns\n")
    study = write_study(tmp_path, tiny_study(None, dataset={"name": "cifar10"}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "offline"), *sys.path]),
           "KERAS_HOME": str(tmp_path / "keras"), "TF_CPP_MIN_LOG_LEVEL": "0"}
    env.pop("SWEEP_DATA_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "sweep.cli", "run", str(study), "--storage",
                           f"sqlite:///{tmp_path / 's.db'}", "--workers", "2"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    # before: eight TensorFlow start-up lines, and the reason cut ("Name or service not kno")
    assert not [line for line in lines if is_banner(line)]
    assert lines[-1].endswith("cannot download cifar10 ([Errno -2] Name or service not known); "
                              "put cifar-10-python.tar.gz in a folder and set SWEEP_DATA_DIR to "
                              "it (or into ~/.keras/datasets/ as Keras caches it)")
    assert not (tmp_path / "s.db").exists()  # nothing half-written
