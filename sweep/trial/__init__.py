"""Stage 5, the trial: the glue that knows both Optuna and Keras. ``run_trial`` takes an
Optuna trial (any, ``optuna.trial.FixedTrial`` included) and a point of the space, trains it
and records the result on the trial; ``sampling`` asks Optuna for the point's values.

The names below load their module on first use (``objective`` loads Keras).
"""

from sweep._lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "run_trial": "sweep.trial.objective",
    "TrialHooks": "sweep.trial.objective",
    "provenance": "sweep.trial.provenance",
    "suggest": "sweep.trial.sampling",
    "make_sampler": "sweep.trial.sampling",
    "make_pruner": "sweep.trial.sampling",
})
