"""One entry point for both learners: ``make_trainer(config)``.

The trainer's functions are pure and unbatched over seeds; callers batch seeds with ``jax.vmap`` over
keys. ``chunk`` runs ``updates_per_chunk`` updates in a ``lax.scan`` and then evaluates, so a host loop can
log, checkpoint and show progress between chunks; ``train(key)`` is the whole run as one function."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from apg_jax import envs
from apg_jax.adaptive import choose_length, confirm_length, over_updates, reference_length
from apg_jax.agents.apg import make_apg
from apg_jax.agents.ppo import make_ppo
from apg_jax.config import SEGMENT_ALGOS, ConfigError, Schedule, TrainConfig, schedule, validate
from apg_jax.envs.randomized import RandomizedPhysics
from apg_jax.evaluation import evaluate
from apg_jax.networks import deterministic_action, init_params, make_networks


@struct.dataclass
class TrainState:
    learner: Any  #: APGState or PPOState
    eval_key: jax.Array  #: fixed key of the evaluation environments
    updates: jax.Array  #: [] int32 learner updates done (APG: actor steps; PPO: rollouts)
    length_index: jax.Array  #: [] int32 index into ``Schedule.segment_lengths`` of the APG length in use
    pending_index: jax.Array  #: [] int32 the length the adaptive rule has proposed ``pending_count`` times in
    pending_count: jax.Array  #: [] int32 a row without switching to it (``adapt_confirmations``; 0: none)


class Trainer(NamedTuple):
    env: envs.DiffEnv
    config: TrainConfig
    schedule: Schedule
    actor: Any  #: flax Actor module
    init: Callable  #: key -> TrainState
    update: Callable  #: learner state -> (learner state, metrics): one APG segment (of the first length) /
    #: PPO rollout
    chunk: Callable  #: TrainState -> (TrainState, metrics of scalars); with several segment lengths a
    #: ``lax.switch`` on ``length_index`` (batch seeds with ``lax.map``, not ``vmap``, which runs every branch)
    evaluate: Callable  #: TrainState -> {"eval_return", "eval_success"}
    train: Callable  #: key -> (TrainState, metrics [num_chunks])
    paired_seeds: tuple | None  #: with ``init_policy_seed="paired"`` the seeds ``init`` can start (the source's);
    #: callers check theirs with ``check_paired_seeds``


def make_trainer(config: TrainConfig, env: envs.DiffEnv | None = None) -> Trainer:
    """Validate ``config`` and build the trainer (raises ``ConfigError`` before any compilation).
    ``env`` replaces ``envs.make(config.task)``: a task instance with changed parameters or a pinned
    implementation (the benchmark's reference), whose name must be ``config.task``. With
    ``config.randomize`` the learners train on ``RandomizedPhysics(env, ...)`` and evaluation stays on
    ``env`` (``Trainer.env``)."""
    if env is None:
        try:
            env = envs.make(config.task, **config.env_params)
        except (TypeError, ValueError) as err:
            raise ConfigError(str(err)) from None
    elif env.name != config.task:
        raise ConfigError(f"env '{env.name}' given for config.task '{config.task}'; pass the task's own env")
    validate(config, env.episode_length)  # (train_episode_length itself, before the training task is built)
    train_env = env  # the learners' task; evaluation keeps the nominal one (and its horizon)
    if config.train_episode_length is not None:
        train_env = env.with_episode_length(config.train_episode_length)
    if config.randomize:
        try:
            train_env = RandomizedPhysics(train_env, config.randomize)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    validate(config, train_env.episode_length)
    if config.curriculum > 0 and not env.has_curriculum:
        raise ConfigError(f"task '{config.task}' has no curriculum (sample_training_q); set curriculum=0")
    sched = schedule(config, train_env.episode_length)
    if config.algo in SEGMENT_ALGOS:
        parts = make_apg(train_env, config, sched)
        learner_init, learner_updates, actor, probe = parts.init, parts.updates, parts.actor, parts.probe
    else:
        learner_init, learner_update, actor = make_ppo(train_env, config, sched)
        learner_updates, probe = (learner_update,), None
    lengths = sched.segment_lengths or (sched.segment_length,)
    #: updates one chunk makes at each length (the same env steps: the largest length's macro-updates)
    chunk_updates = [sched.updates_per_chunk * (sched.segment_length // k) for k in lengths]

    def choose(learner, current):
        """``(length index, logged statistics, LadderStatistics)`` of the adaptive rule; with a single length
        the index in use, no statistics and None."""
        if probe is None:  # (the input itself, so a seed-sharded state keeps its sharding)
            return jnp.asarray(current, jnp.int32), {}, None
        stats = probe(learner)
        judged = over_updates(stats, chunk_updates) if config.adapt_snr_over == "chunk" else stats
        index = choose_length(judged, current, config.adapt_min_snr, config.adapt_min_cosine, config.adapt_cosine_z,
                              config.adapt_hold_on_noise)
        reference, _ = reference_length(judged, config.adapt_min_snr)
        return index, {"segment_snr": stats.snr[index],
                       "segment_cosine": stats.cosine[index, jnp.maximum(reference, 0)]}, stats

    start_from = initial_policy(config, env) if config.init_policy else None

    def init(key):
        learner = learner_init(jax.random.fold_in(key, 0))
        if start_from is not None:
            params, stats, source_seeds = start_from
            # the source's entry whose seed key is ``key`` (the first where none is: check_paired_seeds)
            index = jnp.argmax(jnp.all(seed_keys_of(source_seeds) == key, axis=-1))
            pick = lambda tree: jax.tree.map(lambda x: x[index], tree)
            learner = learner.replace(actor_params=pick(params), obs_stats=pick(stats))
        start = jnp.asarray(len(lengths) // 2, jnp.int32)  # kept only if no length is reliable at the start
        index = choose(learner, start)[0]  # the first choice needs no confirmation
        zero = jnp.zeros((), jnp.int32)
        return TrainState(learner, evaluation_key(config, key), zero, index, index, zero)

    def evaluate_state(state: TrainState):
        learner = state.learner
        act = lambda obs: deterministic_action(actor, learner.actor_params, learner.obs_stats, obs)
        return evaluate(env, act, state.eval_key, config.num_eval_envs)

    def updates_at(i: int):
        """``learner -> (learner, metrics)``: ``updates_per_chunk`` macro-updates at length ``lengths[i]``."""
        updates = chunk_updates[i]

        def run(learner):
            learner, per_update = jax.lax.scan(lambda s, _: learner_updates[i](s), learner, None, length=updates)
            metrics = {name: (jnp.sum(v) if name in ("skipped_updates", "nonfinite_envs") else jnp.nanmean(v))
                       for name, v in per_update.items()}
            return learner, metrics, jnp.asarray(updates, jnp.int32)
        return run

    branches = [updates_at(i) for i in range(len(lengths))]

    def chunk(state: TrainState):
        """A chunk of updates at the length in use, then the evaluation (and the adaptive rule's choice of
        the next chunk's length)."""
        if len(branches) == 1:
            learner, metrics, updates = branches[0](state.learner)
        else:
            learner, metrics, updates = jax.lax.switch(state.length_index, branches, state.learner)
        if config.algo in SEGMENT_ALGOS:
            metrics["segment_length"] = jnp.asarray(lengths, jnp.float32)[state.length_index]
        index, stats, ladder = choose(learner, state.length_index)
        pending, count = state.pending_index, state.pending_count
        if ladder is not None and config.adapt_confirmations > 1:
            index, pending, count = confirm_length(index, state.length_index, pending, count,
                                                   ladder.finite[state.length_index], config.adapt_confirmations)
        if config.adapt_reset_optimizer and len(branches) > 1:
            learner = restart_actor_optimizer(learner, index != state.length_index)
        if config.adapt_rescale_optimizer and len(branches) > 1:
            scale = jnp.where(index != state.length_index,
                              gradient_scale_ratio(ladder.norm, state.length_index, index, config.max_grad_norm), 1.0)
            learner = rescale_actor_optimizer(learner, scale)
            stats["optimizer_rescale"] = scale
        state = TrainState(learner, state.eval_key, state.updates + updates, index, pending, count)
        return state, {**metrics, **stats, **evaluate_state(state)}

    def train(key):
        return jax.lax.scan(lambda s, _: chunk(s), init(key), None, length=sched.num_chunks)

    paired = start_from[2] if config.init_policy_seed == "paired" else None
    return Trainer(env, config, sched, actor, init, learner_updates[0], chunk, evaluate_state, train, paired)


def check_paired_seeds(trainer: Trainer, first_seed: int, num_seeds: int) -> None:
    """``ConfigError`` unless every seed ``first_seed .. + num_seeds - 1`` has its own source policy (with
    ``init_policy_seed="paired"``; nothing to check otherwise)."""
    if trainer.paired_seeds is None:
        return
    missing = sorted(set(range(first_seed, first_seed + num_seeds)) - set(trainer.paired_seeds))
    if missing:
        raise ConfigError(f"init_policy_seed='paired': {trainer.config.init_policy} holds seeds "
                          f"{list(trainer.paired_seeds)}, not {missing}; train only those seeds (--seed, --seeds) "
                          f"or start every seed from one with init_policy_seed=S")


def initial_policy(config: TrainConfig, env: envs.DiffEnv):
    """``(actor_params, obs_stats, seeds)`` of the finished run ``config.init_policy``, each with a leading axis
    over ``seeds`` (a tuple): its seed ``config.init_policy_seed`` (None: its first) or, "paired", all of
    them; checked against ``config``'s task and networks (``ConfigError`` otherwise)."""
    import numpy as np

    from apg_jax import rundir
    from apg_jax.normalization import RunningStats

    source = config.init_policy
    try:
        source_config, _ = rundir.read_config(source)
        arrays = rundir.load_policy_arrays(source)
    except (OSError, ValueError) as err:
        raise ConfigError(f"init_policy: {err}") from None
    mismatched = [f"{name} {getattr(source_config, name)!r} (here {getattr(config, name)!r})"
                  for name in ("task", "hidden_sizes", "activation") if getattr(source_config, name) != getattr(config, name)]
    if mismatched:
        raise ConfigError(f"init_policy {source} has another actor: " + ", ".join(mismatched))
    seeds = [int(s) for s in np.asarray(arrays["seeds"]).ravel()]
    chosen = seeds if config.init_policy_seed == "paired" else [
        seeds[0] if config.init_policy_seed is None else config.init_policy_seed]
    if chosen[0] not in seeds:
        raise ConfigError(f"init_policy_seed {chosen[0]} is not in {source}; it holds seeds {seeds}")
    rows = np.array([seeds.index(seed) for seed in chosen])
    pick = lambda tree: jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[rows], jnp.float32), tree)
    params, stats = pick(arrays["actor_params"]), RunningStats(**pick(arrays["obs_stats"]))
    if config.init_policy_log_std is not None:
        log_std = jnp.full_like(params["params"]["log_std"], config.init_policy_log_std)
        params = {**params, "params": {**params["params"], "log_std": log_std}}
    actor, critic = make_networks(env.action_size, config.hidden_sizes, config.activation, config.init_log_std)
    expected = jax.eval_shape(lambda: init_params(actor, critic, jax.random.PRNGKey(0), env.observation_size)[0])
    shapes = lambda tree: jax.tree.map(lambda x: tuple(x.shape), tree)
    one = lambda tree: jax.tree.map(lambda x: x[0], tree)
    if shapes(one(params)) != shapes(expected) or stats.mean.shape[1:] != (env.observation_size,):
        raise ConfigError(f"init_policy {source}: its actor's arrays do not fit this task's actor "
                          f"({shapes(one(params))} against {shapes(expected)})")
    return params, stats, tuple(chosen)


