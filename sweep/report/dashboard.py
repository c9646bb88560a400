"""optuna-dashboard: serving a study database, and the report's figures saved into a study.

The dashboard reads everything else from Optuna's storage as it is: every study, each trial's
params, state (complete, pruned, failed), per-epoch intermediate values and user attributes.
Three things need this module: the artifact store (per-trial files uploaded with
``optuna.artifacts.upload_artifact``), the grouped figures, which the dashboard shows only
when they are saved into the study as plotly graph objects, and the parameter importances,
which the dashboard works out over every complete trial: of a sweep study, ``serve`` answers
them over the trials that count (one per point: not an attempt a continuation superseded, nor
the seed), as the report does.
"""

from __future__ import annotations

import ipaddress
import json
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go

from sweep.errors import UsageError
from sweep.records import StudyKey, TrialKey
from sweep.store import (
    StoredStudy,
    artifact_store,
    open_storage,
    open_study,
    read_trials,
    replace_study_system_attrs,
    safe_url,
)

PLOT_DATA = "dashboard:plot_data:"  # optuna-dashboard's study system attributes of a figure
PLOT_CHUNK = 2045  # characters of the figure's JSON per attribute (the dashboard's limit)
IMPORTANCES = "/api/studies/<study_id:int>/param_importances"  # the dashboard's own route
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "[::1]"}  # Host headers a loopback server answers


def serve(storage_url: str, host: str, port: int, artifact_dir: Path,
          allow_remote: bool = False) -> None:
    """Run optuna-dashboard over ``storage_url`` until interrupted (blocks). A ``host`` other
    than loopback needs ``allow_remote``, and is said to expose the write API.

    Raises:
        UsageError: a host other than loopback without ``allow_remote``.
        StorageError: the database does not exist or cannot be opened.
    """
    from bottle import run
    from optuna_dashboard import wsgi

    if not _loopback(host):
        if not allow_remote:
            raise UsageError(f"--host {host}: optuna-dashboard has no authentication: whoever "
                             "reaches it can delete studies and their artifacts; add "
                             "--allow-remote to serve it there anyway")
        print(f"sweep: warning: serving on {host}:{port} without authentication: anyone who "
              "reaches it can read, change and delete every study in the database",
              file=sys.stderr, flush=True)
    store = open_storage(storage_url, create=False)
    print(f"optuna-dashboard for {safe_url(storage_url)} at http://{host}:{port}/ "
          f"(artifacts in {artifact_dir})", flush=True)
    app = wsgi(store, artifact_store=artifact_store(artifact_dir))
    theirs = next(r.callback for r in app.routes if r.rule == IMPORTANCES)
    app.route(IMPORTANCES, "GET", lambda study_id: _importances(store, study_id, theirs))
    # as optuna_dashboard.run_server does, behind the guard
    run(guarded(app, None if allow_remote else {*LOOPBACK_NAMES, host.lower()}), host=host,
        port=port)


def guarded(app: Callable, hosts: set[str] | None) -> Callable:
    """``app`` answering only requests whose ``Host`` header names one of ``hosts`` (None:
    any, for ``--allow-remote``); the rest get 403. On loopback a web page the user visits
    could otherwise reach the dashboard's write API through DNS rebinding (its own name
    resolved to 127.0.0.1: the browser sends that name as the Host)."""

    def answer(environ: dict, start_response: Callable) -> Iterable[bytes]:
        name = _host_name(environ.get("HTTP_HOST", ""))
        if hosts is not None and name not in hosts:
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
            return [f"sweep dashboard: Host {name or '(none)'} is not served here; open it "
                    "at http://127.0.0.1 or localhost\n".encode()]
        return app(environ, start_response)

    return answer


