"""Which trials' pictures the report embeds: the ones a reader looks at, the rest linked."""

from __future__ import annotations

import pandas as pd
import pytest
from optuna.artifacts.exceptions import ArtifactNotFound

from sweep.report.frames import StudyResult
from sweep.report.gallery import _others, dashboard_link, picture_trials, pictures_html
from sweep.store import artifact_store


def _result(values: list[float]) -> StudyResult:
    """A 3 x 3 grid's results, best first, each trial with its two pictures."""
    grid = [(p, k) for p in ("avg", "max", "none") for k in (3, 5, 7)]
    trials = pd.DataFrame([{"trial": n, "state": "COMPLETE", "value": v,
                            "model.pooling": p, "model.kernel": k}
                           for n, (v, (p, k)) in enumerate(zip(values, grid, strict=True))])
    trials = trials.sort_values("value", ascending=False).reset_index(drop=True)
    pictures = pd.DataFrame([{"trial": n, "epoch": 2, "kind": kind, "artifact_id": f"{n}{kind}"}
                             for n in range(9) for kind in ("filters", "pca")])
    return StudyResult(name="grid", metrics=("val_accuracy",), directions=("maximize",),
                       params=("model.pooling", "model.kernel"), snapshots=pd.DataFrame(),
                       curves=pd.DataFrame(), trials=trials, pictures=pictures, study_id=3)


def test_best_worst_and_the_best_of_each_value_are_embedded():
    # before: every trial's pictures were inlined, so the report grew with the sweep
    #             avg,3 avg,5 avg,7 max,3 max,5 max,7 none,3 none,5 none,7
    result = _result([0.9, 0.5, 0.4, 0.8, 0.7, 0.3, 0.2, 0.6, 0.1])
    assert picture_trials(result) == {
        0: ["best", "best of pooling=avg", "best of kernel=3"],
        3: ["best of pooling=max"],
        7: ["best of pooling=none"],
        4: ["best of kernel=5"],
        2: ["best of kernel=7"],
        8: ["worst"],
    }


def test_the_other_trials_are_one_click_away_in_the_dashboard():
    result = _result([0.9, 0.5, 0.4, 0.8, 0.7, 0.3, 0.2, 0.6, 0.1])
    links = _others(result, set(picture_trials(result)))
    assert "The pictures of the other 3 trials are on their pages" in links
    for trial in (1, 5, 6):
        assert f"<a href='{dashboard_link(result, trial)}'>trial {trial}</a>" in links
    assert dashboard_link(result, 6) == (
        "http://127.0.0.1:8080/dashboard/studies/3/trials?numbers=6")
    # one other trial: its page (before: "the other trial is on their pages")
    one = _others(result, set(picture_trials(result)) | {1, 5})
    assert "The pictures of the other trial are on its page in the dashboard" in one


def test_only_regular_files_inside_the_artifact_folder_are_read(tmp_path):
    # issue 25, item 9: a symbolic link to /etc/passwd was embedded in the report and served
    # by the dashboard; an id leading out of the folder made `sweep report` a traceback
    folder = tmp_path / "artifacts"
    store = artifact_store(folder)
    (folder / "good").write_bytes(b"\x89PNG picture")
    secret = tmp_path / "secret"
    secret.write_text("root:x:0:0")
    (folder / "link").symlink_to(secret)
    with store.open_reader("good") as f:
        assert f.read() == b"\x89PNG picture"
    for artifact_id in ("link", "../secret", "../../etc/passwd", "missing"):
        with pytest.raises(ArtifactNotFound):
            store.open_reader(artifact_id)
    result = _result([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    result.pictures["artifact_id"] = ["good", "link", "../secret"] * 6
    page = pictures_html(result, folder)
    assert "root:x" not in page and "cm9vdDp4" not in page  # nor its base64
    assert "picture(s) not found in" in page
