"""Study files: read YAML as data, apply ``--set`` overrides, validate, hand out a StudySpec.

Nothing here imports Keras or Optuna or touches storage, so a malformed study is rejected in
well under a second and before anything is written anywhere. (A hypermodel's ``build(hp)`` is
run later, by ``sweep.models.complete_spec``.)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from sweep.defaults import MAX_POINTS, STUDIES_DIR
from sweep.errors import SpecError
from sweep.study.fields import REQUIRED, Bad, Check
from sweep.study.plugins import DATASETS, OPTIMIZERS, SAMPLERS
from sweep.study.reading import cut, parse_yaml, read_text, what_is
from sweep.study.schema import SCHEMA, TOP
from sweep.study.search_section import (
    Fail,
    check_schedule,
    parse_params,
    reject_unknown,
    with_repeats,
)
from sweep.study.space import ChoiceParam, Param
from sweep.study.spec import SearchSpec, StudySpec

HYPERMODEL = "model.hypermodel"


def find_study(name_or_path: str) -> Path:
    """A study name (a file in ``studies/``) or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        candidate = path
    else:
        candidate = STUDIES_DIR / f"{name_or_path}.yaml"
    if candidate.exists() and not candidate.is_file():  # a FIFO would block the read
        raise SpecError(f"{candidate} {what_is(candidate)}, not a study file (YAML text)")
    if not candidate.is_file():
        known = sorted(p.stem for p in STUDIES_DIR.glob("*.yaml"))
        raise SpecError(
            f"{name_or_path}: no such study file (looked for {candidate}); "
            f"studies in {STUDIES_DIR}: {', '.join(known) or 'none'}"
        )
    return candidate


def load_study(name_or_path: str, overrides: Sequence[str] = (),
               max_points: int = MAX_POINTS) -> StudySpec:
    """Read, override and validate a study file, of at most ``max_points`` points. Raises
    SpecError with one actionable line."""
    path = find_study(name_or_path)
    source = str(path)
    raw = parse_yaml(read_text(path), source)
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: expected a mapping of study fields, got {type(raw).__name__}")
    for item in overrides:
        _apply_override(raw, item, source)
    spec = validate(raw, source, {item.partition("=")[0]: item for item in overrides})
    _check_points(spec, max_points)
    return spec


def _check_points(spec: StudySpec, max_points: int) -> None:
    """Count the study's points before anything builds them (a grid of 7 axes of 10 values
    is 10 million points: an hour of CPU before the first trial), and refuse past
    ``max_points``."""
    sizes = [len(p.values) for p in spec.search.params if isinstance(p, ChoiceParam)]
    count = math.prod(sizes) if spec.search.enumerates else spec.search.n_trials or 0
    if count > max_points:
        what = (f"the grid has {count:,} points ({' x '.join(map(str, sizes))} values)"
                if spec.search.enumerates else f"n_trials is {count:,}")
        raise SpecError(f"{spec.source}: search: {what}, more than the {max_points:,} a run "
                        f"takes; fewer values, or --max-points {count} to run them all")


def _apply_override(raw: dict, item: str, source: str) -> None:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise SpecError(f"{source}: --set {item}: expected dotted.path=value")
    try:
        parsed = parse_yaml(value, f"--set {key}")
    except SpecError:  # not YAML: the text itself
        parsed = value
    parts = key.split(".")
    if parts[:2] == ["search", "params"] and len(parts) > 2:
        parts = ["search", "params", ".".join(parts[2:])]
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SpecError(f"{source}: --set {key}: '{part}' is not a section")
    node[parts[-1]] = parsed


def validate(raw: dict, source: str, overrides: dict[str, str] | None = None) -> StudySpec:
    """Validate the plain study dict; every problem names ``source`` and the dotted field,
    and a field that a ``--set`` gave (``overrides``: ``{dotted.key: "key=value"}``) names
    that ``--set`` first: the typo is on the command line, not in the file."""

    def fail(field: str, message: str) -> NoReturn:
        given = [item for key, item in (overrides or {}).items()
                 if f"{field}.".startswith(f"{key}.") or key.startswith(f"{field}.")]
        where = f"--set {given[0]} (on {source})" if given else source
        raise SpecError(cut(f"{where}: {field}: {message}"))

    reject_unknown(raw, list(TOP) + list(SCHEMA), "", fail)
    top = {k: _field(raw, k, TOP[k], k, fail) for k in TOP}
    config = _sections(raw, fail)
    search = config.pop("search")
    objective = config.pop("objective")
    constraints = config.pop("constraints")
    params = parse_params(raw.get("search", {}) or {}, search["sampler"], fail)
    hypermodel = config["model"].pop("hypermodel")
    if hypermodel is not None:
        _check_hypermodel(raw, config, params, fail)
    _check_dataset(config["dataset"], fail)
    _check_snapshots(config["training"], params, fail)
    _check_training(config["training"], params, fail)
    params = with_repeats(params, search, top["seed"], fail)
    _check_trial_count(search, fail)
    check_schedule(search, objective, params, config["training"], hypermodel, fail)
    metrics = objective["metric"]
    directions = _check_objective(objective, search, fail)
    return StudySpec(
        name=top["name"],
        description=top["description"],
        source=source,
        config=config,
        search=SearchSpec(search["sampler"], params, search["n_trials"], search["pruner"],
                          search["schedule"]),
        metrics=tuple(metrics),
        directions=tuple(directions),
        seed=top["seed"],
        constraints=constraints,
        hypermodel=hypermodel,
        at=objective["at"],
    )


