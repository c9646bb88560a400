"""Benchmark: one model trained through ``sweep`` against a plain, naive Keras script.

Both sides train the conv_width study's base model (conv 32-64-64, kernel 3, max pooling,
dense 64; adam, learning rate 1e-3 per step, batch 32) on the same images, with a test-set
evaluation after the last epoch, in this one process. The sweep side is the real path: a
validated one-point grid study run by ``run_sweep`` into a fresh SQLite file, so Optuna's
bookkeeping, the per-epoch storage writes and the progress lines all count. The plain side is
what a user writes by hand: float64 ``x / 255.0``, ``fit(validation_split=0.1)``, ``evaluate``.
Data preparation is timed on neither side ("sweep - data load"); "sweep total" keeps it in.

Run ``make bench`` (``python benchmarks/bench.py``); it prints a table of seconds and the ratio
sweep / plain (below 1.0: sweep is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sweep.errors import SweepError

# Real CIFAR-10 JPEGs beside the repository (not in a user's clone): 5,000 train, 1,000 test.
SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cifar10-sample"
MODEL = {"filters": [32, 64, 64], "kernel": 3, "pooling": "max", "dense": [64]}
LEARNING_RATE = 1e-3  # per optimizer step
BATCH_SIZE = 32  # training images per step, both sides
VALIDATION_SPLIT = 0.1  # fraction of the training images held out, both sides
SEED = 0


def dataset_config(data: str | None) -> dict:
    """The study's ``dataset`` section for ``--data``: a folder, an .npz file or a dataset name."""
    if data is None:
        data = str(SAMPLE) if SAMPLE.is_dir() else "digits"
    path = Path(data)
    if path.is_dir() or path.suffix == ".npz":
        cfg = {"name": "folder" if path.is_dir() else "npz", "path": str(path.resolve())}
    else:
        cfg = {"name": data}
    return {**cfg, "validation_split": VALIDATION_SPLIT}


def bench_study(dataset: dict, epochs: int):
    """A validated one-point grid study of the base model, trained for ``epochs`` epochs."""
    from sweep.study import validate

    training = {"optimizer": "adam", "learning_rate": LEARNING_RATE, "batch_size": BATCH_SIZE,
                "epochs": epochs, "snapshots": [epochs]}  # test evaluation after the last epoch
    search = {"sampler": "grid", "params": {"model.kernel": [MODEL["kernel"]]}}  # one point
    raw = {"name": "bench", "dataset": dataset, "model": MODEL, "training": training,
           "search": search, "seed": SEED}
    return validate(raw, "bench")


def time_sweep(spec, db: Path) -> tuple[float, int]:
    """Seconds for one ``run_sweep`` call into a new database, and the model's parameter count."""
    import optuna

    from sweep.run import run_sweep

    url = f"sqlite:///{db}"  # a new file each time: an existing one would skip the finished point
    started = time.perf_counter()
    result = run_sweep(spec, url, on_event=lambda event: None,  # no console: timing only
                       artifact_dir=db.parent / "artifacts")
    seconds = time.perf_counter() - started
    if result.ran != 1 or result.failed:
        raise SweepError(f"the sweep trained {result.ran} trial(s), {result.failed} failed")
    trial = optuna.load_study(study_name=spec.name, storage=url).trials[0]
    return seconds, trial.user_attrs["param_count"]


def naive_arrays(raw: tuple) -> tuple:
    """The loader's raw arrays as a user prepares them by hand: ``x / 255.0``, float64."""
    # float64, converted to float32 again on every batch of every epoch inside fit
    x, xt = (a / 255.0 if a.dtype == "uint8" else a.astype("float64") for a in (raw[0], raw[2]))
    if x.ndim == 3:  # grey images without a channel axis (digits)
        x, xt = x[..., None], xt[..., None]
    return x, raw[1], xt, raw[3]


