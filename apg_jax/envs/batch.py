"""Batches of environments for the learners and the evaluator: resets, the time limit, automatic resets.

The time limit is brax's own ``EpisodeWrapper`` (``info["steps"]``, ``info["truncation"]``), so our
trainers and brax's end episodes by one rule. After a step, ``stepped.done`` is 1 where an episode ended,
``truncated(stepped)`` where it ended by the time limit and ``terminated(stepped)`` where it reached a
true terminal state. Leaves of batched states are ``[N, ...]``."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs.wrappers.training import EpisodeWrapper

from apg_jax.envs.base import DiffEnv, State


def episodic(env: DiffEnv) -> EpisodeWrapper:
    """``env`` with its time limit (``env.episode_length`` steps, no action repeat)."""
    return EpisodeWrapper(env, env.episode_length, action_repeat=1)


def reset_batch(env: DiffEnv, key: jax.Array, num_envs: int, difficulty: jax.Array | None = None) -> State:
    """``num_envs`` fresh episodes (clock at 0), leaves ``[num_envs, ...]``; with ``difficulty`` (a scalar in
    [0, 1]) their physics states come from the task's ``sample_training_q`` (a curriculum).
    ``metrics["success"]`` is 0, as in ``step_with_reset``."""
    keys = jax.random.split(key, num_envs)
    state = without_success(jax.vmap(episodic(env).reset)(keys))
    if difficulty is None:
        return state
    graded = jax.vmap(lambda k: env.state_from_q(env.sample_training_q(k, difficulty)))(keys)
    return state.replace(pipeline_state=graded.pipeline_state, obs=graded.obs, done=graded.done)


def without_success(state: State) -> State:
    """``state`` with ``metrics["success"]`` zeroed. The learners and the evaluator never read it (the
    evaluator judges success from the physics states), and left unused the task's success test is
    compiled away: tblock's coverage grid costs about six physics steps, once per reset and per step.
    ``EpisodeWrapper``'s running sum of it (``info["episode_metrics"]``) is zeroed too."""
    zero = jnp.zeros_like(state.metrics["success"])
    info = dict(state.info)
    if "episode_metrics" in info:
        info["episode_metrics"] = {**info["episode_metrics"], "success": zero}
    return state.replace(metrics={**state.metrics, "success": zero}, info=info)


def curriculum_difficulty(config, env_steps: jax.Array) -> jax.Array | None:
    """Training-reset difficulty after ``env_steps``: ``min(1, progress / config.curriculum)`` (None: off)."""
    if config.curriculum <= 0.0:
        return None
    return jnp.minimum(1.0, env_steps / (config.curriculum * config.env_steps))


def stagger_clocks(env: DiffEnv, state: State, key: jax.Array) -> State:
    """Start each environment's clock at a uniform step in ``[0, horizon)``, so a batch of episodes
    started together covers every phase of the episode from the first update on (as brax's trainers)."""
    steps = state.info["steps"]
    offsets = jax.random.randint(key, steps.shape, 0, env.episode_length).astype(steps.dtype)
    return state.replace(info={**state.info, "steps": offsets})


def truncated(stepped: State) -> jax.Array:
    """``[N]`` 1.0 where the step ended the episode by the time limit."""
    return stepped.info["truncation"]


def terminated(stepped: State) -> jax.Array:
    """``[N]`` 1.0 where the step reached a true terminal state (no bootstrap after it)."""
    return stepped.done * (1.0 - stepped.info["truncation"])


def select_envs(mask: jax.Array, if_true: State, if_false: State) -> State:
    """Per-environment choice between two batched states; ``mask [N]`` (nonzero picks ``if_true``)."""

    def pick(a, b):
        return jnp.where(mask.reshape((-1,) + (1,) * (a.ndim - 1)) > 0, a, b)

    return jax.tree.map(pick, if_true, if_false)


def step_with_reset(env: DiffEnv, state: State, action: jax.Array, reset_state: State):
    """Step a batch through the time limit; environments whose episode ended continue from ``reset_state``.

    Returns ``(carry_state, stepped)``: the state to continue from and the stepped state before any
    reset (its ``reward``, ``done``, ``obs``, ``info["truncation"]`` describe the transition just taken).
    ``metrics["success"]`` is 0 (``without_success``)."""
    stepped = without_success(jax.vmap(episodic(env).step)(state, action))
    return select_envs(stepped.done, reset_state, stepped), stepped


def replace_nonfinite(state: State, reset_state: State):
    """Restart environments whose physics state holds NaN/inf; returns ``(state, count [])``."""
    bad = ~jnp.all(jnp.isfinite(state.pipeline_state), axis=-1)
    return select_envs(bad, reset_state, state), jnp.sum(bad)
