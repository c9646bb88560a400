"""optuna-dashboard: serving a study database, and the report's figures saved into a study.

The dashboard reads everything else from Optuna's storage as it is: every study, each trial's
params, state (complete, pruned, failed), per-epoch intermediate values and user attributes.
Two things need this module: the artifact store (per-trial files uploaded with
``optuna.artifacts.upload_artifact``) and the grouped figures, which the dashboard shows only
when they are saved into the study as plotly graph objects.
"""

from __future__ import annotations

import re
from pathlib import Path

from sweep.store import artifact_store, load_study, open_storage, safe_url


def serve(storage_url: str, host: str, port: int, artifact_dir: Path) -> None:
    """Run optuna-dashboard over ``storage_url`` until interrupted (blocks).

    Raises:
        StorageError: the database does not exist or cannot be opened.
    """
    from optuna_dashboard import run_server

    store = open_storage(storage_url, create=False)
    print(f"optuna-dashboard for {safe_url(storage_url)} at http://{host}:{port}/ "
          f"(artifacts in {artifact_dir})", flush=True)
    run_server(store, host=host, port=port,
               artifact_store=artifact_store(artifact_dir))


def save_figures(storage_url: str, name: str, figures: list) -> list[str]:
    """Save plotly figures into study ``name`` for the dashboard (its study page lists them).

    Each figure's id comes from its title, so saving again (every ``sweep report`` and the end
    of every ``sweep run``) replaces the figures instead of adding copies. Returns the ids.
    """
    from optuna_dashboard import save_plotly_graph_object

    study = load_study(open_storage(storage_url, create=False), name)
    ids = []
    for fig in figures:
        title = fig.layout.title.text or f"figure {len(ids) + 1}"
        graph_id = "sweep-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", title).strip("-").lower()
        ids.append(save_plotly_graph_object(study, fig, graph_object_id=graph_id))
    return ids
