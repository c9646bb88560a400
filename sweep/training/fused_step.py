"""The compiled programs of a fused group (``sweep.training.fused``), kept per process.

A group's training step and evaluation read every member's values from their arguments; the
Keras model and optimizer they are made from only lend their structure. So a worker's next
group of the same step key (the next K repeats of a point, say) runs the programs compiled
for an earlier one: ``jax.jit`` traces again only for another number of members.

Knows Keras' stateless API and JAX only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jax
    import keras

    # A member's trainable, non-trainable and optimizer values; in a group's state each
    # array is every member's, stacked along a leading member axis.
    State = tuple[list[jax.Array], list[jax.Array], list[jax.Array]]
    # What a step gives back: its loss and correct count (each member's, per step).
    Out = tuple[jax.Array, jax.Array]
    # ``(train_step, batched_eval)``, jitted
    Programs = tuple[Callable[..., tuple[State, Out]], Callable[..., Out]]

KEPT = 4  # programs kept per process (each holds its model's structure and its traces)

_kept: OrderedDict[tuple[str, bool, bool], Programs] = OrderedDict()


def programs(key: str | None, model: keras.Model, optimizer: keras.optimizers.Optimizer,
             loss_fn: keras.losses.Loss, alone: bool, looped: bool) -> Programs:
    """``(train_step, batched_eval)`` for ``key`` (a step key; None: made for this group
    only), a group of one (``alone``) or several, scanning over steps (``looped``) or not.

    ``train_step(state, x, y, idx)`` runs the steps of ``idx`` (steps, K, batch) for every
    member; ``batched_eval(state, x, y, idx)`` gives each member's summed validation loss and
    correct count over its batch of positions ``idx`` (K, batch)."""
    if key is None:
        return _programs_for(model, optimizer, loss_fn, alone, looped)
    kind = (key, alone, looped)
    found = _kept.pop(kind, None) or _programs_for(model, optimizer, loss_fn, alone, looped)
    _kept[kind] = found  # the most recently used last
    while len(_kept) > KEPT:
        _kept.popitem(last=False)
    return found


def _programs_for(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                  loss_fn: keras.losses.Loss, alone: bool, looped: bool) -> Programs:
    """``(train_step, batched_eval)``, jitted, for members of ``model``'s architecture
    trained by ``optimizer``'s kind on ``loss_fn``: they read every member's values from
    their arguments (``model`` and ``optimizer`` only lend their structure), so any later
    group of the same step key runs them."""
    import jax
    import jax.numpy as jnp

    def member_step(state: State, x: jax.Array, y: jax.Array) -> tuple[State, Out]:
        trainable, non_trainable, opt_vars = state

        def objective(trainable: list[jax.Array], non_trainable: list[jax.Array]
                      ) -> tuple[jax.Array, tuple[jax.Array, list[jax.Array]]]:
            logits, non_trainable, losses = model.stateless_call(
                trainable, non_trainable, x, training=True, return_losses=True)
            loss = loss_fn(y, logits) + sum(losses)
            return loss, (logits, non_trainable)

        (loss, (logits, non_trainable)), grads = jax.value_and_grad(
            objective, has_aux=True)(trainable, non_trainable)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        hits = jnp.sum(jnp.argmax(logits, axis=-1) == y)
        return (trainable, non_trainable, opt_vars), (loss, hits)

    def one_member(state: State, x: jax.Array, y: jax.Array) -> tuple[State, Out]:
        # a group of one: XLA's CPU backend runs the batched (grouped) convolutions of a vmap
        # several times slower than plain ones
        squeeze = jax.tree_util.tree_map(lambda a: a[0], (state, x, y))
        return jax.tree_util.tree_map(lambda a: a[None], member_step(*squeeze))

    fused_step = one_member if alone else jax.vmap(member_step)

    def one(state: State, x_all: jax.Array, y_all: jax.Array,
            batch_idx: jax.Array) -> tuple[State, Out]:  # batch_idx: (K, batch)
        return fused_step(state, x_all[batch_idx], y_all[batch_idx])

    def steps(state: State, x_all: jax.Array, y_all: jax.Array,
              idx: jax.Array) -> tuple[State, Out]:  # idx: (steps, K, batch)
        if not looped:
            state, out = one(state, x_all, y_all, idx[0])
            return state, jax.tree_util.tree_map(lambda a: a[None], out)
        return jax.lax.scan(lambda s, i: one(s, x_all, y_all, i), state, idx)

    def member_eval(state: State, x_all: jax.Array, y_all: jax.Array,
                    idx: jax.Array) -> Out:  # idx: this member's validation batch
        trainable, non_trainable, _ = state
        x, y = x_all[idx], y_all[idx]
        logits, _ = model.stateless_call(trainable, non_trainable, x, training=False)
        return loss_fn(y, logits) * len(y), jnp.sum(jnp.argmax(logits, axis=-1) == y)

    return (jax.jit(steps, donate_argnums=0),
            jax.jit(jax.vmap(member_eval, in_axes=(0, None, None, 0))))
