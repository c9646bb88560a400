"""How a stored study may change between runs: studies grow, they do not change meaning.

Allowed, and recorded on the study (its stored study file is replaced by the new one):
values added to or removed from an axis, a new axis (the trials done count as the points at
the old fixed value), an axis fixed to one of its values, ranges changed, more ``n_trials``,
more epochs (the trials done continue where they stopped), other snapshots. Refused, in one
line naming the field: anything else that changes what a trial means (the dataset, a fixed
model or training field, the objective, the sampler), fewer epochs, more epochs under a
cosine schedule (its shape depends on the total), more epochs of a halving study whose old
epochs are not a rung of its new ladder (its points done rest at that rung,
``halving.rest_grown``).

Optuna refuses a categorical parameter whose choices change ("CategoricalDistribution does
not support dynamic value space"). A stored categorical value is an index into its choices,
so sweep keeps each axis's choices append-only (every value the study ever had, in order of
first use, ``user_attrs[StudyKey.CHOICES]``) and, when an axis gains a value, rewrites the choices
of the study's earlier trials to the longer list: their indices stay right, and a stock
``optuna.load_study`` reads old and new trials alike.
"""

from __future__ import annotations

import copy
import dataclasses

import optuna
import sqlalchemy as sa
from optuna.distributions import CategoricalDistribution, distribution_to_json

from sweep.errors import StorageError
from sweep.records import StudyKey
from sweep.store.engine import safe_url
from sweep.store.tables import OPTUNA_PARAMS, OPTUNA_TRIALS
from sweep.study import ChoiceParam, StudySpec
from sweep.study.schema import SEARCHABLE, default_of
from sweep.study.space import RUN_FIELDS, described, flatten


def check(storage: optuna.storages.RDBStorage, stored: dict, spec: StudySpec) -> bool:
    """Whether ``spec`` changes the stored study (``stored``: its study file as stored);
    StorageError naming the field when the change is not one a study may make."""
    wanted = spec.as_dict()
    old_search, new_search = stored.get("search", {}), wanted["search"]
    axes = set(old_search.get("params", {})) | set(new_search["params"])
    old, new = _sections(stored), _sections(wanted)
    changed = old_search != new_search
    for field in sorted(set(old) | set(new)):
        before, after = old.get(field, default_of(field)), new.get(field, default_of(field))
        if before == after:
            continue
        changed = True
        if field in axes or field in RUN_FIELDS[1:]:
            continue
        if field == "training.epochs" and after > before and new.get(
                "training.schedule") != "cosine" and _rungs_kept(spec, before):
            continue
        raise StorageError(_refusal(storage, spec, field, before, after))
    for key in ("sampler", "pruner", "schedule"):
        if old_search.get(key, "none") != new_search.get(key, "none"):
            raise StorageError(_refusal(storage, spec, f"search.{key}", old_search.get(key),
                                        new_search.get(key)))
    if not spec.search.enumerates:
        _refuse_fewer_choices(storage, spec, old_search.get("params", {}))
    return changed


def grow(storage: optuna.storages.RDBStorage, study: optuna.Study, spec: StudySpec) -> None:
    """Record the grown study: the new study file, and each axis's choices extended (with
    the choices of the earlier trials rewritten, see the module docstring)."""
    before, choices = stored_choices(study), merged_choices(study, spec)
    study_id = storage.get_study_id_from_name(spec.name)
    with storage.engine.begin() as conn:  # (no Optuna call inside: it would wait on the lock)
        for name, values in choices.items():
            if values != before.get(name, values):
                json = distribution_to_json(CategoricalDistribution(values))
                conn.execute(OPTUNA_PARAMS.update().where(
                    OPTUNA_PARAMS.c.param_name == name,
                    OPTUNA_PARAMS.c.trial_id.in_(sa.select(OPTUNA_TRIALS.c.trial_id)
                                                 .where(OPTUNA_TRIALS.c.study_id == study_id)),
                ).values(distribution_json=json))
    study.set_user_attr(StudyKey.CHOICES, choices)
    study.set_user_attr(StudyKey.STUDY, spec.as_dict())


