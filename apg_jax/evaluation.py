"""Evaluation protocol: the deterministic policy on a fixed set of environments, for a full episode."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from apg_jax.envs.batch import reset_batch
from apg_jax.envs.base import DiffEnv


def rollout_from_states(env: DiffEnv, act_fn, q0: jax.Array):
    """One full episode of ``act_fn: obs [N, obs] -> action [N, act]`` from physics states ``q0 [N, S]``.

    Returns ``(q [T + 1, N, S], actions [T, N, act], rewards [T, N], success [T, N])``; ``actions`` are
    the clipped actions passed to ``physics_step``."""

    def body(q, _):
        u = jnp.clip(act_fn(jax.vmap(env.observe)(q)), -1.0, 1.0)
        q_next, reward = jax.vmap(env.physics_step)(q, u)
        return q_next, (q_next, u, reward, jax.vmap(env.success)(q_next))

    _, (qs, actions, rewards, success) = jax.lax.scan(body, q0, None, length=env.episode_length)
    return jnp.concatenate([q0[None], qs]), actions, rewards, success


def rollout(env: DiffEnv, act_fn, key: jax.Array, num_envs: int):
    """One full episode from ``num_envs`` resets drawn with ``key``.

    Returns ``(q [T + 1, N, state_dim], rewards [T, N], success [T, N])``."""
    qs, _, rewards, success = rollout_from_states(env, act_fn, reset_batch(env, key, num_envs).pipeline_state)
    return qs, rewards, success


def episode_success(env: DiffEnv, success: jax.Array) -> jax.Array:
    """Per-episode success ``[N]`` from per-step flags ``[T, N]`` under the task's ``success_mode``."""
    return success[-1] if env.success_mode == "final" else jnp.max(success, axis=0)


def evaluate(env: DiffEnv, act_fn, key: jax.Array, num_envs: int) -> dict:
    """Mean undiscounted episode return and success rate of a deterministic policy, and the mean of each
    of the task's episode metrics as ``eval_<name>`` (tblock: ``eval_max_coverage``, ...)."""
    qs, rewards, success = rollout(env, act_fn, key, num_envs)
    extra = jax.vmap(env.episode_metrics, in_axes=1)(qs)
    return {"eval_return": jnp.mean(jnp.sum(rewards, axis=0)),
            "eval_success": jnp.mean(episode_success(env, success)),
            **{f"eval_{name}": jnp.mean(value) for name, value in extra.items()}}
