"""A worker's fused groups (``--fuse``): up to K claimed points trained as one program.

A grid point the worker claims leads a group: up to K - 1 more points of its ``fuse_key``
(free ones whose checkpoints hold as many epochs, or ones waiting to be continued) are
claimed beside it. Each becomes its own trial (``Attempt``), with its own heartbeat, and
the group trains as one program under JAX (``sweep.trial.fused_trials``). A point whose
step cannot be fused (a hypermodel, float16 loss scaling, TensorBoard logs) and every
random/tpe trial train alone, through Keras' fit.

``--fuse`` is ``off``, a number K, or ``auto``: off on a CPU (fusion loses there:
docs/fused.md, ``make bench-fused``) and under TensorFlow and torch; on a GPU, K from
its free memory (``_auto_size``). K = 1 trains each point alone through the fused step.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from math import prod
from typing import TYPE_CHECKING

import optuna

from sweep.run.attempt import Attempt, earlier_trial
from sweep.run.priority import lower_native_threads
from sweep.run.progress import Overhead
from sweep.store import claims
from sweep.training.checkpoints import checkpoint_file, saved_epochs
from sweep.trial.sampling import suggest

if TYPE_CHECKING:
    from sweep.run.worker import _Worker

MAX_AUTO = 64  # the most members ``--fuse auto`` puts in one program
MEMORY_SHARE = 0.5  # of the accelerator's free memory that auto sizes a group to


def add_fuse_option(command: argparse.ArgumentParser) -> None:
    """Declare ``--fuse`` (``sweep run``, ``sweep worker``, ``sweep submit``)."""
    command.add_argument("--fuse", type=_fuse_option, default="auto", metavar="K|auto|off",
                         help="train up to K grid points of one model as one program (JAX; "
                              "auto: sized from the GPU's memory, off on a CPU and under "
                              "TensorFlow or torch; default: auto)")


def _fuse_option(text: str) -> str:
    if text in ("auto", "off") or (text.isdigit() and int(text) >= 1):
        return text
    raise argparse.ArgumentTypeError(f"expected a number of at least 1, auto or off, got "
                                     f"{text!r}")


class Fuser:
    """What a worker knows of fusing: the group size (resolved at the first grid point:
    Keras loads then) and each point's ``fuse_key``."""

    def __init__(self, w: _Worker, requested: str):
        self.w, self.requested, self._size = w, requested, None
        self._keys: dict[str, str | None] = {}

    def size(self, point: str) -> int:
        """How many points a group led by ``point`` may hold; 0: it trains through Keras'
        fit (a random/tpe slot, a step that cannot fuse, or no fusing here)."""
        if self.requested == "off" or self.w.points[point] is None:
            return 0
        if self._size is None:  # the first grid point: Keras loads for its training anyway
            self._size = _resolve(self.w, self.requested, self._values(point))
        return self._size if self._size and self.key(point) is not None else 0

    def halve(self, k: int) -> None:
        """A group of ``k`` ran out of accelerator memory: smaller ones from now on."""
        self._size = max(1, k // 2)
        print(f"[{self.w.spec.name}] out of accelerator memory with {k} fused; fusing up "
              f"to {self._size} from now on", file=sys.stderr)

    def key(self, point: str) -> str | None:
        if point not in self._keys:
            from sweep.trial.fused_trials import fuse_key

            stored = self.w.points[point]
            self._keys[point] = None if stored is None else fuse_key(self.w.spec,
                                                                     self._values(point))
        return self._keys[point]

    def _values(self, point: str) -> dict:
        """A grid point's values, decoded from their stored form."""
        return suggest(optuna.trial.FixedTrial(self.w.points[point]), self.w.spec.search.params)


def companions(w: _Worker, fuser: Fuser, leader: claims.Claim, k: int) -> list[claims.Claim]:
    """Up to ``k`` more points to train with ``leader``, claimed: those of its ``fuse_key``
    nobody holds whose checkpoints hold as many epochs, or waiting to be continued."""
    key = fuser.key(leader.point)
    if key is None or k <= 0:
        return []
    epochs = saved_epochs(checkpoint_file(w.folder, leader.point))
    taken, out = claims.held(w.store.engine, w.study_id), []
    for point in w.points:
        if len(out) == k:
            break
        if point in taken or point == leader.point or fuser.key(point) != key:
            continue
        if saved_epochs(checkpoint_file(w.folder, point)) != epochs:
            continue  # (one to continue has its kept model copied in once claimed)
        claim = claims.claim_also(w.store.engine, w.study_id, point, w.name)
        if claim is not None:
            out.append(claims.Claim(claim.point, earlier_trial=claim.earlier_trial,
                                    position=leader.position + len(out) + 1))
    return out


def run_group(w: _Worker, fuser: Fuser, study: optuna.Study, group: list[claims.Claim],
              looked: Overhead) -> None:
    """Train the claimed ``group`` of grid points as one program; each ends as its own
    trial. Out of accelerator memory, the points are given back and later groups halved."""
    from sweep.trial.fused_trials import FusedTrial, run_fused_trials

    attempts, ended = [], set()
    try:
        for claim in group:
            attempts.append(Attempt(w, study, claim, earlier_trial(w, claim), looked,
                                    w.points[claim.point]))
            looked = Overhead()

        def ending(attempt: Attempt):
            def ended_(state, value, note) -> None:
                attempt.heartbeat.__exit__(None, None, None)  # its claim is closed next
                ended.add(attempt)
                attempt.finish(state, value, note)
            return ended_

        members = [FusedTrial(a.trial, a.values, a.hooks(a.lost), ending(a)) for a in attempts]
        lower_native_threads()  # the backend's threads behind this one (priority.py)
        with contextlib.ExitStack() as stack:
            for a in attempts:
                stack.enter_context(a.heartbeat)
            stack.enter_context(w.interrupt.training())
            run_fused_trials(members, w.spec, w.dataset_for, lambda: w.interrupt.requested)
    except BaseException as err:
        from sweep.training.device import out_of_memory

        unclaimed = group[len(attempts):]  # claimed, but no trial made for them yet
        for claim in unclaimed:
            claims.release(w.store.engine, w.study_id, claim.point, w.name)
        for a in attempts:
            if a in ended:
                continue
            if a.lost():
                a.finish(None)
            else:
                a.give_back(err)
        if not (isinstance(err, Exception) and out_of_memory(err) and len(group) > 1):
            raise
        fuser.halve(len(group))


def _resolve(w: _Worker, requested: str, values: dict) -> int:
    """``--fuse`` as a group size: 0 for Keras' fit."""
    if requested == "off":
        return 0
    import keras

    backend = keras.backend.backend()
    if backend != "jax":
        if requested != "auto":
            print(f"[{w.spec.name}] --fuse {requested}: fused training needs "
                  f"KERAS_BACKEND=jax (this worker runs {backend}); its points train one at "
                  "a time", file=sys.stderr)
        return 0
    if requested != "auto":
        return int(requested)
    return _auto_size(w, values)


def _auto_size(w: _Worker, values: dict) -> int:
    """0 on a CPU; on an accelerator as many members of the point's model as
    ``MEMORY_SHARE`` of its free memory holds (weights, gradients and two optimizer moments;
    a training batch's activations three times over, an evaluation batch's once), at most
    ``MAX_AUTO``; said in one line."""
    import jax

    from sweep.study.space import trial_config
    from sweep.study.training import TrainingConfig
    from sweep.training.probe import EVAL_BATCH_SIZE
    from sweep.trial.feasible import architecture_of

    device = jax.devices()[0]
    if device.platform == "cpu":
        return 0
    stats = device.memory_stats() or {}
    free = stats.get("bytes_limit", 0) - stats.get("bytes_in_use", 0)
    config, seed = trial_config(w.spec.config, values, w.spec.seed)
    data = w.dataset_for(config["dataset"], seed)
    architecture = architecture_of(config, data.input_shape, data.num_classes)
    if architecture is None:
        return 0
    activations = sum(prod(layer.shape) for layer in architecture.layers)
    batch = TrainingConfig.from_section(config["training"]).batch_size
    member = 4 * (4 * architecture.params + (3 * batch + EVAL_BATCH_SIZE) * activations)
    room = MEMORY_SHARE * free - data.x_train.nbytes - data.x_val.nbytes
    size = int(max(1, min(MAX_AUTO, room // member)))
    print(f"[{w.spec.name}] --fuse auto: up to {size} points per program on "
          f"{device.device_kind} ({free / 2**30:.1f} GiB free, about "
          f"{member / 2**20:.0f} MiB a member)", file=sys.stderr)
    return size
