"""Benchmark: a sweep as a user runs it, against the same trainings by hand, whole processes.

Every side is a fresh Python process, timed from start to exit, training the same models on
the same images: the seed notebooks' first CIFAR-10 model (conv 32-64-64, 3x3, 2x2 pooling
after the first two, dense 64; Adam, batch 32, 10% of the training images held out for
validation, a test evaluation after the last epoch) at each point of a grid over pooling and
learning rate. The sides:

- **sweep**: ``sweep run study.yaml`` with its defaults, into a new SQLite file, its HTML
  report included (what a user types; ``sweep run --workers 1`` is timed too);
- **plain loop**: a hand-written script training the points one after another;
- **KerasTuner**: ``GridSearch`` over the same grid (``fit`` also evaluates the test set);
- **Optuna**: ``GridSampler`` and SQLite storage, the objective written by hand;
- **plain oneDNN**: the plain loop with TensorFlow's oneDNN kernels on, as sweep runs them
  (not counted as "by hand": it shows what of sweep's lead is those kernels).

Both sides read the images from one ``.npz`` file made beforehand (from the CIFAR-10 sample
folder beside the repository, else digits), so no side pays for decoding JPEGs.

``make bench-whole`` (``python benchmarks/bench_whole.py [--scenario grid4|n1|n12]
[--epochs E] [--data PATH]``) prints each scenario's seconds and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sweep.defaults import ONEDNN_ENV  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cifar10-sample"
RATES = [1e-3, 3e-3, 5e-4, 2e-3, 7e-4, 1.5e-3]
SCENARIOS = {  # name -> (pooling values, learning rates, sides)
    "n1": (["max"], RATES[:1], ("sweep", "plain", "plain oneDNN")),
    "grid4": (["max", "avg"], RATES[:2], ("sweep", "sweep --workers 1", "plain", "keras_tuner",
                                          "optuna", "plain oneDNN")),
    "n12": (["max", "avg"], RATES, ("sweep", "sweep --workers 1", "plain", "plain oneDNN")),
}
# The hand-written sides run with TensorFlow's defaults; "plain oneDNN" is the plain loop with
# the oneDNN kernels that sweep turns on (sweep.defaults.set_framework_env), to show what of
# sweep's lead is those kernels and what is the rest. It is not "by hand" in the ratios.

# What every hand-written side shares: the data as a user prepares it, and the model.
COMMON = """
import json, sys, time
import numpy as np
import keras
from keras import layers

cfg = json.load(open(sys.argv[1]))
with np.load(cfg["npz"]) as f:
    x, y, xt, yt = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
x, xt = x / 255.0, xt / 255.0
order = np.random.default_rng(0).permutation(len(x))  # validation_split takes the last 10%
x, y = x[order], y[order]
classes = int(max(y.max(), yt.max())) + 1

