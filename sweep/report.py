"""Reports: data first (pandas frames), figures second (plotly), files last.

The grouped comparison the seeds drew by hand: for each swept parameter, and for the snapshot
epoch, the distribution of train accuracy, test accuracy and test loss per value; then the
diagnostics grouped the same way (overfitting gap, ROC AUC, dead units, per-class accuracy),
the best trial's confusion matrix, the Pareto front of a multi-objective study, and each
trial's first-layer filters and PCA pictures.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from sweep import storage

GROUPED_METRICS = ("train_accuracy", "test_accuracy", "test_loss")
# overfitting gap (train - validation accuracy), ROC AUC, fraction of dense units never active
DIAGNOSTIC_METRICS = ("gap", "roc_auc", "dead_train", "dead_test")
PALETTE = qualitative.Plotly  # one colour per value (or trial), the same in every panel


@dataclass(frozen=True)
class StudyResult:
    """A study's results as frames.

    ``snapshots``: one row per completed trial and snapshot epoch: ``trial``, the swept params
    (dotted names), ``epoch``, train/val/test loss and accuracy, ``roc_auc``, ``gap`` (train
    minus validation accuracy), ``dead_train``/``dead_test`` (fraction of hidden dense units
    that never activate), ``param_count``, ``receptive_field``, ``value``.
    ``curves``: one row per trial and epoch (every epoch, every trial state).
    ``trials``: one row per trial, sorted by the objective (best first; a multi-objective
    study: the Pareto front first).
    ``per_class``: one row per completed trial, snapshot epoch and class: ``accuracy``.
    ``pareto``: multi-objective studies: one row per completed trial, a column per metric and
    ``on_front``. ``pictures``: one row per snapshot picture: ``trial``, ``epoch``, ``kind``
    (filters, pca), ``artifact_id``. ``best_confusion``: the best trial's last confusion
    matrix (rows: true class).
    """

    name: str
    metrics: tuple[str, ...]
    directions: tuple[str, ...]
    params: tuple[str, ...]
    snapshots: pd.DataFrame
    curves: pd.DataFrame
    trials: pd.DataFrame
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame)
    pareto: pd.DataFrame = field(default_factory=pd.DataFrame)
    pictures: pd.DataFrame = field(default_factory=pd.DataFrame)
    best_confusion: list | None = None

    @property
    def metric(self) -> str:
        return self.metrics[0]

    @property
    def direction(self) -> str:
        return self.directions[0]


def load_results(name: str, storage_url: str = storage.DEFAULT_STORAGE) -> StudyResult:
    """Read a study's trials and epochs from storage into frames."""
    store = storage.open_storage(storage_url, create=False)
    study = storage.load_study(store, name)
    metrics = tuple(storage.stored_metrics(study))
    directions = tuple(d.name.lower() for d in study.directions)
    params = tuple(study.user_attrs.get("study", {}).get("search", {}).get("params", {}))
    all_trials = study.get_trials(deepcopy=False)
    front = {t.number for t in study.best_trials} if len(directions) > 1 else set()
    rows, dead, per_class, pictures = [], [], [], []
    for t in all_trials:
        chosen = {p: t.params.get(p) for p in params}
        rows.append({
            "trial": t.number, "state": t.state.name,
            "value": t.values[0] if t.values else None,
            **chosen,
            "param_count": t.user_attrs.get("param_count"),
            "receptive_field": t.user_attrs.get("receptive_field"),
            "train_seconds": t.user_attrs.get("train_seconds"),
            "fail_reason": t.user_attrs.get("fail_reason"),
        })
        for epoch, d in t.user_attrs.get("diagnostics", {}).items():
            layers = d["dead_units"].values()
            units = sum(layer["units"] for layer in layers)
            dead.append({"trial": t.number, "epoch": int(epoch), **{
                key: sum(layer[key] for layer in layers) / units if units else None
                for key in ("dead_train", "dead_test")}})
            per_class += [{"trial": t.number, **chosen, "epoch": int(epoch), "class": c,
                           "accuracy": a} for c, a in enumerate(d["per_class_accuracy"])]
        if t.state.name == "COMPLETE":
            pictures += _pictures(store, t)
    trials = pd.DataFrame(rows, columns=[
        "trial", "state", "value", *params, "param_count", "receptive_field", "train_seconds",
        "fail_reason"])
    trials["on_front"] = trials["trial"].isin(front)
    trials = trials.sort_values(["on_front", "value"], na_position="last",
                                ascending=[False, directions[0] == "minimize"])
    if not front:
        trials = trials.drop(columns="on_front")
    epochs = storage.epochs_frame(store, name).rename(columns={"trial_number": "trial"})
    info = trials[["trial", "state", "value", *params, "param_count", "receptive_field"]]
    curves = info.merge(epochs, on="trial").sort_values(["trial", "epoch"])
    complete = curves[(curves["state"] == "COMPLETE") & curves["test_accuracy"].notna()]
    complete = complete.assign(gap=complete["train_accuracy"] - complete["val_accuracy"])
    complete = complete.merge(pd.DataFrame(dead, columns=["trial", "epoch", "dead_train",
                                                          "dead_test"]),
                              on=["trial", "epoch"], how="left")
    return StudyResult(
        name=name,
        metrics=metrics,
        directions=directions,
        params=params,
        snapshots=complete.drop(columns="state").reset_index(drop=True),
        curves=curves.reset_index(drop=True),
        trials=trials.reset_index(drop=True),
        per_class=pd.DataFrame(per_class),
        pareto=_pareto_frame(all_trials, metrics, params, front),
        pictures=pd.DataFrame(pictures, columns=["trial", "epoch", "kind", "artifact_id"]),
        best_confusion=_best_confusion(all_trials, trials),
    )


