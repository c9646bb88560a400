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

Each side runs ``--repeats`` times, the sides alternated, and the table shows each run and the
medians. The sweep side's own progress lines, stamped as they arrive, say where its time went
(the profile: start-up to the header line, to the first epoch's start, the epochs, the trial's
end, the report, the exit). ``--compare PATH`` adds the sweep of another checkout (a worktree
of an older commit) as a side, for a before/after table.

``make bench`` (``--scenario n1 --images 10000 --epochs 2 --repeats 3``: one point against the
hand-written script) and ``make bench-whole`` (``--scenario grid4 --repeats 3``) run it;
``python benchmarks/bench_whole.py [--scenario grid4|n1|n12] [--epochs E] [--data PATH]
[--images N] [--repeats R] [--compare PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from sweep.defaults import ONEDNN_ENV  # noqa: E402

SAMPLE = ROOT.parent / "shared" / "data" / "cifar10-sample"
RATES = [1e-3, 3e-3, 5e-4, 2e-3, 7e-4, 1.5e-3]
SCENARIOS = {  # name -> (pooling values, learning rates, sides)
    "n1": (["max"], RATES[:1], ("sweep", "plain")),
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


def make_npz(data: str | None, path: Path, images: int | None) -> str:
    """The bench's images as one .npz (uint8, as downloaded); returns what they are.
    ``images``: that many training images, the folder's repeated with their mirror images
    (CIFAR-10-like: 10,000 from the sample's 5,000), or None for the folder's own."""
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
    if images is not None:
        copies = -(-images // (2 * len(x_train)))
        x_train = np.concatenate([x_train, x_train[:, :, ::-1]] * copies)[:images]
        y_train = np.concatenate([y_train, y_train] * copies)[:images]
        what += f", {images:,} training images (with their mirror images)"
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


# The sweep side's phases, from its --progress plain lines as they arrive (see ``_profile``).
PHASES = ("start to header", "header to first epoch", "epochs", "last epoch to summary",
          "summary to report", "report to exit")
_EPOCH = re.compile(r" epoch (\d+)/\d+ .*\((\d+(?:\.\d+)?)s\)$")


def time_side(side: str, tmp: Path, cfg: dict, study: Path,
              compare: Path | None) -> tuple[float, dict[str, float]]:
    """Wall seconds of one side's whole process, and for a sweep side its profile."""
    env = {k: v for k, v in os.environ.items() if k != ONEDNN_ENV} | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    if side == "plain oneDNN":
        env[ONEDNN_ENV] = "1"
    run_dir = Path(tempfile.mkdtemp(prefix=side.replace(" ", "_") + "-", dir=tmp))
    if side.startswith("sweep"):
        before = side == "sweep before"
        env["PYTHONPATH"] = str(compare if before else ROOT)  # this checkout's sweep.cli
        options = [] if before else side.split()[1:]
        command = [sys.executable, "-m", "sweep.cli", "run", str(study), "--storage",
                   f"sqlite:///{run_dir}/sweeps.db", "--progress", "plain", *options]
    else:
        kind = side.split()[0]  # "plain oneDNN" runs the plain script
        script = run_dir / f"side_{kind}.py"  # not keras_tuner.py: it would shadow the package
        script.write_text(textwrap.dedent(COMMON) + textwrap.dedent(SIDES[kind]))
        (run_dir / "cfg.json").write_text(json.dumps(cfg | {"tmp": str(run_dir)}))
        command = [sys.executable, str(script), str(run_dir / "cfg.json")]
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=run_dir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = [(time.perf_counter() - started, line.rstrip()) for line in proc.stdout]
    seconds = time.perf_counter() - started
    if proc.wait() != 0:
        said = "\n".join(line for _, line in lines[-30:])
        raise SystemExit(f"bench_whole: {side} failed:\n{said}")
    return seconds, (_profile(lines, seconds) if side.startswith("sweep") else {})


def _profile(lines: list[tuple[float, str]], seconds: float) -> dict[str, float]:
    """Where a sweep process's ``seconds`` went, from its stamped progress lines: the header
    (the first line), each epoch line (an epoch began its printed seconds before it), the
    summary (``best ...``) and the report's line; for one point trained at a time."""
    header = lines[0][0]
    epochs = [(at, float(m.group(2))) for at, line in lines if (m := _EPOCH.search(line))]
    summary = next(at for at, line in lines if "; best " in line)
    report = next((at for at, line in lines if "report: " in line), summary)
    first_begins = epochs[0][0] - epochs[0][1]
    trained = sum(took for _, took in epochs)
    return {"start to header": header, "header to first epoch": first_begins - header,
            "epochs": trained, "last epoch to summary": summary - first_begins - trained,
            "summary to report": report - summary, "report to exit": seconds - report}


def run_scenario(name: str, tmp: Path, npz: Path, epochs: int, repeats: int,
                 compare: Path | None) -> dict[str, float]:
    """Each side ``repeats`` times, alternated; prints every run, the medians and ratios,
    and the sweep sides' profile; returns the medians."""
    pooling, rates, sides = SCENARIOS[name]
    sides = (*sides, *(["sweep before"] if compare else []))
    cfg = {"npz": str(npz), "pooling": pooling, "rates": rates, "epochs": epochs}
    scenario = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmp))  # a scenario may repeat
    study = study_file(scenario, npz, pooling, rates, epochs)
    runs: dict[str, list[float]] = {side: [] for side in sides}
    profiles: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    for _ in range(repeats):
        for side in sides:
            seconds, profile = time_side(side, scenario, cfg, study, compare)
            runs[side].append(seconds)
            profiles[side].append(profile)
    times = {side: statistics.median(values) for side, values in runs.items()}
    points = len(pooling) * len(rates)
    by_hand = {k: v for k, v in times.items() if not k.startswith(("sweep", "plain oneDNN"))}
    fastest = min(by_hand, key=by_hand.__getitem__)
    print(f"\n{name}: {points} point(s) x {epochs} epoch(s), whole processes, {repeats} "
          "alternated run(s) per side (seconds; the median, then each run)")
    for side, seconds in times.items():
        each = " ".join(f"{value:.1f}" for value in runs[side])
        line = f"  {side:<18} {seconds:7.1f}   x{seconds / times['plain']:.2f} of plain loop"
        if side.startswith("sweep") and fastest != "plain":
            line += f", x{seconds / times[fastest]:.2f} of the fastest by hand ({fastest})"
        print(f"{line}   [{each}]")
    if "sweep --workers 1" in times:
        print(f"  --workers auto finishes x{times['sweep --workers 1'] / times['sweep']:.2f} "
              "sooner than one trial at a time")
    if points == 1:
        profiled = [side for side in sides if side.startswith("sweep")]
        print(f"  profile (medians, seconds)  {'  '.join(f'{s:>12}' for s in profiled)}")
        for phase in PHASES:
            cells = "  ".join(f"{statistics.median(p[phase] for p in profiles[s]):12.2f}"
                              for s in profiled)
            print(f"    {phase:<26}{cells}")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/bench_whole.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS),
                        help="repeatable, also the same one (default: every scenario)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per point (default: 3)")
    parser.add_argument("--data", help=f"an image folder (default: {SAMPLE} if present, "
                                       "else digits)")
    parser.add_argument("--images", type=int, help="training images (default: the folder's)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of each side, alternated (default: 1)")
    parser.add_argument("--compare", type=Path, metavar="CHECKOUT",
                        help="also time the sweep of this checkout (side 'sweep before')")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.epochs < 1:
        parser.error("--repeats and --epochs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="sweep-bench-whole-") as tmp:
        npz = Path(tmp) / "images.npz"
        print(f"bench_whole: {make_npz(args.data, npz, args.images)}; {os.cpu_count()} cores")
        for name in args.scenario or list(SCENARIOS):
            run_scenario(name, Path(tmp), npz, args.epochs, args.repeats, args.compare)
    return 0


if __name__ == "__main__":
    sys.exit(main())
