"""The keys of what sweep stores in Optuna's user attributes, declared once.

Every module that writes or reads one of these attributes names it here, so a key cannot be
misspelt in one place, and a reader finds every attribute of a stored trial in one list.
A module at the package's root: the trial stage writes most of them, and storage, the
run and the report read them.
"""

from __future__ import annotations


class StudyKey:
    """User attributes of a study."""

    STUDY = "study"  # the resolved study file (StudySpec.as_dict), as last grown
    DESCRIPTION = "description"  # the study file's description
    CLASS_NAMES = "class_names"  # the dataset's class names, for the report
    CHOICES = "choices"  # {param: every value it ever had, in stored form} (store/growth.py)


class TrialKey:
    """User attributes of a trial."""

    CONFIG = "config"  # the trial's dataset/model/training sections, its values set in
    SEED = "seed"  # the trial's seed (a searched seed, or the study's)
    PROVENANCE = "provenance"  # package and framework versions, device, the study
    RECEPTIVE_FIELD = "receptive_field"  # of the last conv layer, in input pixels
    LAYERS = "layers"  # the layer table (sweep.models.Architecture.rows)
    PARAM_COUNT = "param_count"
    REUSED_STEP = "reused_step"  # trained through an earlier trial's compiled step
    FUSED = "fused"  # trained in a fused program of this many members (sweep.trial.fused)
    RESUMED_FROM_EPOCH = "resumed_from_epoch"  # a checkpoint's last epoch
    CONTINUED_FROM_TRIAL = "continued_from_trial"  # the study's epochs grew: this continues it
    SUPERSEDED_BY = "superseded_by_trial"  # on the trial continued, once its continuation is done
    # seconds of training of all the trial's epochs, those it resumed or continued included
    TRAIN_SECONDS = "train_seconds"
    SNAPSHOTS = "snapshots"  # the epoch rows with test metrics
    OVERFITTING = "overfitting"  # sweep.training.diagnostics.overfitting
    STOPPED_EPOCH = "stopped_epoch"  # training.stop_at_loss was reached here
    DIAGNOSTICS = "diagnostics"  # {snapshot epoch: per-class accuracy, confusion, dead units}
    OBJECTIVE_EPOCH = "objective_epoch"  # the epoch the objective's value comes from
    FAIL_REASON = "fail_reason"  # why a failed trial failed (one line)
    INTERRUPTED = "interrupted"  # stopped by Ctrl-C or a crash; its point runs again
    DIED = "died"  # why its worker was given up (another worker took the point over)
    # search.schedule: the rung its trial ended at, {"rung": k, "of": n, "epochs": e} (a
    # trial below the top rung is PRUNED there; a promotion continues it in a new trial)
    RUNG = "rung"
