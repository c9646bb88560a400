"""sweep: hyperparameter sweeps for small Keras image classifiers.

In a notebook or script::

    import sweep
    frame = sweep.load_results("quickstart", "sqlite:///sweeps.db")
    sweep.plot_grouped(frame, by="model.kernel").show()

Importing ``sweep`` stays light: Optuna, plotly and Keras load when a function is called.
The pipeline's stages are the subpackages, each importing only earlier ones: ``study``,
``data``, ``models``, ``training``, ``trial``, ``store``, ``run``, ``launch``, ``report``.
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import TYPE_CHECKING

from sweep.defaults import DEFAULT_STORAGE
from sweep.errors import ConfigError, DataError, SpecError, StorageError, SweepError, TrialFailed

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from sweep.report.frames import StudyResult

__all__ = ["ConfigError", "DataError", "SpecError", "StorageError", "SweepError", "TrialFailed",
           "load_results", "load_study_result", "plot_grouped", "versions"]


def load_results(name: str, storage: str = DEFAULT_STORAGE) -> pd.DataFrame:
    """The frame the report's grouped plots are drawn from (what ``sweep export`` writes):
    one row per completed trial and snapshot epoch, with ``trial``, the swept params (dotted
    names), ``epoch``, train/val/test loss and accuracy, ``param_count`` and ``value``.

    For the per-epoch curves and the trials table (with each trial's state: complete, pruned,
    failed), use ``load_study_result``, which returns all the frames.
    """
    return load_study_result(name, storage).snapshots


def load_study_result(name: str, storage: str = DEFAULT_STORAGE) -> StudyResult:
    """Every frame of a study's results (``sweep.report.StudyResult``): ``snapshots``,
    ``curves`` (every epoch of every trial), ``trials``, ``per_class``, ``pareto``..."""
    from sweep.report.frames import load_study_result as load

    return load(name, storage)


def plot_grouped(frame: pd.DataFrame, by: str) -> go.Figure:
    """The report's grouped figure for ``frame`` (from ``load_results``): box plots of train
    accuracy, test accuracy and test loss per value of the column ``by`` (a swept param such
    as ``"model.kernel"``: one point per trial, at its last snapshot; or ``"epoch"``: one per
    trial and snapshot epoch). Returns a ``plotly.graph_objects.Figure``."""
    from sweep.report.figures import grouped_figure

    return grouped_figure(frame, by)


def versions() -> str:
    """sweep's version and its frameworks', from the installed packages' metadata: nothing is
    imported, so ``--version`` answers at once even where TensorFlow takes seconds to load."""

    def version(*dists: str) -> str:
        for dist in dists:
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
        return "not installed"

    return (f"sweep {version('sweep')} (Keras {version('keras')}, TensorFlow "
            f"{version('tensorflow', 'tensorflow-cpu')}, Optuna {version('optuna')}, "
            f"Python {platform.python_version()})")
