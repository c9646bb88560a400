"""Stage 1, the study: a YAML file read as data, overridden, validated, and its search space.

Imports no Keras and no Optuna.
"""

from sweep.study.load import find_study, load_study, validate
from sweep.study.schema import METRICS, SCHEMA, SEARCHABLE, file_name
from sweep.study.space import ChoiceParam, Param, RangeParam, grid_points, point_text, resolve
from sweep.study.spec import SearchSpec, StudySpec
from sweep.study.training import TrainingConfig

__all__ = [
    "METRICS", "SCHEMA", "SEARCHABLE", "ChoiceParam", "Param", "RangeParam", "SearchSpec",
    "StudySpec", "TrainingConfig", "file_name", "find_study", "grid_points", "load_study",
    "point_text", "resolve", "validate",
]
