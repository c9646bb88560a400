"""What a worker tells its user: one line per epoch while training, one line at the end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TextIO

import optuna

from sweep.study import StudySpec


@dataclass
class SweepResult:
    """What a ``run_sweep`` call did: trials ``ran`` now (``failed`` and ``pruned`` of them;
    ``lost``: given up because another worker took the point over), ``skipped`` as already
    done, out of ``total``; the best value and trial number among the study's complete
    trials so far, or (multi-objective) how many trials are on the Pareto front."""

    total: int
    ran: int = 0
    failed: int = 0
    pruned: int = 0
    lost: int = 0
    skipped: int = 0
    best_value: float | None = None
    best_trial: int | None = None
    pareto: int | None = None

    def best_text(self, spec: StudySpec) -> str | None:
        """The best so far in words, or None before any trial completed."""
        if self.pareto:
            return f"{self.pareto} trial(s) on the Pareto front of {' vs '.join(spec.metrics)}"
        if self.best_value is not None:
            return f"best {spec.metric} {self.best_value:.4f} (trial {self.best_trial})"
        return None

    def summary(self, spec: StudySpec) -> str:
        """The line printed when the worker is done."""
        extra = "".join(f", {n} {what}" for n, what in ((self.pruned, "pruned"),
                                                        (self.lost, "lost")) if n)
        return (f"[{spec.name}] {self.total} points: {self.ran} run now ({self.failed} failed"
                f"{extra}), {self.skipped} already done; "
                f"{self.best_text(spec) or 'no completed trial'}")

    def update_best(self, study: optuna.Study) -> None:
        """Read the best so far from the study (Optuna's best: complete trials only)."""
        if len(study.directions) > 1:
            self.pareto = len(study.best_trials)
            return
        try:
            best = study.best_trial
        except ValueError:  # no completed trial yet
            return
        self.best_value, self.best_trial = best.value, best.number


def epoch_printer(spec: StudySpec, number: int, values: dict, position: int,
                  result: SweepResult, out: TextIO) -> Callable[[dict], None]:
    """The per-epoch progress line of trial ``number``, the ``position``-th of the study."""
    point = " ".join(f"{k.split('.')[-1]}={v}" for k, v in values.items())
    epochs = values.get("training.epochs", spec.config["training"]["epochs"])

    def on_epoch(row: dict) -> None:
        best = f" | {result.best_text(spec)}" if result.best_text(spec) else ""
        test = f" test_accuracy {row['test_accuracy']:.4f}" if "test_accuracy" in row else ""
        print(
            f"[{spec.name}] trial {position}/{result.total} #{number} {point} "
            f"epoch {row['epoch']}/{epochs} loss {row['train_loss']:.4f} "
            f"val_accuracy {row['val_accuracy']:.4f}{test} ({row['seconds']:.1f}s){best}",
            file=out,
            flush=True,
        )

    return on_epoch
