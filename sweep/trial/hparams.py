"""TensorBoard's HParams tab for a study (``training.tensorboard: true``): the study's search
params as hparams, its objective as metrics.

Written beside the Keras TensorBoard callback's logs, in the HParams plugin's own summaries
(``tensorboard.plugins.hparams.api``): the experiment (each search param with its domain, each
objective metric) once per study in ``tensorboard/<study>/``, and per trial a session in
``tensorboard/<study>/trial-<number>/``: its values when it starts, its objective values as
scalars when it ends. TensorBoard then shows the sweep as a table and a parallel-coordinates
view. Uses ``tf.summary``, as the Keras callback does (under any Keras backend).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING

from sweep.errors import SpecError
from sweep.study import ChoiceParam, Param, StudySpec

if TYPE_CHECKING:
    from tensorboard.plugins.hparams import api

EXPERIMENT_MARK = ".hparams-"  # + the experiment's digest: this experiment is written here


def require_tensorboard(spec: StudySpec) -> None:
    """Refuse, before anything is written, a study that asks for TensorBoard logs
    (``training.tensorboard``, set or searched) where TensorFlow is missing: the logs go through
    ``tf.summary`` under any Keras backend, and a JAX or PyTorch machine may have no TensorFlow.

    Raises:
        SpecError: naming the study file and the field.
    """
    wanted = spec.training.tensorboard or any(
        p.name == "training.tensorboard" for p in spec.search.params)
    if not wanted:
        return
    # found, not imported: the parent of local workers never loads TensorFlow
    if importlib.util.find_spec("tensorflow") is None:
        import keras

        raise SpecError(f"{spec.source}: training.tensorboard needs TensorFlow (TensorBoard logs "
                        f"are written with tf.summary), which is not installed here (Keras "
                        f"backend {keras.backend.backend()}); set it to false or install "
                        "tensorflow")


class TrialSession:
    """One trial's HParams session; ``end`` writes its objective values."""

    def __init__(self, spec: StudySpec, values: dict, logdir: Path):
        import tensorflow as tf
        from tensorboard.plugins.hparams import api

        self.metrics, self.tf = spec.metrics, tf
        _write_experiment(spec, logdir.parent)
        kinds = {p.name: _kind(p) for p in spec.search.params}
        self.writer = tf.summary.create_file_writer(str(logdir))
        with self.writer.as_default():
            api.hparams({name: _value(value, kinds[name]) for name, value in values.items()
                         if name in kinds}, trial_id=logdir.name)
        self.writer.flush()  # a trial that fails or is pruned still shows its values

    def end(self, objective: list[float], epoch: int) -> None:
        """Write the objective's values (one per metric) at the trial's last ``epoch``."""
        with self.writer.as_default():
            for metric, value in zip(self.metrics, objective, strict=True):
                self.tf.summary.scalar(metric, value, step=epoch)
        self.writer.close()


def hparam_values(param: ChoiceParam) -> tuple:
    """A choice param's values as the HParams plugin takes them: all bool, all numbers, or
    else all text (lists and None as their JSON text)."""
    kind = _kind(param)
    return tuple(dict.fromkeys(_value(v, kind) for v in param.values))


def _write_experiment(spec: StudySpec, root: Path) -> None:
    """The experiment's summary in ``root``, unless this experiment is there already (the
    first trial of any worker writes it); one written for an earlier search space (a grown
    axis) is replaced."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api

    described = [(p.name, p.describe()) for p in spec.search.params]
    text = json.dumps([described, spec.metrics, spec.directions], default=str)
    mark = root / (EXPERIMENT_MARK + hashlib.sha1(text.encode()).hexdigest()[:16])
    root.mkdir(parents=True, exist_ok=True)
    try:
        mark.open("x").close()  # atomic: one process writes it
    except FileExistsError:
        return
    for old in [*root.glob(EXPERIMENT_MARK + "*"), *root.glob("events.out.tfevents.*")]:
        if old != mark:  # only sweep writes in the study's own folder (trials have theirs)
            old.unlink(missing_ok=True)
    hparams = [api.HParam(p.name, _domain(p)) for p in spec.search.params]
    metrics = [api.Metric(m, display_name=m, description=f"objective: {d} {m}")
               for m, d in zip(spec.metrics, spec.directions, strict=True)]
    writer = tf.summary.create_file_writer(str(root))
    with writer.as_default():
        api.hparams_config(hparams=hparams, metrics=metrics)
    writer.close()


def _domain(param: Param) -> api.Domain:
    from tensorboard.plugins.hparams import api

    if isinstance(param, ChoiceParam):
        return api.Discrete(list(hparam_values(param)))
    if param.integer:
        return api.IntInterval(int(param.low), int(param.high))
    return api.RealInterval(float(param.low), float(param.high))


def _kind(param: Param) -> type:
    if not isinstance(param, ChoiceParam):
        return float
    if all(isinstance(v, bool) for v in param.values):
        return bool
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in param.values):
        return float
    return str


def _value(value: object, kind: type) -> bool | float | str:
    if kind is str:
        return value if isinstance(value, str) else json.dumps(value)
    return kind(value)
