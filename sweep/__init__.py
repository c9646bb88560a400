"""sweep: hyperparameter sweeps for small Keras image classifiers.

In a notebook or script::

    import sweep
    frame = sweep.load_results("quickstart", "sqlite:///sweeps.db")
    sweep.plot_grouped(frame, by="model.kernel").show()

Importing ``sweep`` stays light: Optuna, plotly and Keras load when a function is called.
"""

from __future__ import annotations

DEFAULT_STORAGE = "sqlite:///sweeps.db"


def load_results(name: str, storage: str = DEFAULT_STORAGE):
    """The frame the report's grouped plots are drawn from (what ``sweep export`` writes):
    one row per completed trial and snapshot epoch, with ``trial``, the swept params (dotted
    names), ``epoch``, train/val/test loss and accuracy, ``param_count`` and ``value``.

    For the per-epoch curves and the trials table (with each trial's state: complete, pruned,
    failed), use ``sweep.report.load_results``, which returns all three frames.
    """
    from sweep.report import load_results as load

    return load(name, storage).snapshots


def plot_grouped(frame, by: str):
    """The report's grouped figure for ``frame`` (from ``load_results``): box plots of train
    accuracy, test accuracy and test loss per value of the column ``by`` (a swept param such
    as ``"model.kernel"``, or ``"epoch"``). Returns a ``plotly.graph_objects.Figure``."""
    from sweep.report import grouped_figure

    return grouped_figure(frame, by)
