"""The report's files: a self-contained HTML page, and the results frame as csv or parquet."""

from __future__ import annotations

import base64
import html
import shutil
from pathlib import Path

import plotly.graph_objects as go

from sweep.errors import UsageError
from sweep.report.frames import StudyResult, last_epoch
from sweep.training.checkpoints import kept_model_file


def write_report(result: StudyResult, figures: list[go.Figure], path: Path,
                 artifact_dir: Path | None = None) -> Path:
    """A self-contained HTML file of ``figures`` (``figures.report_figures(result)``) and the
    trials table: plotly.js inlined once, pictures embedded, so it reads offline.
    ``artifact_dir`` is the artifact store holding the trials' pictures."""
    parts = []
    for i, fig in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=i == 0))
    trials = result.trials.assign(fail_reason=result.trials["fail_reason"].fillna(""))
    table = trials.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")
    title = html.escape(f"sweep report: {result.name}")
    body = "\n".join(parts) or "<p>No completed trials yet.</p>"
    objective = ", ".join(f"{m} ({d})" for m, d in zip(result.metrics, result.directions))
    path.write_text(
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1><p>objective: {html.escape(objective)}</p>"
        f"{body}{_pictures_html(result, artifact_dir)}"
        f"<h2>Trials, best first</h2>{table}</body></html>\n"
    )
    return path


def _pictures_html(result: StudyResult, artifact_dir: Path | None) -> str:
    """Each completed trial's last first-layer filters and PCA pictures, by swept values."""
    if artifact_dir is None or result.pictures.empty or not Path(artifact_dir).is_dir():
        return ""
    from optuna.artifacts import FileSystemArtifactStore
    from optuna.artifacts.exceptions import ArtifactNotFound

    store = FileSystemArtifactStore(str(artifact_dir))
    missing = 0
    last = last_epoch(result.pictures)
    params = result.trials.set_index("trial")[list(result.params)]
    cells = []
    for trial, group in last.sort_values(["trial", "kind"]).groupby("trial"):
        chosen = ", ".join(f"{p.split('.')[-1]}={params.loc[trial, p]}" for p in result.params)
        images = []
        for row in group.itertuples():
            try:
                with store.open_reader(row.artifact_id) as f:
                    data = base64.b64encode(f.read()).decode()
            except ArtifactNotFound:  # another machine's store, or deleted
                missing += 1
                continue
            images.append(f"<figure style='display:inline-block;margin:4px'>"
                          f"<img src='data:image/png;base64,{data}' style='max-height:240px'>"
                          f"<figcaption>{row.kind}, epoch {row.epoch}</figcaption></figure>")
        cells.append(f"<div><h3>trial {trial}: {html.escape(chosen)}</h3>{''.join(images)}</div>")
    note = f"<p>{missing} picture(s) not found in {html.escape(str(artifact_dir))}.</p>"
    return ("<h2>First-layer filters and PCA of the last hidden layer (coloured by class)</h2>"
            + (note if missing else "") + "".join(cells))


def export(result: StudyResult, fmt: str, path: Path) -> Path:
    """Write the snapshot frame (the one the grouped plots are drawn from) as csv or parquet."""
    if fmt == "csv":
        result.snapshots.to_csv(path, index=False)
    else:
        result.snapshots.to_parquet(path, index=False)
    return path


def export_model(result: StudyResult, which: str, checkpoint_dir: Path,
                 out: Path | None = None) -> Path:
    """Copy a trial's kept model (``best``: the best complete trial shown in the report, or
    a trial number) to ``out``: a ``.keras`` file for ``keras.models.load_model``, with its
    optimizer state, as it was after its last epoch."""
    if which == "best":
        if result.best_trial is None:
            raise UsageError(f"--model best: study {result.name!r} has no complete trial yet")
        number = result.best_trial
    elif which.isdigit():
        number = int(which)
    else:
        raise UsageError(f"--model {which!r}: expected best or a trial number")
    kept = kept_model_file(checkpoint_dir, result.name, number)
    if not kept.is_file():
        raise UsageError(f"--model {which}: trial {number} of {result.name!r} has no kept "
                         f"model at {kept} (kept for trials that completed; --checkpoint-dir "
                         "names the folder the runs used)")
    out = out or Path(f"{result.name}-trial{number}.keras")
    shutil.copyfile(kept, out)
    return out


def write_comparison(results: list[StudyResult], figures: list[go.Figure], path: Path) -> Path:
    """Several studies side by side: ``figures`` (``figures.compare_figures``) and each
    study's trials, in one self-contained HTML file."""
    names = ", ".join(r.name for r in results)
    parts = [fig.to_html(full_html=False, include_plotlyjs=i == 0)
             for i, fig in enumerate(figures)]
    tables = "".join(
        f"<h2>{html.escape(r.name)}: trials, best first</h2>"
        + r.trials.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")
        for r in results)
    title = html.escape(f"sweep comparison: {names}")
    path.write_text(
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1>{''.join(parts) or '<p>No completed trials yet.</p>'}"
        f"{tables}</body></html>\n")
    return path
