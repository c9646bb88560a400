"""``sweep status``: what a study holds right now, as text."""

from __future__ import annotations

import time
from collections import Counter

from optuna.trial import TrialState

from sweep import claims, storage
from sweep.space import described, grid_points


def study_status(name: str, storage_url: str) -> str:
    """Trial counts by state, the best trial, what each worker is doing (its trial, the last
    epoch stored, its heartbeat), and failures with reasons."""
    store = storage.open_storage(storage_url, create=False)
    study = storage.load_study(store, name)
    trials = study.get_trials(deepcopy=False)
    stored = study.user_attrs.get("study", {})
    metrics = storage.stored_metrics(study)
    params = stored.get("search", {}).get("params", {})
    planned = stored.get("search", {}).get("n_trials") or len(grid_points(described(params)))
    counts = Counter(t.state.name.lower() for t in trials)
    lines = [
        f"study {name} in {storage.safe_url(storage_url)}: {planned} planned; "
        + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    ]
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    if completed and len(study.directions) > 1:
        front = sorted(t.number for t in study.best_trials)
        lines.append(f"Pareto front of {' vs '.join(metrics)}: trials {front}")
    elif completed:
        best = study.best_trial
        lines.append(f"best {metrics[0]} {best.value:.4f}: trial {best.number} {best.params}")
    epochs = storage.epochs_frame(store, name)
    last_epoch = epochs.groupby("trial_number")["epoch"].max().to_dict() if len(epochs) else {}
    by_id = {t._trial_id: t for t in trials}  # claims record Optuna's trial id
    now = time.time()
    for claim in claims.running(store.engine, name):
        t = by_id.get(claim.trial_id)
        if t is None:
            lines.append(f"worker {claim.worker}: starting a trial")
            continue
        total_epochs = t.user_attrs.get("config", {}).get("training", {}).get("epochs", "?")
        lines.append(
            f"worker {claim.worker}: trial {t.number} {t.params} epoch "
            f"{last_epoch.get(t.number, 0)}/{total_epochs} "
            f"(heartbeat {now - claim.heartbeat:.0f}s ago)"
        )
    for t in trials:
        if t.state == TrialState.FAIL:
            reason = t.user_attrs.get("fail_reason") or t.user_attrs.get("died") or (
                "interrupted" if t.user_attrs.get("interrupted") else "unknown"
            )
            lines.append(f"failed: trial {t.number} {t.params}: {reason}")
    return "\n".join(lines)
