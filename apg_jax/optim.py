"""The optimizer both learners use: Adam with global-norm clipping and a learning-rate schedule, and the
guard that refuses non-finite updates."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

SCHEDULES = ("constant", "linear", "cosine")


def make_optimizer(learning_rate: float, max_grad_norm: float, schedule: str, total_steps: int,
                   betas: tuple = (0.9, 0.999)):
    """``optax`` chain: clip by global norm, then Adam (``betas``) with the named schedule over ``total_steps``."""
    if schedule == "constant":
        lr = learning_rate
    elif schedule == "linear":
        lr = optax.linear_schedule(learning_rate, 0.0, max(total_steps, 1))
    elif schedule == "cosine":
        lr = optax.cosine_decay_schedule(learning_rate, max(total_steps, 1))
    else:
        raise ValueError(f"unknown lr schedule '{schedule}'; valid: {', '.join(SCHEDULES)}")
    return optax.chain(clip_by_global_norm(max_grad_norm), optax.adam(lr, b1=betas[0], b2=betas[1]))


def global_norm(tree) -> jax.Array:
    """``optax.tree.norm(tree)`` (the same number wherever it is finite), computed from the entries scaled
    by the largest one where the sum of squares overflows float32 (norms above ~1.8e19 with finite
    entries), so that logged norms say how large such a gradient was instead of ``inf``."""
    norm = optax.tree.norm(tree)
    largest, scaled_norm = _scaled_norm(tree)
    return jnp.where(jnp.isfinite(norm), norm, largest * scaled_norm)


def _scaled_norm(tree) -> tuple[jax.Array, jax.Array]:
    """``(largest, norm of tree / largest)``: the largest absolute entry (1 for an all-zero tree) and the
    global norm of the tree divided by it, which does not overflow while the entries are finite."""
    largest = jnp.max(jnp.stack([jnp.max(jnp.abs(t)) for t in jax.tree.leaves(tree)]))
    largest = jnp.where(largest > 0, largest, 1.0)
    return largest, optax.tree.norm(jax.tree.map(lambda t: t / largest, tree))


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """``optax.clip_by_global_norm`` (the same numbers wherever the global norm is finite), that also clips a
    gradient whose entries are all finite but whose norm overflows float32 (entries above ~1e19, as
    backpropagation through hundreds of contact steps produces): scaled by its largest entry first, it keeps
    its direction at norm ``max_norm``, where optax's division by an infinite norm would zero it and leave
    Adam to step on stale momentum. Non-finite entries stay non-finite (``guarded_update`` refuses those)."""
    def update_fn(updates, state, params=None):
        del params
        norm = optax.tree.norm(updates)
        largest, scaled_norm = _scaled_norm(updates)

        def clip(t):
            overflowed = (t / largest) / scaled_norm * max_norm
            return jnp.where(norm < max_norm, t, jnp.where(jnp.isfinite(norm), (t / norm) * max_norm, overflowed))

        return jax.tree.map(clip, updates), state

    return optax.GradientTransformation(optax.init_empty_state, update_fn)


def all_finite(tree) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def guarded_update(optimizer, grads, opt_state, params):
    """Apply ``grads`` unless any entry is NaN/inf; then keep params and optimizer state unchanged.

    Returns ``(params, opt_state, skipped)`` with ``skipped`` 1.0 when the update was refused."""
    finite = all_finite(grads)
    safe_grads = jax.tree.map(lambda g: jnp.where(finite, g, 0.0), grads)
    updates, new_opt_state = optimizer.update(safe_grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    keep = lambda new, old: jnp.where(finite, new, old)
    return (jax.tree.map(keep, new_params, params), jax.tree.map(keep, new_opt_state, opt_state),
            1.0 - finite.astype(jnp.float32))