def time_plain(arrays: tuple, epochs: int) -> tuple[float, int]:
    """Seconds for the naive script on ``naive_arrays``, and the model's parameter count."""
    import keras
    from keras import layers

    x, y_train, xt, y_test = arrays
    started = time.perf_counter()
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([
        keras.Input(shape=x.shape[1:]),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        # softmax here, as users write it; sweep emits logits and its loss applies the softmax
        layers.Dense(int(max(y_train.max(), y_test.max())) + 1, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y_train, validation_split=VALIDATION_SPLIT, epochs=epochs,
              batch_size=BATCH_SIZE, verbose=0)
    model.evaluate(xt, y_test, verbose=0)
    return time.perf_counter() - started, model.count_params()


def run(data: str | None, epochs: int, repeats: int) -> None:
    """Warm up both sides (1 epoch each), then alternate plain and sweep; print the table."""
    import keras
    import numpy as np
    import optuna

    from sweep.data import load_dataset, load_raw
    from sweep.training.device import device_description

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its INFO lines would cut the table
    dataset = dataset_config(data)
    spec, warm_spec = bench_study(dataset, epochs), bench_study(dataset, 1)
    raw = load_raw(spec.config["dataset"])
    # The folder loader returns images sorted by class; shuffle once (seeded) so the plain
    # side's validation_split (the last 10%) is not all one class, as in a downloaded dataset.
    order = np.random.default_rng(SEED).permutation(len(raw[0]))
    raw = (raw[0][order], raw[1][order], raw[2], raw[3])
    # Neither side's data preparation is timed: the plain side's x / 255.0 happens here, and
    # run_sweep's load (read, float32 normalisation, split) is timed alone to be subtracted.
    arrays = naive_arrays(raw)
    started = time.perf_counter()
    load_dataset(spec.config["dataset"], SEED)
    load_seconds = time.perf_counter() - started

    times: dict[str, list[float]] = {"plain": [], "sweep": []}
    params = {}
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        time_plain(arrays, 1)  # warm-up: TF runtime start, first traces, lazy imports
        time_sweep(warm_spec, Path(tmp) / "warm.db")
        for i in range(repeats):
            seconds, params["plain"] = time_plain(arrays, epochs)
            times["plain"].append(seconds)
            seconds, params["sweep"] = time_sweep(spec, Path(tmp) / f"run{i}.db")
            times["sweep"].append(seconds)

    sweep_net = [t - load_seconds for t in times["sweep"]]
    rows = {"plain Keras script": times["plain"], "sweep total": times["sweep"],
            "sweep - data load": sweep_net}
    plain_median = statistics.median(times["plain"])
    where = f"{dataset['name']}" + (f" ({dataset['path']})" if "path" in dataset else "")
    print("bench: the same model through sweep and as a plain Keras script (seconds)")
    print(f"dataset   {where}")
    print(f"shapes    train {raw[0].shape} {raw[0].dtype}, test {raw[2].shape}; "
          f"{VALIDATION_SPLIT:.0%} of train held out for validation")
    print(f"model     conv {MODEL['filters']} k{MODEL['kernel']} {MODEL['pooling']} pool, "
          f"dense {MODEL['dense']}; adam lr {LEARNING_RATE}, batch {BATCH_SIZE}; "
          f"params sweep {params['sweep']:,}, plain {params['plain']:,}")
    print(f"epochs    {epochs}, test evaluation after epoch {epochs}; repeats {repeats}, "
          f"alternating plain/sweep after a 1-epoch warm-up of each")
    print(f"backend   {keras.backend.backend()} (keras {keras.__version__}); "
          f"device {device_description()}")
    print(f"data load {load_seconds:.2f} s (sweep.data.load_dataset, timed once beforehand)")
    print()
    header = "  ".join(f"run {i + 1:>3}" for i in range(repeats))
    print(f"{'side':<20}  {header}  {'median':>7}  {'ratio':>6}")
    for name, values in rows.items():
        median = statistics.median(values)
        cells = "  ".join(f"{v:7.2f}" for v in values)
        print(f"{name:<20}  {cells}  {median:7.2f}  {median / plain_median:6.3f}")
    print("ratio: median / plain median; below 1.000 means sweep is faster")


def main(argv: list[str] | None = None) -> int:
    """Parse ``--data``, ``--epochs``, ``--repeats``; run; a SweepError becomes one line."""
    # TensorFlow's C++ logging prints CUDA probing noise on CPU-only machines (as in cli.py).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = argparse.ArgumentParser(
        prog="benchmarks/bench.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data", metavar="PATH_OR_NAME",
                        help=f"image folder, .npz file or dataset name "
                             f"(default: {SAMPLE} if present, else digits)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per timed run (default: 5)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side (default: 3)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.repeats < 1:
        parser.error("--epochs and --repeats must be at least 1")
    try:
        run(args.data, args.epochs, args.repeats)
    except SweepError as err:
        print(f"bench: error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