def restart_actor_optimizer(learner, restart: jax.Array):
    """``learner`` with its actor's optimizer state back at its initial value where ``restart`` ([] bool):
    every leaf of the clip-then-Adam chain's state (moments, step counts) starts at zero."""
    fresh = lambda x: jnp.where(restart, jnp.zeros_like(x), x)
    return learner.replace(actor_opt=jax.tree.map(fresh, learner.actor_opt))


def gradient_scale_ratio(norms: jax.Array, old: jax.Array, new: jax.Array, max_grad_norm: float) -> jax.Array:
    """``[]``: the scale of the gradients Adam will see at ladder length ``new`` relative to ``old``, from the
    probe's batch-mean gradient norms ``norms [R]`` (each an estimate of the update's gradient norm, noise
    included), both clipped at ``max_grad_norm`` as the optimizer clips them; 1 where either is not a
    positive finite number."""
    clipped = jnp.minimum(norms, max_grad_norm)
    a, b = clipped[old], clipped[new]
    usable = jnp.isfinite(a) & jnp.isfinite(b) & (a > 0) & (b > 0)
    return jnp.where(usable, b / jnp.where(usable, a, 1.0), 1.0)


def rescale_actor_optimizer(learner, scale: jax.Array):
    """``learner`` with its actor's Adam moments rescaled to gradients ``scale`` ([]) times as large: the
    first moment by ``scale``, the second by ``scale**2`` (step counts, hence bias corrections, kept)."""
    def rescale(node):
        if isinstance(node, optax.ScaleByAdamState):
            return node._replace(mu=jax.tree.map(lambda x: x * scale, node.mu),
                                 nu=jax.tree.map(lambda x: x * scale**2, node.nu))
        return node
    is_adam = lambda node: isinstance(node, optax.ScaleByAdamState)
    return learner.replace(actor_opt=jax.tree.map(rescale, learner.actor_opt, is_leaf=is_adam))


