"""Benchmark: successive halving in sweep against the full grid and two peers, whole processes.

Every side is a fresh Python process, timed from start to exit, searching the same grid of 27
points with the same images (one ``.npz`` made beforehand, as ``bench_whole`` makes it: the
CIFAR-10 sample folder beside the repository, else digits), the same model and the same epoch
budget E (9 unless ``--epochs``): the seed notebooks' first CIFAR-10 model (conv 32-64-64, 3x3,
2x2 max pooling after the first two, dropout after each conv block and the dense layer; Adam,
batch 32, the last 10 % of the shuffled training images held out for validation), over
learning rate (0.003, 0.001, 0.0003) x dropout (0, 0.25, 0.5) x dense units (32, 64, 128),
objective ``val_accuracy`` after a point's last epoch (maximized). The sides:

- **sweep full grid**: ``sweep run study.yaml --workers 2``, every point trained E epochs (and,
  as sweep does, a test evaluation after the last one, its HTML report written);
- **sweep halving**: the same study with ``search.schedule: {kind: halving, min_epochs: 1,
  factor: 3}`` (rungs 1, 3, 9: the best third of each rung goes on from its checkpoint);
- **KerasTuner Hyperband**: ``keras_tuner.Hyperband(max_epochs=E, factor=3,
  hyperband_iterations=1)``, a hand-written script; it draws its points at random from the
  grid (not every point is tried) and scores a trial by its last epoch here, as the others;
- **Optuna HyperbandPruner**: ``GridSampler`` over the grid, ``HyperbandPruner(min_resource=1,
  max_resource=E, reduction_factor=3)``, SQLite storage; the objective reports ``val_accuracy``
  after each epoch and stops where the pruner says.

How to read the table: "epochs trained" counts each epoch once (a promotion that continues
from a checkpoint counts only its new epochs); "share of full" is that against every point
trained E epochs. "best val_acc" and "its point" are each side's answer (its best trial that
finished, by its own value), and the last columns look that point up in the full grid: its
value there, and whether it is the full grid's best or within its noise. The noise is ``sd``,
the residual standard deviation of the full grid's values about an additive fit of the three
knobs (``sweep.report.effects``); a point is within noise when the full grid's best exceeds its
value there by at most 1.96 * sqrt(2) * sd (the difference of two values each with that noise,
at 95 %). The last line gives sweep halving's wall time as a multiple of each other side's.

``make bench-halving`` (``python benchmarks/bench_halving.py [--epochs E] [--data PATH]
[--sides full|halving|keras_tuner|optuna ...] [--quick]``); ``--quick`` is a smoke test only:
digits, 8 points, 3 epochs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_whole import SAMPLE, make_npz  # noqa: E402
from sweep.defaults import ONEDNN_ENV  # noqa: E402
from sweep.study.schedule import Halving  # noqa: E402

LR, DROPOUT, DENSE = "training.learning_rate", "model.dropout", "model.dense"
AXES = (LR, DROPOUT, DENSE)
GRIDS = {  # the search space: each axis's values, as the study file writes them
    "full": {LR: [0.003, 0.001, 0.0003], DROPOUT: [0.0, 0.25, 0.5], DENSE: [[32], [64], [128]]},
    "quick": {LR: [0.003, 0.001], DROPOUT: [0.0, 0.25], DENSE: [[32], [64]]},
}
SIDES = {  # --sides name -> the table's name
    "full": "sweep full grid", "halving": "sweep halving",
    "keras_tuner": "KerasTuner Hyperband", "optuna": "Optuna HyperbandPruner",
}
Point = tuple[float, float, int]  # learning rate, dropout, dense units

# What both hand-written sides share: the data as a user prepares it, the model, the answer.
COMMON = """
import json, sys
import numpy as np
import keras
from keras import layers

cfg = json.load(open(sys.argv[1]))
with np.load(cfg["npz"]) as f:
    x, y = f["x_train"] / 255.0, f["y_train"]
    classes = int(max(y.max(), f["y_test"].max())) + 1
order = np.random.default_rng(0).permutation(len(x))  # validation_split takes the last 10%
x, y = x[order], y[order]

