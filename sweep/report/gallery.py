"""The report's pictures: the trials a reader looks at, the rest one click away.

Every completed trial has a first-layer filters picture and a PCA picture per snapshot (in
the artifact store). Embedding all of them makes a report grow with the sweep, so it embeds
the last snapshot's of the best and the worst trial and of the best trial of each value of
each swept parameter, and links the others to their page in ``sweep dashboard``.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from sweep.defaults import DASHBOARD_HOST, DASHBOARD_PORT
from sweep.report.aggregate import groups
from sweep.report.frames import StudyResult, last_epoch
from sweep.study import point_text

MAX_LINKS = 100  # links to other trials' pages written out; the dashboard lists them all
# How each picture is shown: a filter grid at a readable size, each filter's pixels kept sharp
# (a 16-filter grid is about 200 pixels); the PCA scatter under its own size, its legend
# readable (training/pictures.py)
SHOWN = {"filters": "width:320px;image-rendering:pixelated",
         "pca": "height:400px"}


def picture_trials(result: StudyResult) -> dict[int, list[str]]:
    """The trials whose pictures are embedded, each with why (best first): the best and the
    worst complete trial, and the best of each value of each swept parameter (of each bin of
    a many-valued one: ``aggregate.groups``)."""
    complete = result.trials[result.trials["state"] == "COMPLETE"]  # best first
    complete = complete[complete["trial"].isin(result.pictures["trial"])]
    if complete.empty:
        return {}
    chosen: dict[int, list[str]] = {}
    chosen.setdefault(int(complete["trial"].iloc[0]), []).append("best")
    for param in result.params:
        for value, group in complete.groupby(groups(complete, param), sort=True,
                                             observed=True):
            reason = f"best of {point_text({param: value})}"
            chosen.setdefault(int(group["trial"].iloc[0]), []).append(reason)
    chosen.setdefault(int(complete["trial"].iloc[-1]), []).append("worst")
    return chosen


def dashboard_link(result: StudyResult, trial: int) -> str:
    """The trial's page in ``sweep dashboard`` at its default address."""
    return (f"http://{DASHBOARD_HOST}:{DASHBOARD_PORT}/dashboard/studies/{result.study_id}/"
            f"trials?numbers={trial}")


def pictures_html(result: StudyResult, artifact_dir: Path | None) -> str:
    """The chosen trials' last filters and PCA pictures, by their values; links to the rest."""
    if artifact_dir is None or result.pictures.empty or not Path(artifact_dir).is_dir():
        return ""
    from optuna.artifacts.exceptions import ArtifactNotFound

    from sweep.store import artifact_store

    store = artifact_store(artifact_dir)  # regular files inside the folder only
    chosen = picture_trials(result)
    last = last_epoch(result.pictures)
    values = result.trials.set_index("trial")[list(result.params)]
    missing, cells = 0, []
    for trial, reasons in chosen.items():
        images = []
        for row in last[last["trial"] == trial].sort_values("kind").itertuples():
            try:
                with store.open_reader(row.artifact_id) as f:
                    data = base64.b64encode(f.read()).decode()
            except ArtifactNotFound:  # another machine's store, deleted, or not a file
                missing += 1
                continue
            images.append(f"<figure style='display:inline-block;margin:4px'>"
                          f"<img src='data:image/png;base64,{data}' style='{SHOWN[row.kind]}'>"
                          f"<figcaption>{row.kind}, epoch {row.epoch}</figcaption></figure>")
        point = point_text(values.loc[trial].to_dict()) if result.params else ""
        cells.append(f"<div><h3>trial {trial}: {html.escape(point)} "
                     f"({html.escape(', '.join(reasons))})</h3>{''.join(images)}</div>")
    note = f"<p>{missing} picture(s) not found in {html.escape(str(artifact_dir))}.</p>"
    return ("<h2>First-layer filters and PCA of the last hidden layer (coloured by class)</h2>"
            + (note if missing else "") + "".join(cells) + _others(result, set(chosen)))


def _others(result: StudyResult, shown: set[int]) -> str:
    """Links to the pictures not embedded: each trial's page in the dashboard."""
    others = sorted(set(result.pictures["trial"]) - shown)
    if not others:
        return ""
    links = ", ".join(f"<a href='{dashboard_link(result, t)}'>trial {t}</a>"
                      for t in others[:MAX_LINKS])
    if len(others) > MAX_LINKS:
        links += f" and {len(others) - MAX_LINKS} more"
    which = ("other trial are on its page" if len(others) == 1
             else f"other {len(others)} trials are on their pages")
    return (f"<p>The pictures of the {which} in the "
            f"dashboard (<code>sweep dashboard --artifact-dir DIR</code> over this study's "
            f"database, at its default address): {links}.</p>")
