"""KerasTuner hypermodels: a study's ``model: {hypermodel: path/to/file.py:build_model}``.

A translator, not a second vocabulary. The user's ``build(hp)`` runs with KerasTuner's own
``HyperParameters``; what it registers (``hp.Int``, ``hp.Float``, ``hp.Choice``,
``hp.Boolean``, ``hp.Fixed``, conditions from ``parent_name``/``parent_values`` or
``conditional_scope``) becomes sweep's search params (``space.ChoiceParam`` /
``RangeParam`` named ``hp.<name>``), which the samplers, claims, storage and report
already handle. A trial then builds its model the way KerasTuner's tuners do: the trial's
values are set on a fresh ``HyperParameters`` and ``build(hp)`` reads them. A ``HyperModel``
with its own ``fit(hp, model, ...)`` (``hyperfit``) has that run too while collecting, so the
hps it declares become search params as well, and a trial trains through it.

Knows KerasTuner and Keras (to check the returned model); never Optuna.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep.errors import ConfigError, SpecError, SweepError
from sweep.models.hyperfit import FitProbeError, own_fit, probe_fit
from sweep.study import ChoiceParam, Param, RangeParam, StudySpec
from sweep.study.plugins import SAMPLERS
from sweep.study.training import TrainingConfig

if TYPE_CHECKING:
    import keras
    import keras_tuner
    from keras_tuner.engine.hyperparameters import HyperParameter

PREFIX = "hp."  # search params of a hypermodel are named hp.<KerasTuner name>
FIELD = "model.hypermodel"
# While collecting the space, each discrete hp with at most this many values is tried at each
# value once (from the values that revealed it), to find the hps registered only under some
# parent value (KerasTuner's conditional_scope with an ``if`` inside).
MAX_EXPLORED_VALUES = 16
MAX_BUILDS = 200  # builds spent collecting one space
# Training fields that set sweep's own optimizer and its learning rate: a hypermodel that
# compiles its model keeps its own, so these would be silently ignored (or, for a schedule,
# overwrite its learning rate each epoch).
COMPILED_REFUSES = ("optimizer", "learning_rate", "momentum", "schedule", "decay", "weight_decay",
                    "label_smoothing")


@dataclass(frozen=True)
class HypermodelSpec:
    """What collecting a hypermodel's space found: its search params, whether ``build``
    returns a compiled model (its own optimizer and loss then replace ``training``'s), and
    the keywords its own ``fit`` sets on ``model.fit`` (``batch_size``, ``shuffle``, ...)."""

    params: tuple[Param, ...]
    compiled: bool
    fit_sets: frozenset = frozenset()


@dataclass(frozen=True)
class Hypermodel:
    """A loaded hypermodel: its ``build(hp)``, and its own ``fit(hp, model, *args, **kwargs)``
    or None (KerasTuner's default fit, ``model.fit``). One object serves both, as in
    KerasTuner, so a ``fit`` may read what ``build`` kept on ``self``."""

    ref: str  # file.py:name, as the study gives it
    source: str  # the study file
    build: Callable
    fit: Callable | None


def load_hypermodel(ref: str, study_source: str) -> Hypermodel:
    """The function (or ``keras_tuner.HyperModel`` class or instance) named by
    ``file.py:name``; a relative file is relative to the study file's folder."""
    file, _, name = ref.rpartition(":")
    path = Path(file)
    if not path.is_absolute():
        path = Path(study_source).resolve().parent / path
    where = f"{study_source}: {FIELD}"
    if not path.is_file():
        raise SpecError(f"{where}: {path} does not exist (a relative path is relative to "
                        "the study file's folder)")
    module_name = f"sweep_hypermodel_{abs(hash(str(path)))}"
    try:
        loader = importlib.util.spec_from_file_location(module_name, path)
        assert loader is not None and loader.loader is not None  # a .py file (the schema's)
        module = importlib.util.module_from_spec(loader)
        sys.modules[module_name] = module  # for pickling and dataclasses in the user's file
        loader.loader.exec_module(module)
    except Exception as err:
        raise SpecError(f"{where}: importing {path} raised {_one_line(err)}") from None
    target = getattr(module, name, None)
    if target is None:
        known = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                 and getattr(v, "__module__", None) == module_name]
        raise SpecError(f"{where}: {path} has no {name!r}; defined there: "
                        f"{', '.join(known) or 'nothing callable'}")
    if inspect.isclass(target):
        target = target()
    build = getattr(target, "build", target)
    if not callable(build):
        raise SpecError(f"{where}: {name!r} in {path} is not a function build(hp)")
    return Hypermodel(ref, study_source, build, own_fit(target))


def collect(ref: str, study_source: str, sampler: str) -> HypermodelSpec:
    """Run ``build(hp)`` (then the hypermodel's own ``fit``, if any, with the same ``hp``) to
    collect its search space as sweep params.

    Raises:
        SpecError: naming the study file and ``model.hypermodel``: the file or function is
            missing, ``build`` or ``fit`` raises, ``build`` returns no Keras model, ``fit``
            does not train through one ``model.fit`` with sweep's callbacks, or the grid
            sampler meets a hp it cannot enumerate (a ``hp.Float`` without ``step``).
    """
    hypermodel = load_hypermodel(ref, study_source)
    found: dict = {}  # name -> KerasTuner hp, in the order first registered
    queue: list[dict[str, Any]] = [{}]
    tried: set[str] = set()
    compiled: bool | None = None
    fit_sets: frozenset[str] = frozenset()
    while queue and len(tried) < MAX_BUILDS:
        values = queue.pop(0)
        key = repr(sorted(values.items()))
        if key in tried:
            continue
        tried.add(key)
        hp, model = _build(hypermodel.build, values, ref, study_source)
        compiled = _is_compiled(model) if compiled is None else compiled
        if hypermodel.fit is not None:
            fit_sets |= _probe(hypermodel.fit, hp, model, values, study_source)
        new = []
        for h in hp.space:
            if h.name not in found:
                found[h.name] = h
                new.append(h)
            elif _conditions(h) != _conditions(found[h.name]):
                raise SpecError(f"{study_source}: {FIELD}: hp {h.name!r} is registered under "
                                "two different conditions; give each its own name")
        for h in new:  # explore what this build revealed
            if h.name in values or not hp.is_active(h) or not _explorable(h):
                continue
            queue += [values | {h.name: v} for v in h.values if v != hp.values[h.name]]
    params = tuple(_to_param(h, sampler, study_source) for h in found.values())
    return HypermodelSpec(params=params, compiled=bool(compiled), fit_sets=fit_sets)


def complete_spec(spec: StudySpec) -> StudySpec:
    """The study with its hypermodel's ``hp.*`` search params added (after its other search
    params, ``training.*`` and the like); a study without a hypermodel, or one already
    completed, comes back as it is. Runs ``build(hp)``, so Keras is imported here.

    Raises:
        SpecError: naming the field at fault: ``build`` cannot be collected (see ``collect``),
            or the hypermodel compiles its model with its own optimizer while the study sets
            one of the training fields that only apply to sweep's own optimizer, or its own
            ``fit`` sets the batch size while the study sets ``training.batch_size``.
    """
    if spec.hypermodel is None or spec.hp_collected:
        return spec
    found = collect(spec.hypermodel, spec.source, spec.search.sampler)
    searched = {p.name for p in spec.search.params}

    def set_by_study(key: str) -> bool:
        return f"training.{key}" in searched or (
            getattr(spec.training, key) != getattr(TrainingConfig(), key))

    if "batch_size" in found.fit_sets and set_by_study("batch_size"):
        raise SpecError(f"{spec.source}: training.batch_size: not used, the fit of {FIELD} "
                        "sets batch_size itself (sweep it with hp.* in fit)")
    if found.compiled:
        for key in COMPILED_REFUSES:
            if set_by_study(key):
                raise SpecError(f"{spec.source}: training.{key}: not used, {FIELD} compiles its "
                                "model with its own optimizer (sweep it with hp.* in build(hp))")
    search = dataclasses.replace(spec.search, params=(*spec.search.params, *found.params))
    return dataclasses.replace(spec, search=search, hp_collected=True)


def build_hypermodel(hypermodel: Hypermodel, values: dict, input_shape: tuple, num_classes: int
                     ) -> keras.Model:
    """The trial's Keras model: ``build(hp)`` with ``values`` (``{name: value}``, without the
    ``hp.`` prefix) set on KerasTuner's HyperParameters.

    A compiled model gets the accuracy metric added (its optimizer and loss stay); an
    uncompiled one must output one logit per class, as sweep's own models do.

    Raises:
        ConfigError: the model takes other inputs than the data's, gives another number of
            outputs than classes, or ends in a softmax without being compiled.
    """
    import keras

    _, model = _build(hypermodel.build, values, hypermodel.ref, hypermodel.source,
                      fail=ConfigError)
    if not model.built:
        model.build((None, *input_shape))
    if tuple(model.input_shape[1:]) != tuple(input_shape):
        raise ConfigError(f"the hypermodel takes inputs of shape {tuple(model.input_shape[1:])}"
                          f" but the dataset's images are {tuple(input_shape)}")
    if model.output_shape[-1] != num_classes:
        raise ConfigError(f"the hypermodel gives {model.output_shape[-1]} outputs but the "
                          f"dataset has {num_classes} classes")
    if _is_compiled(model):
        model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"])
    elif getattr(model.layers[-1], "activation", None) is keras.activations.softmax:
        raise ConfigError("the hypermodel ends in a softmax but is not compiled: output "
                          "logits, or compile it with the loss that fits")
    return model


def _build(build: Callable, values: dict, ref: str, source: str,
           fail: type[SweepError] = SpecError
           ) -> tuple[keras_tuner.HyperParameters, keras.Model]:
    import keras
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    hp.values = dict(values)
    try:
        model = build(hp)
    except Exception as err:
        at = f" with {values}" if values else ""
        message = f"build(hp){at} raised {_one_line(err)}"
        raise fail(f"{source}: {FIELD}: {message}" if fail is SpecError else message) from None
    if not isinstance(model, keras.Model):
        message = f"{ref} returned {type(model).__name__}, expected a Keras model"
        raise fail(f"{source}: {FIELD}: {message}" if fail is SpecError else message)
    return hp, model


def _probe(fit: Callable, hp: keras_tuner.HyperParameters, model: keras.Model, values: dict,
           source: str) -> frozenset[str]:
    """``hyperfit.probe_fit``, its failures as the study's one-line error."""
    at = f" with {values}" if values else ""
    try:
        return probe_fit(fit, hp, model)
    except FitProbeError as err:
        raise SpecError(f"{source}: {FIELD}: fit(hp, model, ...){at}: {err}") from None
    except Exception as err:
        raise SpecError(f"{source}: {FIELD}: fit(hp, model, ...){at} raised {_one_line(err)} "
                        "(sweep calls it as fit(hp, model, x, y, epochs=..., initial_epoch=..., "
                        "validation_data=..., callbacks=..., verbose=0))") from None


def _to_param(h: HyperParameter, sampler: str, source: str) -> Param:
    """A KerasTuner hp as a sweep search param (grid: a list of values; random/tpe: a range
    where KerasTuner samples a range)."""
    name, conditions = PREFIX + h.name, _conditions(h)
    kind = type(h).__name__
    if kind in ("Choice", "Fixed"):
        return ChoiceParam(name, tuple(h.values), conditions)
    if kind == "Boolean":
        return ChoiceParam(name, (False, True), conditions)
    integer = kind == "Int"
    step = h.step  # None: a continuous Float (or an Int log range)
    enumerates = SAMPLERS[sampler].enumerates  # a grid needs finite lists
    if not enumerates and h.sampling == "linear":
        return RangeParam(name, h.min_value, h.max_value, step=step, integer=integer,
                          conditions=conditions)
    if not enumerates and h.sampling == "log" and (integer and step == 1 or step is None):
        return RangeParam(name, h.min_value, h.max_value, log=True, integer=integer,
                          conditions=conditions)
    if step is None:
        need = f"the {sampler} sampler needs a finite list" if enumerates else (
            f"Optuna has no {h.sampling!r} sampling")
        raise SpecError(f"{source}: {FIELD}: hp.{kind}({h.name!r}) has no step and {need}; "
                        "give step=..., or use search.sampler random or tpe with "
                        "sampling 'linear' or 'log'")
    # A finite list: every value KerasTuner's own grid would visit (log steps multiply).
    values = tuple(int(round(v)) if integer else float(v) for v in h.values)
    return ChoiceParam(name, tuple(dict.fromkeys(values)), conditions)


def _conditions(h: HyperParameter) -> tuple:
    return tuple((PREFIX + c.name, tuple(c.values)) for c in h.conditions)


def _explorable(h: HyperParameter) -> bool:
    if type(h).__name__ in ("Int", "Float") and h.step is None:
        return False
    return len(list(h.values)) <= MAX_EXPLORED_VALUES


def _is_compiled(model: keras.Model) -> bool:
    return bool(getattr(model, "compiled", False))


def _one_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__