def _host_name(header: str) -> str:
    """The name in a ``Host`` header, less its port: ``localhost``, ``127.0.0.1``, ``[::1]``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header.split("]")[0] + "]"
    return header.rsplit(":", 1)[0]


def _importances(store: optuna.storages.RDBStorage, study_id: int,
                 theirs: Callable[..., str | dict[str, Any]]) -> str | dict[str, Any]:
    """The dashboard's importances of a sweep study, each objective's over the trials that
    count (``StoredStudy.current``), by the report's evaluator (``importance.importances``);
    of any other study, the dashboard's own (``theirs``)."""
    import pandas as pd
    from bottle import response
    from optuna.trial import TrialState

    from sweep.report.importance import distribution, importances

    try:
        study = open_study(store, store.get_study_name_from_id(study_id))
    except KeyError:
        return theirs(study_id=study_id)  # its 404
    if StudyKey.STUDY not in study.user_attrs:
        return theirs(study_id=study_id)
    stored = StoredStudy.read(store, study)
    counted = [t for t in stored.current(read_trials(store.engine, study_id,
                                                     (TrialKey.CONFIG, TrialKey.SEED)))
               if t.state == TrialState.COMPLETE]
    shares = []
    for i, direction in enumerate(stored.directions):
        rows = pd.DataFrame([{**t.params, "value": t.values[i]} for t in counted
                             if t.values is not None],  # a complete trial has its values
                            columns=[*stored.params, "value"])
        found = importances(rows, stored.params, "value", direction)
        shares.append([{"name": name, "importance": float(share),
                        "distribution": type(distribution(rows[name])).__name__}
                       for name, share in found.items()])
    response.content_type = "application/json"
    return json.dumps({"param_importances": shares})


def _loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve to anything
        return False


def save_figures(storage_url: str, name: str, figures: list) -> list[str]:
    """Save plotly figures into study ``name`` for the dashboard (its study page lists them).

    Each panel is a figure (``one_per_panel``); its id comes from its title, so
    saving again (every ``sweep report`` and the end of every ``sweep run``) replaces the
    figures instead of adding copies. Returns the ids.

    Stored as optuna-dashboard's ``save_plotly_graph_object`` stores a figure (study system
    attributes ``dashboard:plot_data:ID:i``, its JSON in chunks of 2,045 characters; the
    dashboard joins them) but all in one transaction, where that function commits each chunk
    (hundreds per report), and without importing optuna-dashboard (slow to import: it imports
    scikit-learn). tests/report/test_dashboard.py reads them back
    with optuna-dashboard's own reader.
    """
    store = open_storage(storage_url, create=False)
    open_study(store, name)  # the one-line error for a study that is not there
    ids: list[str] = []
    attrs: dict[str, str] = {}
    # the dashboard's panes are half the page wide and of a fixed height: a panel each
    for fig in [panel for figure in figures for panel in one_per_panel(figure)]:
        title = fig.layout.title.text or f"figure {len(ids) + 1}"
        graph_id = "sweep-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", title).strip("-").lower()
        text = fig.to_json()
        for i, start in enumerate(range(0, len(text), PLOT_CHUNK)):
            attrs[f"{PLOT_DATA}{graph_id}:{i}"] = text[start:start + PLOT_CHUNK]
        ids.append(graph_id)
    replace_study_system_attrs(store, store.get_study_id_from_name(name), f"{PLOT_DATA}sweep-",
                               attrs)
    return ids


def one_per_panel(figure: go.Figure) -> list[go.Figure]:
    """``figure``'s side-by-side panels (``_panels``) as a figure each, titled by the figure's
    title and the panel's: for a narrow pane of fixed height, the dashboard's half-width cards,
    where panels side by side squeeze their titles into each other. A one-panel figure as it
    is."""
    import plotly.graph_objects as go

    layout = figure.layout.to_plotly_json()
    count = sum(1 for name in layout if re.fullmatch(r"xaxis\d*", name))
    if count < 2:
        return [figure]
    shared = {k: v for k, v in layout.items()
              if not re.fullmatch(r"[xy]axis\d*", k) and k != "annotations"}
    figures = []
    for i, annotation in enumerate(layout["annotations"][:count]):
        suffix = "" if i == 0 else str(i + 1)
        traces, shown = [], set()
        for trace in figure.data:
            if (trace.xaxis or "x") == f"x{suffix}":
                trace = trace.to_plotly_json() | {"xaxis": "x", "yaxis": "y"}
                trace["showlegend"] = trace.get("legendgroup") not in shown
                shown.add(trace.get("legendgroup"))
                traces.append(trace)
        axes = {f"{a}axis": {k: v for k, v in layout[f"{a}axis{suffix}"].items()
                             if k not in ("domain", "anchor")} for a in "xy"}
        title = {**shared["title"], "text": f"{shared['title']['text']}: {annotation['text']}"}
        # the parts of a figure plotly checked already: checking them again (its whole template
        # each time) took most of the report's time
        figures.append(go.Figure(traces, shared | axes | {"title": title}, _validate=False))
    return figures
