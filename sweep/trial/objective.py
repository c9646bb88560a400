"""The one module that knows both Optuna and Keras: one trial, from its values to its result.

``run_trial`` takes an Optuna trial and the point of the space to train; it builds the model
from the plain config, trains it, and writes what it learns onto the trial (per-epoch values,
snapshot results, provenance). It works with any trial, including ``optuna.trial.FixedTrial``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import optuna

from sweep.data import Dataset
from sweep.defaults import CHECKPOINT_EVERY_S, TENSORBOARD_DIR
from sweep.errors import TrialFailed
from sweep.models import build_model, kernel_l2, plan
from sweep.models.build import dtype_policy
from sweep.models.hyperfit import trial_fit
from sweep.models.hypermodel import build_model as build_hypermodel, load_hypermodel
from sweep.study import StudySpec
from sweep.study.space import trial_config
from sweep.training import diagnostics, pictures
from sweep.training.checkpoints import load_checkpoint, save_checkpoint
from sweep.training.device import out_of_memory
from sweep.training.fit import train
from sweep.training.reuse import remember, reuse
from sweep.trial.hparams import TrialSession
from sweep.trial.provenance import provenance


def run_trial(
    trial: optuna.Trial,
    spec: StudySpec,
    values: dict,
    dataset_for: Callable[[dict, int], Dataset],
    on_epoch: Callable[[dict], None],
    checkpoint: Path | None = None,
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
    artifact_store=None,
    stop_requested: Callable[[], bool] | None = None,
    keep: Path | None = None,
    earlier_diagnostics: dict | None = None,
    save_attrs: Callable[[dict], None] | None = None,
) -> float | tuple[float, ...]:
    """Train the configuration at ``values`` and return the objective's value (a tuple, one
    per metric, for a multi-objective study).

    Args:
        values: ``{dotted.name: value}`` for each search param (grid point or sampled).
        dataset_for: ``(dataset_cfg, seed) -> Dataset``, cached by the caller so a process
            loads each dataset once.
        on_epoch: called with each epoch's row (storage, progress).
        checkpoint: this point's checkpoint file. When it exists (a worker died while
            training this point) training resumes after its last epoch, whose rows are
            replayed onto this trial. It is rewritten every ``checkpoint_every_s`` seconds.
        artifact_store: an Optuna artifact store for the snapshot pictures, or None.
        stop_requested: asked after every training batch; True stops training with
            KeyboardInterrupt (Ctrl-C, see interrupt.py).
        keep: where to keep the trained model (weights and optimizer state) with its epoch
            rows once the trial is done, to continue it when the study's epochs grow and for
            ``sweep export --model``; None keeps nothing.
        earlier_diagnostics: the snapshot diagnostics of the trial this one continues (the
            checkpoint is that trial's kept model), kept with this trial's own.
        save_attrs: stores ``{key: value}`` user attributes of the trial at once (one storage
            transaction); called when training starts and on the way out, however the trial
            ends. Default: ``trial.set_user_attr`` per key (a commit each).

    Raises:
        TrialFailed: the configuration cannot be built or breaks a study constraint (both
            found before any training), or the loss became NaN; the message is the reason
            stored on the trial.
        optuna.TrialPruned: the study's pruner stopped it after an epoch.
    """
    attrs = _PendingAttrs(trial, save_attrs)  # saved before training and on the way out
    try:
        config, seed = trial_config(spec.config, values, spec.seed)
        attrs["config"] = config
        attrs["seed"] = seed
        attrs["provenance"] = provenance(spec)
        data = dataset_for(config["dataset"], seed)
        # sweep's own models are analysed (and rejected if they cannot be built) before anything
        # is built; a KerasTuner hypermodel is only known once built
        hyper = "hypermodel" in config["model"]
        training = config["training"]
        architecture = None if hyper else _analyse(attrs, config["model"], training["augment"],
                                                   data)
        hypermodel = load_hypermodel(config["model"]["hypermodel"], spec.source) if hyper else None

        def report(row: dict) -> None:
            on_epoch(row)
            # Optuna keeps per-epoch values (and prunes) for single-objective studies only
            value = row.get(spec.metric)
            if not spec.multi_objective and value is not None and np.isfinite(value):
                trial.report(value, step=row["epoch"])
                # the study's pruner (search.pruner) gave up on it; without one Optuna would
                # still read the whole trial back to ask its NopPruner
                if spec.search.pruner != "none" and trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {row['epoch']}")

        keras.utils.set_random_seed(seed)
        resumed = load_checkpoint(checkpoint) if checkpoint is not None else None
        if resumed is not None:
            model, done = resumed
            attrs["resumed_from_epoch"] = done[-1]["epoch"]
            for row in done:
                report(row)
        else:
            model, done = _new_model(config, seed, data, hypermodel), []
        step_key = None if hyper or done else _step_key(config, data)
        if step_key is not None:  # an earlier trial's compiled step, when it can train this one
            fresh, model = model, reuse(step_key, model, training["learning_rate"])
            if model is not fresh:
                attrs["reused_step"] = True
        param_count = int(model.count_params())
        if architecture is not None:
            assert param_count == architecture.params, "architecture.plan miscounted"
        attrs["param_count"] = param_count
        limit = spec.constraints.get("max_params")
        if limit is not None and param_count > limit:
            raise TrialFailed(f"{param_count:,} parameters, over the study's max_params {limit:,}")

        board = TENSORBOARD_DIR / spec.name / f"trial-{trial.number}" if training.get(
            "tensorboard") else None
        session = TrialSession(spec, values, board) if board is not None else None
        attrs.save()  # a running trial shows its config and layers (the dashboard, status)
        try:
            result = train(
                model,
                data,
                optimizer=training["optimizer"],
                learning_rate=training["learning_rate"],
                batch_size=training["batch_size"],
                epochs=training["epochs"],
                momentum=training["momentum"],
                schedule=training["schedule"],
                decay=training["decay"],
                weight_decay=training["weight_decay"],
                label_smoothing=training["label_smoothing"],
                stop_at_loss=training["stop_at_loss"],
                stop_requested=stop_requested,
                snapshots=training["snapshots"],
                on_epoch=report,
                done=done,
                checkpoint=checkpoint,
                checkpoint_every_s=checkpoint_every_s,
                tensorboard_dir=board,
                fit=trial_fit(hypermodel.fit, config["hp"]) if hyper else None,
            )
        except Exception as err:
            if not out_of_memory(err):
                raise
            raise TrialFailed(f"out of GPU memory: {str(err).splitlines()[0][:200]}") from None
        attrs["train_seconds"] = result.seconds
        if step_key is not None and result.nan_epoch is None:
            remember(step_key, model)
        if result.nan_epoch is not None:
            raise TrialFailed(f"loss became NaN at epoch {result.nan_epoch}")
        if keep is not None:
            save_checkpoint(keep, model, result.epochs)
        attrs["snapshots"] = list(result.snapshots.values())
        attrs["overfitting"] = diagnostics.overfitting(result.epochs)
        if result.stopped_epoch is not None:
            attrs["stopped_epoch"] = result.stopped_epoch
        _record_details(trial, attrs, result.details, artifact_store, data.class_names,
                        earlier_diagnostics or {})
        rows = {m: _objective_row(result, m, spec.at, d)
                for m, d in zip(spec.metrics, spec.directions) if m != "param_count"}
        if spec.metric in rows:  # the epoch the (first) objective's value comes from
            attrs["objective_epoch"] = rows[spec.metric]["epoch"]
        values = [rows[m][m] if m in rows else float(param_count) for m in spec.metrics]
        if session is not None:  # TensorBoard's HParams tab: this trial's objective
            session.end(values, result.epochs[-1]["epoch"])
        return values[0] if len(values) == 1 else tuple(values)
    finally:
        attrs.save()


class _PendingAttrs(dict):
    """The trial's user attributes set since the last ``save``, which stores them together."""

    def __init__(self, trial, save_attrs: Callable[[dict], None] | None):
        super().__init__()
        self._save = save_attrs or (lambda attrs: [trial.set_user_attr(key, value)
                                                   for key, value in attrs.items()])

    def save(self) -> None:
        if self:
            self._save(dict(self))
            self.clear()


def _objective_row(result, metric: str, at: str, direction: str) -> dict:
    """The epoch row an objective's value comes from: test metrics are known at snapshots
    only, the others at every epoch; of those, the last (``at: last``) or the best one
    (``at: best``, the earliest of equals)."""
    at_snapshots = metric.startswith("test") or metric == "roc_auc"
    rows = [result.snapshots[e] for e in sorted(result.snapshots)] if at_snapshots \
        else result.epochs
    if at == "last":
        return rows[-1]
    pick = min if direction == "minimize" else max
    return pick(rows, key=lambda row: row[metric])


def _step_key(config: dict, data: Dataset) -> str | None:
    """What a compiled training step is made of (``sweep.training.reuse``), or None where it
    is not kept (float16 loss scaling keeps a state of its own)."""
    training = config["training"]
    if training["precision"] == "mixed_float16":
        return None
    constants = {k: training[k] for k in ("augment", "precision", "optimizer",
                                          "label_smoothing", "batch_size")}
    if training["optimizer"] in ("sgd", "rmsprop"):
        constants["momentum"] = training["momentum"]
    constants["weight_decay"] = training["weight_decay"]  # the L2 factor, or AdamW's
    return json.dumps([config["model"], constants, data.name, data.input_shape,
                       data.num_classes], sort_keys=True, default=str)


def _analyse(attrs: dict, model_cfg: dict, augment: dict | None, data: Dataset):
    """Lay out the model before building it; its receptive field and layer table go into
    the trial's ``attrs``.

    Raises:
        ConfigError: it cannot be built.
    """
    architecture = plan(model_cfg, data.input_shape, data.num_classes, augment)
    attrs["receptive_field"] = architecture.receptive_field
    attrs["layers"] = architecture.rows()
    return architecture


def _record_details(trial, attrs: dict, details: dict[int, dict], artifact_store,
                    class_names: tuple[str, ...], earlier: dict) -> None:
    """Snapshot diagnostics into the trial's ``attrs`` (with ``earlier`` ones, of the epochs
    a continued trial did not train itself); their pictures as trial artifacts (the PCA
    picture's legend names the classes)."""
    attrs["diagnostics"] = earlier | {
        str(epoch): {k: d[k] for k in ("per_class_accuracy", "confusion", "dead_units")}
        for epoch, d in details.items()
    }
    if artifact_store is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        for epoch, d in details.items():
            pngs = {f"pca-epoch{epoch}.png": pictures.pca_png(**d["pca"],
                                                              class_names=class_names)}
            if d["first_kernels"] is not None:
                pngs[f"filters-epoch{epoch}.png"] = pictures.filters_png(d["first_kernels"])
            for name, png in pngs.items():
                path = Path(tmp) / name
                path.write_bytes(png)
                optuna.artifacts.upload_artifact(
                    artifact_store=artifact_store, file_path=str(path), study_or_trial=trial,
                    mimetype="image/png",
                )


def _new_model(config: dict, seed: int, data: Dataset, hypermodel):
    """sweep's own model, or the study's KerasTuner hypermodel built with the trial's hps."""
    training = config["training"]
    if hypermodel is not None:
        with dtype_policy(training["precision"]):  # build(hp)'s layers take the policy
            return build_hypermodel(hypermodel, config["hp"], data.input_shape,
                                    data.num_classes)
    return build_model(config["model"], data.input_shape, data.num_classes,
                       augment=training["augment"], seed=seed, l2=kernel_l2(training),
                       precision=training["precision"])