def _pictures(store, trial) -> list[dict]:
    import optuna

    rows = []
    for meta in optuna.artifacts.get_all_artifact_meta(trial, storage=store):
        kind, _, rest = meta.filename.partition("-epoch")
        if rest.endswith(".png") and kind in ("filters", "pca"):
            rows.append({"trial": trial.number, "epoch": int(rest[:-4]), "kind": kind,
                         "artifact_id": meta.artifact_id})
    return rows


def _pareto_frame(trials, metrics, params, front) -> pd.DataFrame:
    if len(metrics) < 2:
        return pd.DataFrame()
    return pd.DataFrame([
        {"trial": t.number, **{p: t.params.get(p) for p in params},
         **dict(zip(metrics, t.values)), "on_front": t.number in front}
        for t in trials if t.state.name == "COMPLETE"
    ])


def _best_confusion(all_trials, trials: pd.DataFrame) -> list | None:
    """The last confusion matrix of the first complete trial of ``trials`` (best first)."""
    complete = trials[trials["state"] == "COMPLETE"]
    if complete.empty:
        return None
    best = all_trials[int(complete["trial"].iloc[0])]  # Optuna lists trials by number
    diagnostics = best.user_attrs.get("diagnostics", {})
    return diagnostics[max(diagnostics, key=int)]["confusion"] if diagnostics else None


def grouped_figure(snapshots: pd.DataFrame, by: str, metrics=GROUPED_METRICS,
                   title: str = "Grouped by") -> go.Figure:
    """Box plots of each of ``metrics`` (columns of ``snapshots``) per value of ``by``."""
    metrics = [m for m in metrics if snapshots[m].notna().any()]
    fig = make_subplots(rows=1, cols=max(1, len(metrics)), subplot_titles=metrics)
    for col, metric in enumerate(metrics, start=1):
        for i, (value, group) in enumerate(snapshots.groupby(by, sort=True)):
            fig.add_trace(
                go.Box(
                    y=group[metric],
                    name=str(value),
                    marker_color=PALETTE[i % len(PALETTE)],
                    boxpoints="all",
                    legendgroup=str(value),
                    showlegend=col == 1,
                    text=[f"trial {t}" for t in group["trial"]],
                ),
                row=1,
                col=col,
            )
    fig.update_layout(title=f"{title} {by}", legend_title=by, height=420)
    return fig


