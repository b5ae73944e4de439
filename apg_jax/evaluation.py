"""Evaluation protocol: the deterministic policy on a fixed set of environments, for a full episode."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from apg_jax.envs.batch import reset_batch
from apg_jax.envs.base import DiffEnv


def rollout(env: DiffEnv, act_fn, key: jax.Array, num_envs: int):
    """Run ``act_fn: obs [N, obs] -> action [N, act]`` for one episode from ``num_envs`` resets.

    Returns ``(q [T + 1, N, state_dim], rewards [T, N], success [T, N])``."""
    start = reset_batch(env, key, num_envs)

    def body(state, _):
        state = jax.vmap(env.step)(state, act_fn(state.obs))
        return state, (state.pipeline_state, state.reward, state.metrics["success"])

    _, (qs, rewards, success) = jax.lax.scan(body, start, None, length=env.episode_length)
    return jnp.concatenate([start.pipeline_state[None], qs]), rewards, success


def episode_success(env: DiffEnv, success: jax.Array) -> jax.Array:
    """Per-episode success ``[N]`` from per-step flags ``[T, N]`` under the task's ``success_mode``."""
    return success[-1] if env.success_mode == "final" else jnp.max(success, axis=0)


def evaluate(env: DiffEnv, act_fn, key: jax.Array, num_envs: int) -> dict:
    """Mean undiscounted episode return and success rate of a deterministic policy."""
    _, rewards, success = rollout(env, act_fn, key, num_envs)
    return {"eval_return": jnp.mean(jnp.sum(rewards, axis=0)),
            "eval_success": jnp.mean(episode_success(env, success))}
