"""One entry point for both learners: ``make_trainer(config)``.

The trainer's functions are pure and unbatched over seeds; callers batch seeds with ``jax.vmap`` over
keys. ``chunk`` runs ``updates_per_chunk`` updates in a ``lax.scan`` and then evaluates, so a host loop can
log, checkpoint and show progress between chunks; ``train(key)`` is the whole run as one function."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from apg_jax import envs
from apg_jax.agents.apg import make_apg
from apg_jax.agents.ppo import make_ppo
from apg_jax.config import ConfigError, Schedule, TrainConfig, schedule, validate
from apg_jax.evaluation import evaluate
from apg_jax.networks import deterministic_action


@struct.dataclass
class TrainState:
    learner: Any  #: APGState or PPOState
    eval_key: jax.Array  #: fixed key of the evaluation environments
    updates: jax.Array  #: [] int32 updates done


class Trainer(NamedTuple):
    env: envs.DiffEnv
    config: TrainConfig
    schedule: Schedule
    actor: Any  #: flax Actor module
    init: Callable  #: key -> TrainState
    update: Callable  #: learner state -> (learner state, metrics): one APG segment / PPO rollout
    chunk: Callable  #: TrainState -> (TrainState, metrics of scalars)
    evaluate: Callable  #: TrainState -> {"eval_return", "eval_success"}
    train: Callable  #: key -> (TrainState, metrics [num_chunks])


def make_trainer(config: TrainConfig, env: envs.DiffEnv | None = None) -> Trainer:
    """Validate ``config`` and build the trainer (raises ``ConfigError`` before any compilation).
    ``env`` replaces ``envs.make(config.task)``: a task instance with changed parameters or a pinned
    implementation (the benchmark's reference), whose name must be ``config.task``."""
    if env is None:
        try:
            env = envs.make(config.task)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    elif env.name != config.task:
        raise ConfigError(f"env '{env.name}' given for config.task '{config.task}'; pass the task's own env")
    validate(config, env.episode_length)
    sched = schedule(config, env.episode_length)
    make_learner = make_apg if config.algo == "apg" else make_ppo
    learner_init, learner_update, actor = make_learner(env, config, sched)

    def init(key):
        return TrainState(learner_init(jax.random.fold_in(key, 0)), jax.random.fold_in(key, 1),
                          jnp.zeros((), jnp.int32))

    def evaluate_state(state: TrainState):
        learner = state.learner
        act = lambda obs: deterministic_action(actor, learner.actor_params, learner.obs_stats, obs)
        return evaluate(env, act, state.eval_key, config.num_eval_envs)

    def chunk(state: TrainState):
        learner, per_update = jax.lax.scan(lambda s, _: learner_update(s), state.learner, None,
                                           length=sched.updates_per_chunk)
        state = TrainState(learner, state.eval_key, state.updates + sched.updates_per_chunk)
        metrics = {name: (jnp.sum(v) if name in ("skipped_updates", "nonfinite_envs") else jnp.nanmean(v))
                   for name, v in per_update.items()}
        return state, {**metrics, **evaluate_state(state)}

    def train(key):
        return jax.lax.scan(lambda s, _: chunk(s), init(key), None, length=sched.num_chunks)

    return Trainer(env, config, sched, actor, init, learner_update, chunk, evaluate_state, train)


def seed_keys(first_seed: int, num_seeds: int) -> jax.Array:
    """Keys ``[num_seeds, 2]`` for seeds ``first_seed .. first_seed + num_seeds - 1``."""
    return jax.vmap(jax.random.PRNGKey)(jnp.arange(first_seed, first_seed + num_seeds))


def step_counts(sched: Schedule, updates: int) -> dict:
    """Environment and gradient steps consumed after ``updates`` updates."""
    return {"env_steps": updates * sched.steps_per_update,
            "actor_grad_steps": updates * sched.actor_steps_per_update,
            "critic_grad_steps": updates * sched.critic_steps_per_update}
