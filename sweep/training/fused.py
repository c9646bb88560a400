"""Fused training (JAX backend): K models of one architecture trained as one program.

Small CNNs leave an accelerator idle between Python steps: one model's step at batch 32 is a
few MFLOP. Members whose compiled step is the same (``reuse.step_key``: architecture,
optimizer kind, loss, batch size, precision, data) and differ only in what the step reads
from arrays train together: ``jax.vmap`` over their stacked variables makes one program of
K, whose batched convolutions XLA runs as one grouped convolution. What each member keeps of
its own, as arrays:

- its weights (built from its own seed) and optimizer state, its learning rate included
  (a variable of Keras' optimizer: ``learning_rate_at`` sets it per member and epoch);
- its dropout and augmentation draws (the seed generators' states are non-trainable
  variables) and batch-norm statistics;
- the order in which it sees the training images (``_order``: its seed and the epoch), and
  its own seeded train/validation split, as positions into one copy of the dataset's images
  on the device (``_pool``): K members on one dataset hold its images once, not K times.

So a member's epochs do not depend on its group: trained alone (K = 1, the same step), it
gives the same rows within float tolerance (``tests/training/test_fused.py``). One caveat of
float arithmetic: Adam on a weight the loss does not depend on (a conv bias right before
batch normalisation) turns the last bits' noise of its gradient into steps of the learning
rate's size, so such a member agrees with its solo run to about 1e-3 of the validation
loss, not to the last digit (SGD and the other weights do). A member
leaves the group between epochs (pruned, stopped); the others go on in a program of K - 1.
``member_model`` writes a member's arrays back into its Keras model, which saves, exports and
evaluates like any trial's.

Knows Keras, JAX and numpy only; never Optuna or a study file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sweep.data import Dataset
from sweep.study.training import TrainingConfig
from sweep.training.fit import learning_rate_at, loss_for, make_optimizer
from sweep.training.fused_step import programs
from sweep.training.probe import EVAL_BATCH_SIZE

if TYPE_CHECKING:
    import keras

    from sweep.training.fused_step import State

# Training steps per compiled call on an accelerator (one dispatch from Python, a
# ``lax.scan``). On a CPU one: XLA's CPU backend runs convolutions inside a loop about 6x
# slower than the same step called from Python (1.14 s against 6.5 s for 32 steps of the
# seeds' CIFAR-10 model at batch 32 on this machine's 2 cores).
STEPS_PER_CALL = 32


@dataclass
class Member:
    """One model of a group: its Keras model (built, its optimizer beside it), the training
    settings it was built with, its seed (its batch order), its data (the members of a group
    load one dataset configuration, each with its own seeded split) and the rows of its
    epochs (those of a checkpoint it resumes from: the members of a group are in step)."""

    model: keras.Model
    config: TrainingConfig
    seed: int
    data: Dataset
    rows: list[dict] = field(default_factory=list)
    # None: the model's own (a checkpoint's, or compiled), else one made from ``config``
    optimizer: keras.optimizers.Optimizer | None = None


def backend_fuses() -> bool:
    """Fusing needs Keras' JAX backend (``stateless_call`` inside ``jax.vmap``)."""
    import keras

    return keras.backend.backend() == "jax"