def model_for(learning_rate, dropout, units):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=x.shape[1:]),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2), layers.Dropout(dropout),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2), layers.Dropout(dropout),
        layers.Conv2D(64, 3, activation="relu"), layers.Dropout(dropout),
        layers.Flatten(), layers.Dense(units, activation="relu"), layers.Dropout(dropout),
        layers.Dense(classes, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model

def answer(epochs, best, value):  # the last line of stdout, read by bench_halving.py
    print(json.dumps({"epochs": int(epochs), "best": best, "value": float(value)}))
"""

PEERS = {
    "keras_tuner": """
import keras_tuner

class Grid(keras_tuner.HyperModel):
    def build(self, hp):
        return model_for(hp.Choice("lr", cfg["rates"]), hp.Choice("dropout", cfg["dropouts"]),
                         hp.Choice("dense", cfg["units"]))

    def fit(self, hp, model, *args, **kwargs):  # Hyperband gives epochs and initial_epoch
        history = model.fit(*args, **kwargs)
        return history.history["val_accuracy"][-1]  # the last epoch's, as the other sides

tuner = keras_tuner.Hyperband(Grid(), objective="val_accuracy", max_epochs=cfg["epochs"],
                              factor=cfg["factor"], hyperband_iterations=1, seed=0,
                              directory=cfg["tmp"], project_name="kt", overwrite=True)
tuner.search(x, y, validation_split=0.1, batch_size=32, verbose=0)
done = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
epochs = sum(t.hyperparameters.values["tuner/epochs"]
             - t.hyperparameters.values["tuner/initial_epoch"] for t in done)
best = tuner.oracle.get_best_trials(1)[0]
answer(epochs, {k: best.hyperparameters.values[k] for k in ("lr", "dropout", "dense")},
       best.score)
""",
    "optuna": """
import optuna

class Report(keras.callbacks.Callback):
    def __init__(self, trial):
        super().__init__()
        self.trial = trial

    def on_epoch_end(self, epoch, logs=None):
        self.trial.report(logs["val_accuracy"], epoch + 1)  # step: the epochs trained
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")

def objective(trial):
    model = model_for(trial.suggest_categorical("lr", cfg["rates"]),
                      trial.suggest_categorical("dropout", cfg["dropouts"]),
                      trial.suggest_categorical("dense", cfg["units"]))
    history = model.fit(x, y, validation_split=0.1, epochs=cfg["epochs"], batch_size=32,
                        verbose=0, callbacks=[Report(trial)])
    return history.history["val_accuracy"][-1]

optuna.logging.set_verbosity(optuna.logging.WARNING)
space = {"lr": cfg["rates"], "dropout": cfg["dropouts"], "dense": cfg["units"]}
pruner = optuna.pruners.HyperbandPruner(min_resource=cfg["min_epochs"],
                                        max_resource=cfg["epochs"],
                                        reduction_factor=cfg["factor"])
# a fixed name: HyperbandPruner puts each trial in a bracket by a hash of it and the number
study = optuna.create_study(study_name="bench_halving", direction="maximize", pruner=pruner,
                            sampler=optuna.samplers.GridSampler(space, seed=0),
                            storage=f"sqlite:///{cfg['tmp']}/optuna.db")
study.optimize(objective)
answer(sum(len(t.intermediate_values) for t in study.trials), study.best_trial.params,
       study.best_value)
""",
}


@dataclass
class Outcome:
    """One side's run: its wall ``seconds``, the ``epochs`` it trained in all, its ``best``
    point and that point's ``value``; ``values``: every point's value (the full grid only)."""

    seconds: float
    epochs: int
    best: Point
    value: float
    values: dict[Point, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Bench:
    """What every side of one run shares: its folder, the images, the grid, the epochs per
    point (the top rung) and the halving schedule."""

    tmp: Path
    npz: Path
    grid: dict[str, list]
    epochs: int
    halving: Halving

    @property
    def points(self) -> int:
        return math.prod(len(v) for v in self.grid.values())

    @property
    def rungs(self) -> tuple[int, ...]:
        return self.halving.rungs(self.epochs)


def point_of(params: dict) -> Point:
    """A trial's point, from sweep's params (the dense units stored as JSON text) or from a
    hand-written side's (``lr``, ``dropout``, ``dense``)."""
    if "lr" in params:
        return float(params["lr"]), float(params["dropout"]), int(params["dense"])
    return float(params[LR]), float(params[DROPOUT]), int(json.loads(params[DENSE])[0])


def label(point: Point) -> str:
    lr, dropout, units = point
    return f"lr={lr:g} dropout={dropout:g} dense=[{units}]"


def study_file(bench: Bench, name: str, halving: bool) -> Path:
    """The study for sweep: the grid, the schedule where ``halving``."""
    import yaml

    search: dict = {"sampler": "grid", "params": bench.grid}
    if halving:
        search["schedule"] = bench.halving.as_dict()
    study = {
        "name": name, "description": "bench_halving.py",
        "dataset": {"name": "npz", "path": str(bench.npz), "validation_split": 0.1},
        "model": {"filters": [32, 64, 64], "kernel": 3, "pooling": "max", "dense": [64]},
        "training": {"optimizer": "adam", "batch_size": 32, "epochs": bench.epochs},
        "search": search,
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
    }
    path = bench.tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def run_process(side: str, command: list[str], cwd: Path) -> tuple[float, str]:
    """Wall seconds of one side's whole process, and its stdout; SystemExit if it fails."""
    env = {k: v for k, v in os.environ.items() if k != ONEDNN_ENV} | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bench_halving: {SIDES[side]} failed:\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def run_sweep(side: str, bench: Bench, run_dir: Path) -> Outcome:
    """``sweep run`` of the study, with the schedule for ``halving``; read back from SQLite."""
    name = f"bench_{side}"
    study = study_file(bench, name, halving=side == "halving")
    storage = f"sqlite:///{run_dir}/sweeps.db"
    sweep = Path(sys.executable).with_name("sweep")
    seconds, _ = run_process(side, [str(sweep), "run", str(study), "--storage", storage,
                                    "--workers", "2", "--progress", "plain"], run_dir)
    return read_sweep(seconds, name, storage)


def read_sweep(seconds: float, name: str, storage: str) -> Outcome:
    """A sweep study's outcome: the epochs of each point's last trial (a promotion carries
    the earlier epochs' values, so each epoch counts once), its best complete trial, and the
    value of each point whose last trial completed."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    trials = optuna.load_study(study_name=name, storage=storage).trials
    last = {point_of(t.params): t for t in sorted(trials, key=lambda t: t.number)
            if t.state in states}
    epochs = sum(max(t.intermediate_values, default=0) for t in last.values())
    values = {p: float(t.value) for p, t in last.items()
              if t.state == optuna.trial.TrialState.COMPLETE}
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise SystemExit(f"bench_halving: study {name} has no complete trial")
    best = max(complete, key=lambda t: float(t.value))
    return Outcome(seconds, epochs, point_of(best.params), float(best.value), values)


def run_peer(side: str, bench: Bench, run_dir: Path) -> Outcome:
    """A hand-written side's script, its answer read from the last line of its stdout."""
    rates, dropouts = bench.grid[LR], bench.grid[DROPOUT]
    cfg = {"npz": str(bench.npz), "rates": rates, "dropouts": dropouts,
           "units": [units for units, in bench.grid[DENSE]], "epochs": bench.epochs,
           "min_epochs": bench.halving.min_epochs, "factor": bench.halving.factor,
           "tmp": str(run_dir)}
    script = run_dir / f"side_{side}.py"  # not keras_tuner.py: it would shadow the package
    script.write_text(textwrap.dedent(COMMON) + textwrap.dedent(PEERS[side]))
    (run_dir / "cfg.json").write_text(json.dumps(cfg))
    seconds, stdout = run_process(side, [sys.executable, str(script),
                                         str(run_dir / "cfg.json")], run_dir)
    said = json.loads(stdout.strip().splitlines()[-1])
    return Outcome(seconds, said["epochs"], point_of(said["best"]), said["value"])


def run_side(side: str, bench: Bench) -> Outcome:
    run_dir = bench.tmp / side
    run_dir.mkdir()
    if side in ("full", "halving"):
        return run_sweep(side, bench, run_dir)
    return run_peer(side, bench, run_dir)


def noise(values: dict[Point, float]) -> float:
    """The residual standard deviation of the full grid's values about an additive fit of
    the three knobs (``sweep.report.effects``; NaN where no fit is possible)."""
    import pandas as pd

    from sweep.report.effects import effects

    rows = pd.DataFrame([{LR: lr, DROPOUT: dropout, DENSE: json.dumps([units]), "value": v}
                         for (lr, dropout, units), v in values.items()])
    verdicts = effects(rows, AXES, "value", "maximize").verdicts
    return float(verdicts["sd"].iloc[0]) if len(verdicts) else float("nan")


def verdict(point: Point, full: Outcome | None, margin: float) -> tuple[str, str]:
    """The full grid's value of ``point`` and whether it is the full grid's best or within
    ``margin`` of it (its noise)."""
    if full is None or point not in full.values:
        return "-", "-"
    value, top = full.values[point], max(full.values.values())
    below = top - value
    if point == full.best or below <= 0:
        return f"{value:.4f}", "the full grid's best"
    within = "within noise" if below <= margin else "beyond noise"
    return f"{value:.4f}", f"{below:.4f} below the best: {within}"


def table(bench: Bench, outcomes: dict[str, Outcome]) -> None:
    """The table of the sides, the noise and the wall-time ratios."""
    full = outcomes.get("full")
    sd = noise(full.values) if full else float("nan")
    margin = 1.96 * math.sqrt(2) * sd
    budget = bench.points * bench.epochs
    print(f"{'side':<24}{'wall s':>8}{'epochs trained':>16}{'share of full':>15}"
          f"{'best val_acc':>14}  {'its point':<34}{'full grid value':>16}  verdict")
    for side, o in outcomes.items():
        value, said = verdict(o.best, full, margin)
        print(f"{SIDES[side]:<24}{o.seconds:8.1f}{o.epochs:16d}{o.epochs / budget:14.0%} "
              f"{o.value:14.4f}  {label(o.best):<34}{value:>16}  {said}")
    if full:
        print(f"noise: sd {sd:.4f} (the full grid's residual about an additive fit of "
              f"learning rate, dropout and dense); within noise: at most 1.96 * sqrt(2) * sd "
              f"= {margin:.4f} below the full grid's best, {full.value:.4f} at {label(full.best)}")
    if "halving" in outcomes:
        halving = outcomes["halving"].seconds
        ratios = [f"x{halving / o.seconds:.2f} of {SIDES[s]}"
                  for s, o in outcomes.items() if s != "halving"]
        print("wall time: sweep halving took " + (", ".join(ratios) or "-"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/bench_halving.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="epochs per point, the top rung (default: "
                                                   "9; 3 with --quick)")
    parser.add_argument("--data", help=f"an image folder (default: {SAMPLE} if present, "
                                       "else digits; digits with --quick)")
    parser.add_argument("--sides", action="append", choices=list(SIDES),
                        help="repeatable (default: every side)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: digits, 8 points, 3 epochs")
    args = parser.parse_args(argv)
    epochs = args.epochs or (3 if args.quick else 9)
    with tempfile.TemporaryDirectory(prefix="sweep-bench-halving-") as tmp:
        npz = Path(tmp) / "images.npz"
        # make_npz reads digits for a path that is no folder
        data = args.data or (str(Path(tmp) / "digits") if args.quick else None)
        what = make_npz(data, npz)
        bench = Bench(Path(tmp), npz, GRIDS["quick" if args.quick else "full"],
                      epochs, Halving(min_epochs=1, factor=3))
        rungs = ", ".join(map(str, bench.rungs))
        print(f"bench_halving: {what}; {os.cpu_count()} cores; {bench.points} points x "
              f"{epochs} epochs (halving's rungs at {rungs} epochs)", flush=True)
        sides = [s for s in SIDES if s in (args.sides or SIDES)]
        table(bench, {side: run_side(side, bench) for side in sides})
    return 0


if __name__ == "__main__":
    sys.exit(main())