def _last_epoch(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of each trial's last snapshot epoch."""
    return frame[frame["epoch"] == frame.groupby("trial")["epoch"].transform("max")]


def per_class_figure(per_class: pd.DataFrame, by: str) -> go.Figure:
    """Mean per-class test accuracy (last snapshot of each trial) per value of ``by``."""
    table = _last_epoch(per_class).pivot_table(index=by, columns="class", values="accuracy", aggfunc="mean")
    fig = go.Figure(go.Heatmap(z=table.values, x=[str(c) for c in table.columns],
                               y=[str(v) for v in table.index], zmin=0, zmax=1,
                               colorscale="Viridis", colorbar_title="accuracy"))
    fig.update_layout(title=f"Per-class test accuracy by {by}", xaxis_title="class",
                      yaxis_title=by, height=300 + 12 * len(table))
    return fig


def confusion_figure(confusion: list, trial: int) -> go.Figure:
    """The confusion matrix of one trial: rows true class, columns predicted."""
    fig = go.Figure(go.Heatmap(z=confusion, colorscale="Blues", colorbar_title="images"))
    # the title names no trial: the dashboard keeps one figure per title (sweep.dashboard)
    fig.update_layout(title="Confusion matrix of the best trial",
                      xaxis_title=f"predicted class (trial {trial})", yaxis_title="true class",
                      yaxis_autorange="reversed", height=520)
    return fig


def pareto_figure(pareto: pd.DataFrame, metrics: tuple[str, ...]) -> go.Figure:
    """The first two objectives of every completed trial, the Pareto front joined by a line."""
    x, y = metrics[0], metrics[1]
    front = pareto[pareto["on_front"]].sort_values(x)
    rest = pareto[~pareto["on_front"]]
    fig = go.Figure([
        go.Scatter(x=rest[x], y=rest[y], mode="markers", name="dominated",
                   marker_color="lightgray", text=[f"trial {t}" for t in rest["trial"]]),
        go.Scatter(x=front[x], y=front[y], mode="lines+markers", name="Pareto front",
                   marker_color=PALETTE[0], text=[f"trial {t}" for t in front["trial"]]),
    ])
    fig.update_layout(title=f"Pareto front: {x} vs {y}", xaxis_title=x, yaxis_title=y,
                      height=460)
    return fig


def curves_figure(curves: pd.DataFrame) -> go.Figure:
    """Learning curves: train and validation accuracy per epoch, one line per trial; a pruned
    trial's line is dotted and stops where the pruner stopped it."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("train_accuracy", "val_accuracy"))
    for i, (trial, group) in enumerate(curves.groupby("trial", sort=True)):
        pruned = group["state"].iloc[0] == "PRUNED"
        for col, metric in enumerate(("train_accuracy", "val_accuracy"), start=1):
            fig.add_trace(
                go.Scatter(
                    x=group["epoch"], y=group[metric], mode="lines",
                    name=f"trial {trial}" + " (pruned)" * pruned,
                    line_color=PALETTE[i % len(PALETTE)], line_dash="dot" if pruned else None,
                    legendgroup=str(trial), showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    fig.update_layout(title="Learning curves", height=420)
    fig.update_xaxes(title_text="epoch")
    return fig


def report_figures(result: StudyResult) -> list[go.Figure]:
    """The report's figures, in order: one grouped figure per swept param and the epoch, the
    learning curves, the Pareto front, then the diagnostics grouped the same way."""
    figures = []
    groups = (*result.params, "epoch")
    if not result.snapshots.empty:
        figures += [grouped_figure(result.snapshots, by) for by in groups]
    if not result.curves.empty:
        figures.append(curves_figure(result.curves))
    if not result.pareto.empty:
        figures.append(pareto_figure(result.pareto, result.metrics))
    if not result.snapshots.empty:
        figures += [grouped_figure(result.snapshots, by, DIAGNOSTIC_METRICS, "Diagnostics by")
                    for by in groups]
    if not result.per_class.empty:
        figures += [per_class_figure(result.per_class, by) for by in result.params]
    if result.best_confusion is not None:
        figures.append(confusion_figure(result.best_confusion, int(result.trials["trial"][0])))
    return figures


def write_report(result: StudyResult, path: Path, artifact_dir: Path | None = None) -> Path:
    """A self-contained HTML file (plotly.js inlined once, pictures embedded, so it reads
    offline). ``artifact_dir`` is the artifact store holding the trials' pictures."""
    parts = []
    for i, fig in enumerate(report_figures(result)):
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
    last = _last_epoch(result.pictures)
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
