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

import contextlib
import sys
from collections.abc import Callable, Sequence
from math import prod

import optuna
from optuna.trial import TrialState

from sweep.run.attempt import Attempt, earlier_trial
from sweep.run.context import WorkerContext
from sweep.run.priority import lower_native_threads
from sweep.run.progress import Overhead
from sweep.store import claims
from sweep.training.checkpoints import checkpoint_file, saved_epochs
from sweep.trial.sampling import suggest


class Fuser:
    """What a worker knows of fusing: the group size (resolved at the first grid point:
    Keras loads then) and each point's ``fuse_key``."""

    def __init__(self, w: WorkerContext, requested: str):
        self.w, self.requested = w, requested
        self._size: int | None = None
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
        stored = self.w.points[point]
        assert stored is not None  # only grid points fuse (``size``)
        return suggest(optuna.trial.FixedTrial(stored), self.w.spec.search.params)


def companions(w: WorkerContext, fuser: Fuser, leader: claims.Claim, k: int) -> list[claims.Claim]:
    """Up to ``k`` more points to train with ``leader``, claimed: those of its ``fuse_key``
    nobody holds whose checkpoints hold as many epochs, or waiting to be continued; with
    successive halving, those going to the leader's rung (new points to the first, a
    rung's promotions to the next)."""
    key = fuser.key(leader.point)
    if key is None or k <= 0:
        return []
    epochs = saved_epochs(checkpoint_file(w.folder, leader.point))
    taken = claims.held(w.store.engine, w.study_id)
    out: list[claims.Claim] = []
    for point in w.points:
        if len(out) == k:
            break
        if point in taken or point == leader.point or fuser.key(point) != key:
            continue
        if saved_epochs(checkpoint_file(w.folder, point)) != epochs:
            continue  # (one to continue has its kept model copied in once claimed)
        claim = claims.claim_also(w.store.engine, w.study_id, point, w.name, w.ladder,
                                  leader.epochs, list(w.points))
        if claim is not None:
            out.append(claims.Claim(claim.point, earlier_trial=claim.earlier_trial,
                                    position=leader.position + len(out) + 1,
                                    epochs=claim.epochs))
    return out


def run_group(w: WorkerContext, fuser: Fuser, study: optuna.Study, group: list[claims.Claim],
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

        def ending(attempt: Attempt) -> Callable[..., None]:
            def ended_(state: TrialState | None, value: float | Sequence[float] | None,
                       note: str | None) -> None:
                ended.add(attempt)
                attempt.finish(state, value, note)  # its heartbeat stopped, its claim closed
            return ended_

        members = [FusedTrial(a.trial, a.values, a.hooks(a.lost), ending(a)) for a in attempts]
        lower_native_threads()  # the backend's threads behind this one (priority.py)
        with contextlib.ExitStack() as stack:
            for a in attempts:
                stack.enter_context(a.heartbeat)
            stack.enter_context(w.interrupt.training())
            # halving: the group's rung (companions claimed to the leader's)
            run_fused_trials(members, w.spec.at_epochs(group[0].epochs), w.dataset_for,
                             lambda: w.interrupt.requested or w.behind.failed)
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
        w.behind.check()  # a write behind failed (training stopped for it): its error
        if not (isinstance(err, Exception) and out_of_memory(err) and len(group) > 1):
            raise
        fuser.halve(len(group))


def _resolve(w: WorkerContext, requested: str, values: dict) -> int:
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


def _auto_size(w: WorkerContext, values: dict) -> int:
    """0 on a CPU; on an accelerator as many members of the point's model as fit its free
    memory (``training.device.fused_group_size``); said in one line."""
    from sweep.study.space import trial_config
    from sweep.study.training import TrainingConfig
    from sweep.training.device import fused_group_size
    from sweep.trial.feasible import architecture_of

    config, seed = trial_config(w.spec.config, values, w.spec.seed)
    data = w.dataset_for(config["dataset"], seed)
    architecture = architecture_of(config, data.input_shape, data.num_classes)
    if architecture is None:
        return 0
    sized = fused_group_size(architecture.params,
                             sum(prod(layer.shape) for layer in architecture.layers),
                             TrainingConfig.from_section(config["training"]).batch_size,
                             data.x_train.nbytes + data.x_val.nbytes)
    if sized is None:
        return 0
    size, said = sized
    print(f"[{w.spec.name}] --fuse auto: {said}", file=sys.stderr)
    return size