def evaluation_key(config: TrainConfig, seed_key: jax.Array) -> jax.Array:
    """Key of the fixed evaluation starts of the seed whose key is ``seed_key``: drawn from the seed's own
    stream, or from ``config.eval_seed`` (the same starts for every seed and algorithm) when it is set."""
    if config.eval_seed is not None:
        return jax.random.PRNGKey(config.eval_seed)
    return jax.random.fold_in(seed_key, 1)


def seed_keys(first_seed: int, num_seeds: int) -> jax.Array:
    """Keys ``[num_seeds, 2]`` for seeds ``first_seed .. first_seed + num_seeds - 1``."""
    return seed_keys_of(range(first_seed, first_seed + num_seeds))


def seed_keys_of(seeds) -> jax.Array:
    """Keys ``[len(seeds), 2]`` of the seed numbers ``seeds``."""
    return jax.vmap(jax.random.PRNGKey)(jnp.asarray(list(seeds)))


def step_counts(sched: Schedule, chunk: int, updates: int) -> dict:
    """Environment and gradient steps consumed after ``chunk`` chunks holding ``updates`` learner updates
    (``TrainState.updates``: with the adaptive segment length it depends on the lengths chosen)."""
    return {"env_steps": chunk * sched.updates_per_chunk * sched.steps_per_update,
            "actor_grad_steps": updates * sched.actor_steps_per_update,
            "critic_grad_steps": updates * sched.critic_steps_per_update}
