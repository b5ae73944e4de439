"""Pieces both learners use: batched reset/step with automatic reset, and the deterministic policy."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from apg_jax.envs.base import DiffEnv, State
from apg_jax.normalization import RunningStats, normalize


def reset_batch(env: DiffEnv, key: jax.Array, num_envs: int) -> State:
    """``num_envs`` fresh states (leaves ``[num_envs, ...]``)."""
    return jax.vmap(env.reset)(jax.random.split(key, num_envs))


def select_envs(mask: jax.Array, if_true: State, if_false: State) -> State:
    """Per-environment choice between two batched states; ``mask [N]`` (nonzero picks ``if_true``)."""

    def pick(a, b):
        return jnp.where(mask.reshape((-1,) + (1,) * (a.ndim - 1)) > 0, a, b)

    return jax.tree.map(pick, if_true, if_false)


def step_with_reset(env: DiffEnv, state: State, action: jax.Array, reset_state: State):
    """Step a batch; environments whose episode ended continue from ``reset_state``.

    Returns ``(carry_state, stepped)``: the state to continue from and the raw stepped state (whose
    ``reward``, ``done`` and ``metrics`` describe the transition just taken)."""
    stepped = jax.vmap(env.step)(state, action)
    return select_envs(stepped.done, reset_state, stepped), stepped


def replace_nonfinite(state: State, reset_state: State):
    """Restart environments whose physics state holds NaN/inf; returns ``(state, count [])``."""
    bad = ~jnp.all(jnp.isfinite(state.pipeline_state), axis=-1)
    return select_envs(bad, reset_state, state), jnp.sum(bad)


def deterministic_action(actor, actor_params, stats: RunningStats, obs: jax.Array) -> jax.Array:
    """The policy's mean action in [-1, 1] for ``obs [..., obs_size]``."""
    mean, _ = actor.apply(actor_params, normalize(stats, obs))
    return mean