def stored_choices(study: optuna.Study) -> dict[str, list]:
    """Each categorical axis's Optuna choices as the study stores them; a study of sweep 0.1
    has none stored, and its choices were its axes' values."""
    if StudyKey.CHOICES in study.user_attrs:
        return study.user_attrs[StudyKey.CHOICES]
    params = study.user_attrs.get(StudyKey.STUDY, {}).get("search", {}).get("params", {})
    return {c.name: [c.encode(v) for v in c.values] for c in described(params)}


def merged_choices(study: optuna.Study | None, spec: StudySpec) -> dict[str, list]:
    """The stored choices with the spec's new values appended."""
    merged = copy.deepcopy(stored_choices(study)) if study is not None else {}
    for p in spec.search.params:
        if isinstance(p, ChoiceParam):
            have = merged.setdefault(p.name, [])
            have += [v for v in (p.encode(x) for x in p.values) if v not in have]
    return merged


def with_choices(spec: StudySpec, choices: dict[str, list]) -> StudySpec:
    """The spec whose categorical axes ask Optuna with the study's stored choices."""
    params = tuple(dataclasses.replace(p, choices=tuple(choices[p.name]))
                   if isinstance(p, ChoiceParam) and p.name in choices else p
                   for p in spec.search.params)
    return dataclasses.replace(spec, search=dataclasses.replace(spec.search, params=params))


def _rungs_kept(spec: StudySpec, epochs: int) -> bool:
    """Whether a halving study (``search.schedule``) may grow from ``epochs``: they are a
    rung of its new ladder (``min_epochs * factor**k``), where its points rest to be
    promoted. A study without one may."""
    halving = spec.search.schedule
    return halving is None or epochs in halving.rungs(spec.training.epochs)


def _sections(study_dict: dict) -> dict:
    """The dotted fields of a stored study file that say what a trial means (search apart)."""
    return flatten({k: v for k, v in study_dict.items() if k not in ("search", "name")})


def _refuse_fewer_choices(storage: optuna.storages.RDBStorage, spec: StudySpec,
                          stored_params: dict) -> None:
    """A random or tpe sampler draws from every choice Optuna has: a value cannot leave."""
    stored = {c.name: list(c.values) for c in described(stored_params)}
    for p in spec.search.params:
        before = stored.get(p.name, [])
        if isinstance(p, ChoiceParam) and not set(map(repr, before)) <= set(map(repr, p.values)):
            raise StorageError(
                f"{spec.source}: search.params.{p.name}: the {spec.search.sampler} sampler "
                f"draws from every value the study had ({before!r}); values can be added, "
                "not removed: give the study a new name")


def _refusal(storage: optuna.storages.RDBStorage, spec: StudySpec, field: str, before: object,
             after: object) -> str:
    how = (f"give the changed study a new name, or make it an axis (search.params.{field}: "
           f"[{before!r}, {after!r}]) so the trials done stay one of its points"
           if field in SEARCHABLE else "give the changed study a new name, or use another "
                                       "--storage")
    if field == "training.epochs":
        halving = spec.search.schedule
        rungs = "" if halving is None else (
            ", and a halving study grows only from epochs that are a rung of its new ladder "
            f"(min_epochs * factor**k: {halving.min_epochs}, "
            f"{halving.min_epochs * halving.factor}, {halving.min_epochs * halving.factor ** 2}"
            ", ...)")
        how = ("fewer epochs are not the trials done, a cosine schedule's shape depends on "
               f"the total{rungs}; give the changed study a new name")
    return (f"{spec.source}: {field}: study {spec.name!r} in {safe_url(storage.url)} was run "
            f"with {field} = {before!r}, now {after!r}: that changes what every trial means; "
            f"{how}")