def _sections(raw: dict, fail: Fail) -> dict[str, dict]:
    """Each section of ``SCHEMA``: its given fields checked, the others' defaults."""
    sections = {}
    for section, fields in SCHEMA.items():
        given = {} if raw.get(section) is None else raw[section]
        if not isinstance(given, dict):
            fail(section, f"expected a mapping, got {given!r}")
        reject_unknown(given, list(fields), section + ".", fail)
        sections[section] = {
            k: _field(given, k, spec, f"{section}.{k}", fail)
            for k, spec in fields.items()
            if spec[0] is not None
        }
    return sections


def _check_trial_count(search: dict, fail: Fail) -> None:
    """``search.n_trials``: set for a sampler that draws, not for one that lists."""
    if SAMPLERS[search["sampler"]].enumerates and search["n_trials"] is not None:
        fail("search.n_trials", "not used by a sampler that lists its points (the grid sets "
                                "the count)")
    elif not SAMPLERS[search["sampler"]].enumerates and search["n_trials"] is None:
        fail("search.n_trials", f"expected an integer >= 1 for the {search['sampler']} sampler")


def _check_objective(objective: dict, search: dict, fail: Fail) -> list[str]:
    """The objective's metrics checked against each other and the pruner; returns their
    directions (given, or each metric's natural one)."""
    metrics = objective["metric"]
    directions = objective["direction"] or [
        "minimize" if m.endswith("loss") or m == "param_count" else "maximize" for m in metrics
    ]
    if len(directions) != len(metrics):
        fail("objective.direction", f"expected one direction per metric ({len(metrics)}), "
                                    f"got {objective['direction']!r}")
    if len(set(metrics)) != len(metrics):
        fail("objective.metric", f"expected distinct metrics, got {metrics!r}")
    if objective["at"] == "best" and len(metrics) > 1:
        fail("objective.at", "best needs one metric: each of several metrics would have its "
                             "own best epoch, and a Pareto front mixes them; use at: last")
    if len(metrics) > 1 and search["pruner"] != "none":
        fail("search.pruner", "Optuna prunes single-objective studies only; use pruner: none "
                              f"with {len(metrics)} objective metrics")
    return directions


def _field(given: dict, key: str, spec: tuple[Check, Any], field: str,
           fail: Fail) -> Any:
    """The field's value checked (``spec``: its check and default), or its default."""
    check, default = spec
    if key not in given:
        if default is REQUIRED:
            fail(field, "missing (required)")
        return copy.deepcopy(default)
    try:
        return check(given[key])
    except Bad as bad:
        if bad.key is None:
            fail(field, f"expected {bad}, got {given[key]!r}")
        fail(f"{field}.{bad.key}", f"expected {bad}, got {given[key].get(bad.key)!r}")


def _check_hypermodel(raw: dict, config: dict, params: tuple[Param, ...], fail: Fail) -> None:
    """A hypermodel study: ``build(hp)`` defines the model, so no other model field is used;
    the model section becomes just the reference and the trial's hp values go to
    ``config["hp"]``."""
    given = raw.get("model") or {}
    for key in given:
        if key != "hypermodel":
            fail(f"model.{key}", f"not used with {HYPERMODEL} (build(hp) defines the model)")
    for p in params:
        if p.name.startswith("model."):
            fail(f"search.params.{p.name}",
                 f"not used with {HYPERMODEL}; declare it with hp.* in build(hp)")
    training, searched = config["training"], {p.name for p in params}
    if training["augment"] or any(n.startswith("training.augment") for n in searched):
        fail("training.augment", f"not applied to a {HYPERMODEL}: put Keras' preprocessing "
                                 "layers (RandomFlip, ...) in build(hp), where they stay part "
                                 "of the model")
    if (training["weight_decay"] or "training.weight_decay" in searched) and (
            not OPTIMIZERS[training["optimizer"]].decoupled_decay
            or "training.optimizer" in searched):
        fail("training.weight_decay", f"L2 on the kernels of a {HYPERMODEL} is build(hp)'s to "
                                      "set (kernel_regularizer); or use optimizer: adamw, whose "
                                      "decoupled decay needs no layer")
    config["model"], config["hp"] = {"hypermodel": given["hypermodel"]}, {}


def _check_dataset(dataset: dict, fail: Fail) -> None:
    needs_path = DATASETS[dataset["name"]].source == "path"
    if needs_path and not dataset["path"]:
        fail("dataset.path", f"required for dataset {dataset['name']}")
    if not needs_path and dataset["path"]:
        fail("dataset.path", f"only folder and npz datasets take a path, not {dataset['name']}")


def _check_snapshots(training: dict, params: tuple[Param, ...], fail: Fail) -> None:
    snapshots = training["snapshots"]
    if snapshots is None:
        return
    epochs = [training["epochs"]]
    for p in params:
        if p.name == "training.epochs":
            epochs = list(p.values) if isinstance(p, ChoiceParam) else [p.low]
    if sorted(set(snapshots)) != snapshots:
        fail("training.snapshots", f"expected increasing epochs, got {snapshots}")
    if snapshots[-1] > min(epochs):
        fail(
            "training.snapshots",
            f"snapshot at epoch {snapshots[-1]} is past the last epoch ({min(epochs)})",
        )


def _check_training(training: dict, params: tuple[Param, ...], fail: Fail) -> None:
    """Settings that only mean something with another setting's fixed value."""
    searched = {p.name for p in params}
    if (training["momentum"] or "training.momentum" in searched) and (
            "training.optimizer" not in searched
            and not OPTIMIZERS[training["optimizer"]].momentum):
        takers = " and ".join(name for name, entry in OPTIMIZERS.items() if entry.momentum)
        fail("training.momentum", f"applies to the {takers} optimizers, not "
                                  f"{training['optimizer']}")
    if (training["decay"] or "training.decay" in searched) and not (
        "training.schedule" in searched or training["schedule"] == "inverse_time"
    ):
        fail("training.decay", "applies to schedule: inverse_time only")