class FusedGroup:
    """Members trained as one program, epoch by epoch (``train_epoch``). ``key``: their step
    key (``sweep.trial.fused_trials.fuse_key``), under which groups share compiled programs;
    None compiles this group's own."""

    def __init__(self, members: list[Member], key: str | None = None) -> None:
        import jax
        import jax.numpy as jnp

        if not backend_fuses():
            raise RuntimeError("fused training needs KERAS_BACKEND=jax")
        self.members = list(members)
        if len({len(m.rows) for m in self.members}) != 1:  # one epoch counter for all
            raise ValueError("the members of a fused group must have trained as many epochs")
        for m in self.members:
            m.optimizer = m.optimizer or getattr(m.model, "optimizer", None) or make_optimizer(
                m.config)
            if not m.optimizer.built:  # a resumed model's optimizer holds its state already
                m.optimizer.build(m.model.trainable_variables)
        template = self.members[0]
        assert template.optimizer is not None  # every member was given one above
        self._model, self._optimizer = template.model, template.optimizer
        self._loss = loss_for(template.config.label_smoothing)
        self._state = _stack([_arrays(m) for m in self.members])
        self._rate_index = [i for i, v in enumerate(self._optimizer.variables)
                            if v.path.endswith("learning_rate")]
        x, y, train, val = _pool([m.data for m in self.members])
        self._images = jnp.asarray(x), jnp.asarray(y)
        self._train, self._val = train, val  # (K, n_train), (K, n_val) positions in them
        self._looped = jax.devices()[0].platform != "cpu"  # lax.scan over steps (above)
        # the programs, made at the first epoch (for this many members)
        self._compiled: tuple[Callable[..., Any], Callable[[State], Any]] | None = None
        self._key = key  # the members' step key: groups of one key share compiled programs

    def leave(self, member: Member) -> None:
        """Take ``member`` out of the group (its arrays written back into its model first);
        the others train on in a program of one fewer."""
        k = self.members.index(member)
        self.member_model(member)
        self.members.pop(k)
        self._state = _drop(self._state, k)
        self._train, self._val = (np.delete(a, k, axis=0) for a in (self._train, self._val))
        self._compiled = None

    def member_model(self, member: Member) -> keras.Model:
        """``member``'s Keras model holding its arrays as trained so far (its optimizer's
        too): to save, export or evaluate like any model."""
        k = self.members.index(member)
        assert member.optimizer is not None  # the group gave each of its members one
        trainable, non_trainable, optimizer = _unstack(self._state, k)
        for variables, values in ((member.model.trainable_variables, trainable),
                                  (member.model.non_trainable_variables, non_trainable),
                                  (member.optimizer.variables, optimizer)):
            for variable, value in zip(variables, values, strict=True):
                variable.assign(value)
        return member.model

    def train_epoch(self, stop: Callable[[], bool] | None = None) -> list[dict]:
        """One more epoch for every member; returns each member's new row (and appends it to
        ``member.rows``): ``epoch``, ``train_loss``, ``train_accuracy``, ``val_loss``,
        ``val_accuracy``, ``learning_rate``, ``seconds`` (the group's wall time: the members
        trained side by side). ``stop`` is asked between compiled calls: True raises
        KeyboardInterrupt there (Ctrl-C), the members' arrays as of the last call."""
        import jax.numpy as jnp

        train_step, evaluate = self._compiled or self._compile()
        started = time.perf_counter()
        epoch = len(self.members[0].rows)  # 0-based: the members of a group are in step
        rates = [learning_rate_at(m.config.schedule, m.config.learning_rate, m.config.decay,
                                  epoch, m.config.epochs) for m in self.members]
        self._state = _with_learning_rates(self._state, self._rate_index, rates)
        x, y = self._images
        n, batch = self._train.shape[1], self.members[0].config.batch_size
        orders = np.stack([positions[_order(m.seed, epoch, n)]  # (K, n), into the images
                           for m, positions in zip(self.members, self._train, strict=True)])
        losses, correct = [], []

        def run(lo: int, hi: int, size: int) -> None:  # the batches of size in [lo, hi)
            if stop is not None and stop():
                raise KeyboardInterrupt
            idx = orders[:, lo:hi].reshape(len(self.members), -1, size).transpose(1, 0, 2)
            self._state, (loss, hits) = train_step(self._state, x, y, jnp.asarray(idx))
            losses.append(np.asarray(loss) * size)  # (steps, K): each batch's mean loss
            correct.append(np.asarray(hits))

        whole, per_call = n // batch * batch, STEPS_PER_CALL if self._looped else 1
        for start in range(0, whole, batch * per_call):
            run(start, min(whole, start + batch * per_call), batch)
        if whole < n:  # the last, short batch of the epoch
            run(whole, n, n - whole)
        train_loss = np.concatenate(losses).sum(axis=0) / n
        train_accuracy = np.concatenate(correct).sum(axis=0) / n
        val_loss, val_accuracy = evaluate(self._state)
        seconds = time.perf_counter() - started
        rows = []
        for k, m in enumerate(self.members):
            row = {"epoch": epoch + 1, "train_loss": float(train_loss[k]),
                   "train_accuracy": float(train_accuracy[k]), "val_loss": float(val_loss[k]),
                   "val_accuracy": float(val_accuracy[k]), "learning_rate": rates[k],
                   "seconds": seconds}
            m.rows.append(row)
            rows.append(row)
        return rows

    def _compile(self) -> tuple[Callable[..., Any], Callable[[State], Any]]:
        """The group's ``train_step`` (``fused_step.programs``: those of an earlier group of
        the same key where there was one) and ``evaluate(state)``, each member's validation
        loss and accuracy."""
        import jax.numpy as jnp

        train_step, batched_eval = programs(self._key, self._model, self._optimizer,
                                            self._loss, len(self.members) == 1, self._looped)
        images, val = self._images, self._val

        def evaluate(state: State) -> tuple[np.ndarray, np.ndarray]:
            n = val.shape[1]
            totals = [batched_eval(state, *images, jnp.asarray(val[:, i:i + EVAL_BATCH_SIZE]))
                      for i in range(0, n, EVAL_BATCH_SIZE)]
            loss = sum(np.asarray(t[0]) for t in totals) / n
            return loss, sum(np.asarray(t[1]) for t in totals) / n

        self._compiled = train_step, evaluate
        return self._compiled