def model_for(pooling, learning_rate):
    keras.utils.set_random_seed(0)
    pool = layers.MaxPooling2D if pooling == "max" else layers.AveragePooling2D
    model = keras.Sequential([
        keras.Input(shape=x.shape[1:]),
        layers.Conv2D(32, 3, activation="relu"), pool(2),
        layers.Conv2D(64, 3, activation="relu"), pool(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.Flatten(), layers.Dense(64, activation="relu"),
        layers.Dense(classes, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model

def fit(model):
    history = model.fit(x, y, validation_split=0.1, epochs=cfg["epochs"], batch_size=32,
                        verbose=0)
    model.evaluate(xt, yt, verbose=0)
    return history
"""

SIDES = {
    "plain": """
for pooling in cfg["pooling"]:
    for rate in cfg["rates"]:
        fit(model_for(pooling, rate))
""",
    "keras_tuner": """
import keras_tuner

class Grid(keras_tuner.HyperModel):
    def build(self, hp):
        return model_for(hp.Choice("pooling", cfg["pooling"]), hp.Choice("lr", cfg["rates"]))

    def fit(self, hp, model, *args, **kwargs):
        return fit(model)

tuner = keras_tuner.GridSearch(Grid(), objective="val_accuracy",
                               max_trials=len(cfg["pooling"]) * len(cfg["rates"]),
                               directory=cfg["tmp"], project_name="kt", overwrite=True)
tuner.search()
""",
    "optuna": """
import optuna

def objective(trial):
    model = model_for(trial.suggest_categorical("pooling", cfg["pooling"]),
                      trial.suggest_categorical("lr", cfg["rates"]))
    return fit(model).history["val_accuracy"][-1]

optuna.logging.set_verbosity(optuna.logging.WARNING)
space = {"pooling": cfg["pooling"], "lr": cfg["rates"]}
study = optuna.create_study(sampler=optuna.samplers.GridSampler(space), direction="maximize",
                            storage=f"sqlite:///{cfg['tmp']}/optuna.db")
study.optimize(objective)
""",
}


def make_npz(data: str | None, path: Path) -> str:
    """The bench's images as one .npz (uint8, as downloaded); returns what they are."""
    from sweep.data import load_raw

    folder = Path(data) if data else SAMPLE
    if folder.is_dir():
        raw = load_raw({"name": "folder", "path": str(folder)})
        what = f"CIFAR-10 sample folder {folder}"
    else:
        raw = load_raw({"name": "digits"})
        raw = tuple((a * 255).astype("uint8")[..., None] if a.ndim == 3 else a for a in raw)
        what = "digits"
    x_train, y_train, x_test, y_test = raw
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return f"{what}: train {x_train.shape}, test {x_test.shape}"


def study_file(tmp: Path, npz: Path, pooling: list, rates: list, epochs: int) -> Path:
    import yaml

    study = {
        "name": "bench_whole", "description": "bench_whole.py",
        "dataset": {"name": "npz", "path": str(npz), "validation_split": 0.1},
        "model": {"filters": [32, 64, 64], "kernel": 3, "dense": [64]},
        "training": {"optimizer": "adam", "batch_size": 32, "epochs": epochs},
        "search": {"sampler": "grid", "params": {"model.pooling": pooling,
                                                  "training.learning_rate": rates}},
        "objective": {"metric": "val_accuracy"},
    }
    path = tmp / "bench_whole.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def time_side(side: str, tmp: Path, cfg: dict, study: Path) -> float:
    """Wall seconds of one side's whole process."""
    env = {k: v for k, v in os.environ.items() if k != ONEDNN_ENV} | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    if side == "plain oneDNN":
        env[ONEDNN_ENV] = "1"
    run_dir = tmp / side.replace(" ", "_")
    run_dir.mkdir()
    if side.startswith("sweep"):
        sweep = Path(sys.executable).with_name("sweep")
        command = [str(sweep), "run", str(study), "--storage", f"sqlite:///{run_dir}/sweeps.db",
                   "--progress", "plain", *side.split()[1:]]
    else:
        kind = side.split()[0]  # "plain oneDNN" runs the plain script
        script = run_dir / f"side_{kind}.py"  # not keras_tuner.py: it would shadow the package
        script.write_text(textwrap.dedent(COMMON) + textwrap.dedent(SIDES[kind]))
        (run_dir / "cfg.json").write_text(json.dumps(cfg | {"tmp": str(run_dir)}))
        command = [sys.executable, str(script), str(run_dir / "cfg.json")]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=run_dir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bench_whole: {side} failed:\n{done.stderr[-3000:]}")
    return seconds


def run_scenario(name: str, tmp: Path, npz: Path, epochs: int) -> dict[str, float]:
    pooling, rates, sides = SCENARIOS[name]
    cfg = {"npz": str(npz), "pooling": pooling, "rates": rates, "epochs": epochs}
    scenario = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmp))  # a scenario may repeat
    study = study_file(scenario, npz, pooling, rates, epochs)
    times = {side: time_side(side, scenario, cfg, study) for side in sides}
    points = len(pooling) * len(rates)
    by_hand = {k: v for k, v in times.items() if not k.startswith(("sweep", "plain oneDNN"))}
    fastest = min(by_hand, key=by_hand.get)
    print(f"\n{name}: {points} point(s) x {epochs} epoch(s), whole processes (seconds)")
    for side, seconds in times.items():
        line = f"  {side:<18} {seconds:7.1f}   x{seconds / times['plain']:.2f} of plain loop"
        if side.startswith("sweep") and fastest != "plain":
            line += f", x{seconds / times[fastest]:.2f} of the fastest by hand ({fastest})"
        print(line)
    if "sweep --workers 1" in times:
        print(f"  --workers auto finishes x{times['sweep --workers 1'] / times['sweep']:.2f} "
              "sooner than one trial at a time")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/bench_whole.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS),
                        help="repeatable, also the same one (default: every scenario)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per point (default: 3)")
    parser.add_argument("--data", help=f"an image folder (default: {SAMPLE} if present, "
                                       "else digits)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sweep-bench-whole-") as tmp:
        npz = Path(tmp) / "images.npz"
        print(f"bench_whole: {make_npz(args.data, npz)}; {os.cpu_count()} cores")
        for name in args.scenario or list(SCENARIOS):
            run_scenario(name, Path(tmp), npz, args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
