# Everything installs from nothing: `make sweep` and `make test` create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STUDY ?= quickstart
STORAGE ?= sqlite:///sweeps.db
ARTIFACTS ?= artifacts
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install sweep report dashboard test lint test-backends test-cluster test-docker postgres-server chromium slurm docker-engine bench bench-whole bench-halving bench-precision bench-onednn bench-grow bench-scale bench-verdicts bench-claims bench-gpu bench-fused gpu-wheels gpu-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# pip's output goes to a log, shown only when the install fails: setuptools' editable build
# prints a "!!" banner about folders named like the package on every install.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e . > $(VENV)/pip.log 2>&1 || (cat $(VENV)/pip.log; exit 1)
	touch $@

$(DEV_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev]' > $(VENV)/pip.log 2>&1 || (cat $(VENV)/pip.log; exit 1)
	touch $@

install: $(STAMP)

sweep: $(STAMP)
	$(BIN)/sweep run $(STUDY) --storage $(STORAGE)

report: $(STAMP)
	$(BIN)/sweep report $(STUDY) --storage $(STORAGE)

dashboard: $(STAMP)
	$(BIN)/sweep dashboard --storage $(STORAGE) --artifact-dir $(ARTIFACTS)

# The PostgreSQL tests start a throwaway server from Debian's packages.
postgres-server:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql)

# The browser tests drive Debian's chromium with Playwright (no browser download).
chromium:
	@command -v chromium >/dev/null 2>&1 || \
	  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

test: $(DEV_STAMP) postgres-server chromium lint
	$(BIN)/python -m pytest

# ruff (pyproject.toml: line length 99; pyflakes, pycodestyle, imports sorted, bugbear,
# pyupgrade, complexity at most 12) and mypy over sweep/ (every function annotated); part of
# make test.
lint: $(DEV_STAMP)
	$(BIN)/ruff check sweep tests benchmarks
	$(BIN)/mypy

# The backends suite under Keras' torch and JAX backends (CPU builds), TensorFlow hidden as on
# the GPU machines lent here (tests/without_tensorflow): an augmented sweep, two worker
# processes, a SIGKILLed worker resumed from its checkpoint. About 5 minutes on 2 cores;
# .ci/run calls this after `make test`.
NO_TF := PYTHONPATH=$(CURDIR)/tests/without_tensorflow
test-backends: $(DEV_STAMP)
	$(BIN)/pip install --quiet torch==2.13.0 'jax[cpu]==0.10.2'
	KERAS_BACKEND=torch $(NO_TF) $(BIN)/python -m pytest -m backends
	KERAS_BACKEND=jax $(NO_TF) $(BIN)/python -m pytest -m backends
	KERAS_BACKEND=jax $(NO_TF) $(BIN)/python benchmarks/gpu_check.py --quick

# A single-node Slurm cluster (tests/slurm/start.sh) runs `sweep submit`'s job array against
# a throwaway PostgreSQL; .ci/run calls this after `make test`. Needs root, as CI has.
slurm:
	@command -v slurmctld >/dev/null && command -v munged >/dev/null || \
	  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y slurm-wlm munge)

test-cluster: $(DEV_STAMP) postgres-server slurm
	$(BIN)/python -m pytest -m cluster

# Debian's Docker engine and client, debootstrap (the local base image) and docker-compose;
# `make test-docker` builds the images of docker/ on that base and runs docker/compose.yaml
# end to end (tests/launch/test_docker_stack.py); .ci/run calls it last. Needs root, as CI has.
docker-engine:
	@command -v dockerd >/dev/null && [ -x /usr/bin/docker ] && command -v debootstrap >/dev/null && \
	  command -v docker-compose >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y --no-install-recommends docker.io debootstrap docker-compose)

test-docker: $(DEV_STAMP) docker-engine
	$(BIN)/python -m pytest -m docker -s --durations=0

