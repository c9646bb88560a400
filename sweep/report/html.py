"""The report's HTML files: one study's self-contained page, and several studies compared."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from sweep.defaults import REPORTS_DIR
from sweep.report.frames import StudyResult, load_study_result, study_differences
from sweep.report.gallery import pictures_html
from sweep.report.page import figures_html
from sweep.study import file_name

MAX_TABLE_ROWS = 1000  # rows of the report's trials table (best first)


def report_study(name: str, storage_url: str, artifact_dir: Path | None,
                 out: Path | None = None) -> Path:
    """``sweep report NAME`` (and the end of ``sweep run``): the study's HTML report (default
    ``reports/NAME.html``, or ``reports/NAME-ID.html`` where the study's files are kept under
    that name, ``sweep.store.files``), its figures saved into the study too, for optuna-dashboard.
    ``artifact_dir``: the artifact store holding the trials' pictures."""
    from sweep.report.dashboard import save_figures
    from sweep.report.effect_figures import answer_figures
    from sweep.report.figures import report_figures
    from sweep.report.summary import keep_answer, results_version, study_answer
    from sweep.store import StoredStudy, open_storage, open_study, report_name

    store = open_storage(storage_url, create=False)
    stored = StoredStudy.read(store, open_study(store, name))
    # named as the study's folder: another database's study of this name has its own
    out = out or REPORTS_DIR / f"{report_name(store, stored.study_id, name)}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    version = results_version(store, stored)  # before reading: a trial may end meanwhile
    result = load_study_result(name, storage_url)
    answer = study_answer(result)
    keep_answer(store, stored.study_id, version, answer.lines)  # for `sweep summary`
    figures = answer_figures(result, answer) + report_figures(result)
    save_figures(storage_url, name, figures)
    return write_report(result, figures, out, artifact_dir, answer.lines)


def write_report(result: StudyResult, figures: list[go.Figure], path: Path,
                 artifact_dir: Path | None = None, answer: Sequence[str] = ()) -> Path:
    """A self-contained HTML file of the ``answer`` in words (``summary``), ``figures``
    (``figures.report_figures(result)``), the chosen trials' pictures and the trials table;
    it reads offline (``page``: plotly.js and the figures' template inlined once;
    ``gallery``: which pictures). ``artifact_dir`` is the artifact store holding the trials'
    pictures."""
    trials = result.trials
    table = _table(trials.head(MAX_TABLE_ROWS))
    if len(trials) > MAX_TABLE_ROWS:
        table = (f"<p>The best {MAX_TABLE_ROWS} of {len(trials)} trials; all of them: "
                 f"<code>sweep export {html.escape(result.name)}</code> or the dashboard."
                 f"</p>{table}")
    title = html.escape(f"sweep report: {result.name}")
    body = figures_html(figures) if figures else "<p>No completed trials yet.</p>"
    objective = ", ".join(f"{m} ({d})"
                          for m, d in zip(result.metrics, result.directions, strict=True))
    objective += (", each trial at its best epoch (value_epoch)" if result.at == "best"
                  else ", at each trial's last epoch")
    path.write_text(
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1><p>objective: {html.escape(objective)}</p>"
        f"{_answer_html(answer)}{body}{pictures_html(result, artifact_dir)}"
        f"<h2>Trials, best first</h2>{table}</body></html>\n"
    )
    return path


def compare_studies(names: list[str], storage_url: str, out: Path | None = None) -> Path:
    """``sweep report A B ...``: the studies side by side (default
    ``reports/compare-A-B.html``)."""
    from sweep.report.figures import compare_figures
    from sweep.report.summary import comparison, study_answer

    results = [load_study_result(name, storage_url) for name in names]
    out = out or REPORTS_DIR / f"compare-{'-'.join(map(file_name, names))}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    answer = comparison(results) + [line for r in results for line in study_answer(r).lines]
    return write_comparison(results, compare_figures(results), out, answer)


def write_comparison(results: list[StudyResult], figures: list[go.Figure], path: Path,
                     answer: Sequence[str] = ()) -> Path:
    """Several studies side by side: the ``answer`` in words (``summary.comparison``), what
    differs between their study files, ``figures``
    (``figures.compare_figures``) and each study's trials, in one self-contained HTML file
    (packed as a single study's report is, ``page``)."""
    names = ", ".join(r.name for r in results)
    differences = study_differences(results)
    differ = ("<p>The study files differ in no field but their names.</p>"
              if differences.empty else
              differences.to_html(index=False, na_rep="", escape=True))
    tables = "".join(
        f"<h2>{html.escape(r.name)}: trials, best first</h2>"
        + _table(r.trials.head(MAX_TABLE_ROWS))
        for r in results)
    title = html.escape(f"sweep comparison: {names}")
    body = figures_html(figures) if figures else "<p>No completed trials yet.</p>"
    path.write_text(
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1>{_answer_html(answer)}"
        f"<h2>What differs between the study files</h2>{differ}"
        f"{body}{tables}</body></html>\n")
    return path


def _answer_html(lines: Sequence[str]) -> str:
    """The answer in words, as ``sweep summary`` prints it."""
    if not lines:
        return ""
    text = html.escape("\n".join(lines))
    return f"<h2>The answer</h2><pre style='white-space:pre-wrap'>{text}</pre>"


# Columns of counts: shown as integers, also where a failed trial's row leaves them empty
# (pandas then holds them as floats, which "{:.4g}" would print as 1.226e+05).
COUNT_COLUMNS = ("value_epoch", "param_count", "receptive_field")


def _table(trials: pd.DataFrame) -> str:
    """A trials frame as an HTML table: 4 significant digits, counts whole, blanks empty
    (a trial without a fail reason shows none, not ``None``)."""
    shown = trials.assign(**{
        c: trials[c].map(lambda v: "" if pd.isna(v) else str(int(v)))
        for c in COUNT_COLUMNS if c in trials})
    if "fail_reason" in shown:
        shown["fail_reason"] = shown["fail_reason"].fillna("")
    return shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")