def _pool(datas: list[Dataset]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(images, labels, train, val)``: one copy of every image the members train or
    validate on, and each member's training and validation positions in it, ``(K, n)``.

    Members whose datasets say where their images sit among the loader's (``train_index``,
    ``val_index``: one dataset configuration, split by each member's seed) share each image
    once; a dataset without them brings its own images."""
    first = datas[0]
    if any((d.name, d.input_shape, len(d.x_train), len(d.x_val))
           != (first.name, first.input_shape, len(first.x_train), len(first.x_val))
           for d in datas):
        raise ValueError("the members of a fused group must train on one dataset, "
                         "split into as many training and validation images")
    xs, ys, seen, size = [], [], {}, 0
    where = np.full(0, -1)  # a loader image's position in the pool, -1 where not in it
    for d in datas:
        if id(d) in seen:
            continue
        n = len(d.x_train)
        if d.train_index is None:
            new = np.ones(n + len(d.x_val), dtype=bool)
            positions = np.arange(size, size + len(new))
        else:
            original = np.concatenate([d.train_index, d.val_index])
            where = np.pad(where, (0, max(0, original.max() + 1 - len(where))),
                           constant_values=-1)
            new = where[original] < 0
            where[original[new]] = np.arange(size, size + new.sum())
            positions = where[original]
        xs += [d.x_train[new[:n]], d.x_val[new[n:]]]
        ys += [d.y_train[new[:n]], d.y_val[new[n:]]]
        size += int(new.sum())
        seen[id(d)] = positions[:n], positions[n:]
    train, val = (np.stack([seen[id(d)][part] for d in datas]) for part in (0, 1))
    return np.concatenate(xs), np.concatenate(ys), train, val


def _arrays(member: Member) -> State:
    """A member's trainable, non-trainable and optimizer variables, as arrays."""
    assert member.optimizer is not None  # FusedGroup gives each member one first
    return ([v.value for v in member.model.trainable_variables],
            [v.value for v in member.model.non_trainable_variables],
            [v.value for v in member.optimizer.variables])


def _stack(arrays: list[State]) -> State:
    import jax.numpy as jnp

    trainable, non_trainable, optimizer = (
        [jnp.stack(column) for column in zip(*(a[part] for a in arrays), strict=True)]
        for part in range(3))
    return trainable, non_trainable, optimizer


def _unstack(state: State, k: int) -> State:
    trainable, non_trainable, optimizer = ([leaf[k] for leaf in part] for part in state)
    return trainable, non_trainable, optimizer


def _drop(state: State, k: int) -> State:
    import jax.numpy as jnp

    trainable, non_trainable, optimizer = (
        [jnp.delete(leaf, k, axis=0) for leaf in part] for part in state)
    return trainable, non_trainable, optimizer


def _with_learning_rates(state: State, index: list[int], rates: list[float]) -> State:
    """``state`` whose optimizer learning-rate variable holds each member's ``rates``."""
    import jax.numpy as jnp

    trainable, non_trainable, optimizer = state
    optimizer = list(optimizer)
    for i in index:
        optimizer[i] = jnp.asarray(rates, dtype=optimizer[i].dtype).reshape(
            optimizer[i].shape)
    return trainable, non_trainable, optimizer


def _order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order a member sees the ``n`` training images in at ``epoch``: its own, the same
    whichever group it trains in."""
    return np.random.default_rng([seed, epoch]).permutation(n)