# Every figure of docs/benchmark.md with its reference (about 50 minutes on 2 cores). First:
# one point through `sweep run` against the hand-written script, whole processes, 10,000
# CIFAR-10-like images, with the profile of where sweep's time goes.
bench: $(STAMP) postgres-server
	$(BIN)/python benchmarks/bench_whole.py --scenario n1 --images 10000 --epochs 2 --repeats 3
	$(BIN)/python benchmarks/bench_whole.py --scenario grid4 --repeats 3
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/bench_precision.py
	$(BIN)/python benchmarks/bench_onednn.py
	$(BIN)/python benchmarks/bench_scale.py
	$(BIN)/python benchmarks/bench_claims.py

# The 4-point grid through `sweep run` against a plain loop, KerasTuner and Optuna by hand.
bench-whole: $(STAMP)
	$(BIN)/python benchmarks/bench_whole.py --scenario grid4 --repeats 3

# Successive halving in sweep against the full grid, KerasTuner's Hyperband and Optuna's
# HyperbandPruner: 27 CIFAR-10 points x 9 epochs, whole processes, one table.
bench-halving: $(STAMP)
	$(BIN)/python benchmarks/bench_halving.py

bench-precision: $(STAMP)
	$(BIN)/python benchmarks/bench_precision.py

bench-onednn: $(STAMP)
	$(BIN)/python benchmarks/bench_onednn.py

# 8 workers on a throwaway PostgreSQL server, 200 one-epoch points (about 15 minutes on 2 cores).
bench-claims: $(STAMP) postgres-server
	$(BIN)/python benchmarks/bench_claims.py

bench-grow: $(STAMP)
	$(BIN)/python benchmarks/bench_grow.py

# 10,000 trials x 5 epochs (3 trained, the rest cloned in SQL): status, report, export, dashboard.
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/bench_scale.py

# How often the answer says "matters" on noise and on a 3 SD effect, against the rule before
# (issue 35); about 3 minutes on 2 cores.
bench-verdicts: $(STAMP)
	$(BIN)/python benchmarks/bench_verdicts.py

# On a GPU machine; those lent here have JAX and PyTorch but not TensorFlow.
# Fused training (JAX) against the same models one by one and the default TensorFlow path.
bench-fused: $(STAMP)
	$(BIN)/pip install --quiet 'jax[cpu]==0.10.2'
	KERAS_BACKEND=jax $(BIN)/python benchmarks/bench_fused.py --ks 1,2,4 --n-train 2048 --n-val 512

# What the GPU machines lent here lack (they have JAX, PyTorch, pandas, scipy; Python 3.12;
# statsmodels and what it imports for the report's verdicts, checked in a bare venv),
# as wheels in .whl/ (git ignores it) for `make gpu-check` there: run this here, then the device
# tool with carry [".whl"] and the command `make gpu-check` (docs/benchmark.md, "GPU check").
GPU_WHEELS := keras==3.15.1 namex==0.1.0 optree==0.20.0 optuna==5.1.0 alembic==1.20.1 \
  mako==1.4.3 colorlog==6.12.0 sqlalchemy==2.1.9 greenlet==3.5.6 plotly==7.1.0 \
  statsmodels==0.15.0 patsy==1.0.3 formulaic==1.2.2 interface-meta==2.0.1 narwhals==2.29.0 \
  wrapt==2.5.2 typing_extensions==4.16.0 packaging==26.4
gpu-wheels:
	grep -qxF '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	  --platform manylinux2014_x86_64 -d .whl $(GPU_WHEELS)

# On the GPU machine: everything that needs a GPU, in at most 8 minutes, one table, written to
# docs/benchmark.md under the device's name (and to $$OUT, which the device tool brings back).
gpu-check:
	if [ -d .whl ]; then $${PYTHON:-python3} -m pip install -q --no-index --no-deps \
	  --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl; fi
	PYTHONPATH=/tmp/site:$(CURDIR) KERAS_BACKEND=jax PYTHONUNBUFFERED=1 \
	  $${PYTHON:-python3} benchmarks/gpu_check.py

bench-gpu:
	KERAS_BACKEND=$${KERAS_BACKEND:-jax} PYTHONPATH=$(CURDIR) $${PYTHON:-python3} benchmarks/bench_gpu.py

clean:
	rm -rf $(VENV) reports sweeps.db tensorboard
