"""The report's files: a self-contained HTML page, and the results frame as csv or parquet."""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import plotly.graph_objects as go

from sweep.errors import UsageError
from sweep.defaults import REPORTS_DIR
from sweep.report.frames import StudyResult, load_study_result
from sweep.report.gallery import pictures_html
from sweep.report.page import figures_html
from sweep.study import file_name
from sweep.training.checkpoints import kept_model_file

MAX_TABLE_ROWS = 1000  # rows of the report's trials table (best first)


def write_report(result: StudyResult, figures: list[go.Figure], path: Path,
                 artifact_dir: Path | None = None) -> Path:
    """A self-contained HTML file of ``figures`` (``figures.report_figures(result)``), the
    chosen trials' pictures and the trials table; it reads offline (``page``: plotly.js and
    the figures' template inlined once; ``gallery``: which pictures). ``artifact_dir`` is the
    artifact store holding the trials' pictures."""
    trials = result.trials.assign(fail_reason=result.trials["fail_reason"].fillna(""))
    table = trials.head(MAX_TABLE_ROWS).to_html(index=False, float_format=lambda v: f"{v:.4g}",
                                                na_rep="")
    if len(trials) > MAX_TABLE_ROWS:
        table = (f"<p>The best {MAX_TABLE_ROWS} of {len(trials)} trials; all of them: "
                 f"<code>sweep export {html.escape(result.name)}</code> or the dashboard."
                 f"</p>{table}")
    title = html.escape(f"sweep report: {result.name}")
    body = figures_html(figures) if figures else "<p>No completed trials yet.</p>"
    objective = ", ".join(f"{m} ({d})" for m, d in zip(result.metrics, result.directions))
    objective += (", each trial at its best epoch (value_epoch)" if result.at == "best"
                  else ", at each trial's last epoch")
    path.write_text(
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1><p>objective: {html.escape(objective)}</p>"
        f"{body}{pictures_html(result, artifact_dir)}"
        f"<h2>Trials, best first</h2>{table}</body></html>\n"
    )
    return path


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
    kept = kept_model_file(checkpoint_dir, file_name(result.name), number)
    if not kept.is_file():
        raise UsageError(f"--model {which}: trial {number} of {result.name!r} has no kept "
                         f"model at {kept} (kept for trials that completed; --checkpoint-dir "
                         "names the folder the runs used)")
    out = out or Path(f"{file_name(result.name)}-trial{number}.keras")
    shutil.copyfile(kept, out)
    return out


def compare_studies(names: list[str], storage_url: str, out: Path | None = None) -> Path:
    """``sweep report A B ...``: the studies side by side (default
    ``reports/compare-A-B.html``)."""
    from sweep.report.figures import compare_figures

    results = [load_study_result(name, storage_url) for name in names]
    out = out or REPORTS_DIR / f"compare-{'-'.join(map(file_name, names))}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_comparison(results, compare_figures(results), out)


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
