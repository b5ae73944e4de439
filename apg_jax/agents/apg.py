"""Analytic policy gradients with segmented backpropagation through the differentiable dynamics.

Training runs in segments of K steps from the current environment states. The state entering a segment
is ``stop_gradient``-ed, so a segment's gradient never reaches earlier segments' actions. The actor
ascends the segment objective

    J = mean_envs [ sum_{t<K} gamma^t r_t  (+ gamma^K V(s_K) in ``critic`` mode) ],

differentiated end to end through ``env.step`` (and through ``s_K`` into the frozen critic). The discount
restarts when an episode ends inside a segment, and an ended episode is not bootstrapped. In ``critic``
mode the critic is then fitted to TD(lambda) targets from a slowly updated target critic (one shuffled
pass over the segment in ``critic_updates`` minibatch steps). K equal to the
horizon (synchronised episodes, so each segment is one whole episode) is plain full-horizon BPTT.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from apg_jax.envs.batch import replace_nonfinite, reset_batch, step_with_reset
from apg_jax.agents.returns import compute_gae
from apg_jax.config import Schedule, TrainConfig
from apg_jax.envs.base import DiffEnv, State
from apg_jax.networks import make_networks, init_params
from apg_jax.normalization import RunningStats, init_stats, normalize, update_stats
from apg_jax.optim import guarded_update, make_optimizer


@struct.dataclass
class APGState:
    actor_params: Any
    critic_params: Any
    target_critic_params: Any
    actor_opt: Any
    critic_opt: Any
    obs_stats: RunningStats
    env_state: State  #: batched, leaves [num_envs, ...]
    key: jax.Array


class Segment(NamedTuple):
    """What a segment rollout leaves for the critic and the normaliser (all gradient-free)."""

    obs: jax.Array  #: [K, N, obs] observation before each step
    rewards: jax.Array  #: [K, N]
    dones: jax.Array  #: [K, N] 1 where the episode ended at that step
    final_state: State  #: s_K, leaves [N, ...]


def segment_objective(actor_params, critic_params, obs_stats, env_state, reset_state, noise, *,
                      env: DiffEnv, actor, critic, gamma: float, bootstrap: str):
    """Mean over envs of the segment's discounted return (+ bootstrap); differentiable in actor params.

    ``env_state`` (leaves ``[N, ...]``) is cut from the graph; ``reset_state`` restarts ended episodes;
    ``noise [K, N, act]`` is scaled by the policy's std (zeros for a deterministic policy).
    Returns ``(objective [], Segment)``."""
    start = jax.lax.stop_gradient(env_state)

    def body(carry, eps):
        state, discount, total = carry
        mean, log_std = actor.apply(actor_params, normalize(obs_stats, state.obs))
        action = mean + jnp.exp(log_std) * eps
        next_state, stepped = step_with_reset(env, state, action, reset_state)
        total = total + discount * stepped.reward
        discount = jnp.where(stepped.done > 0, 1.0, discount * gamma)
        out = (jax.lax.stop_gradient(state.obs), jax.lax.stop_gradient(stepped.reward), stepped.done)
        return (next_state, discount, total), out

    n = start.reward.shape[0]
    ones, zeros = jnp.ones((n,), start.reward.dtype), jnp.zeros((n,), start.reward.dtype)
    (final, discount, total), (obs, rewards, dones) = jax.lax.scan(body, (start, ones, zeros), noise)
    if bootstrap == "critic":
        value = critic.apply(jax.lax.stop_gradient(critic_params), normalize(obs_stats, final.obs))
        total = total + discount * value
    return jnp.mean(total), Segment(obs, rewards, dones, jax.lax.stop_gradient(final))


def critic_targets(critic, target_params, obs_stats, segment: Segment, gamma: float, lam: float):
    """TD(lambda) targets ``[K, N]`` for the segment's observations from the target critic."""
    values = critic.apply(target_params, normalize(obs_stats, segment.obs))
    last = critic.apply(target_params, normalize(obs_stats, segment.final_state.obs))
    _, targets = compute_gae(segment.rewards, values, segment.dones, last, gamma, lam)
    return targets


def make_apg(env: DiffEnv, config: TrainConfig, sched: Schedule):
    """Returns ``(init(key) -> APGState, update(APGState) -> (APGState, metrics), actor)``."""
    actor, critic = make_networks(env.action_size, config.hidden_sizes, config.activation,
                                  config.init_log_std)
    actor_optimizer = make_optimizer(config.learning_rate, config.max_grad_norm, config.lr_schedule,
                                     sched.num_updates)
    critic_optimizer = make_optimizer(config.critic_learning_rate, config.max_grad_norm,
                                      config.lr_schedule, sched.num_updates * config.critic_updates)
    use_critic = config.bootstrap == "critic"
    k, n = sched.segment_length, config.num_envs

    def init(key):
        k_params, k_env, key = jax.random.split(key, 3)
        actor_params, critic_params = init_params(actor, critic, k_params, env.observation_size)
        return APGState(actor_params, critic_params, critic_params, actor_optimizer.init(actor_params),
                        critic_optimizer.init(critic_params), init_stats(env.observation_size),
                        reset_batch(env, k_env, n), key)

    def fit_critic(state: APGState, segment: Segment, key):
        """One shuffled pass over the segment in ``critic_updates`` minibatch steps."""
        targets = critic_targets(critic, state.target_critic_params, state.obs_stats, segment,
                                 config.gamma, config.td_lambda).reshape(-1)
        inputs = normalize(state.obs_stats, segment.obs).reshape(targets.shape[0], -1)
        size = targets.shape[0] // config.critic_updates
        order = jax.random.permutation(key, targets.shape[0])[: size * config.critic_updates]
        batches = (inputs[order].reshape(config.critic_updates, size, -1),
                   targets[order].reshape(config.critic_updates, size))

        def critic_step(carry, batch):
            params, opt = carry
            x, y = batch
            loss, grads = jax.value_and_grad(lambda p: jnp.mean((critic.apply(p, x) - y) ** 2))(params)
            params, opt, skipped = guarded_update(critic_optimizer, grads, opt, params)
            return (params, opt), (loss, skipped)

        (params, opt), (losses, skipped) = jax.lax.scan(critic_step, (state.critic_params, state.critic_opt),
                                                        batches)
        target = optax.incremental_update(params, state.target_critic_params, config.target_tau)
        return params, opt, target, jnp.mean(losses), jnp.sum(skipped)

    def update(state: APGState):
        key, k_reset, k_noise, k_critic = jax.random.split(state.key, 4)
        reset_state = reset_batch(env, k_reset, n)
        noise = (jax.random.normal(k_noise, (k, n, env.action_size)) if config.exploration_noise
                 else jnp.zeros((k, n, env.action_size)))

        def loss_fn(actor_params):
            objective, segment = segment_objective(
                actor_params, state.critic_params, state.obs_stats, state.env_state, reset_state, noise,
                env=env, actor=actor, critic=critic, gamma=config.gamma, bootstrap=config.bootstrap)
            return -objective, segment

        (loss, segment), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.actor_params)
        actor_params, actor_opt, skipped = guarded_update(actor_optimizer, grads, state.actor_opt,
                                                          state.actor_params)
        state = state.replace(actor_params=actor_params, actor_opt=actor_opt)
        critic_loss, critic_skipped = jnp.zeros(()), jnp.zeros(())
        if use_critic:
            params, opt, target, critic_loss, critic_skipped = fit_critic(state, segment, k_critic)
            state = state.replace(critic_params=params, critic_opt=opt, target_critic_params=target)
        env_state, n_bad = replace_nonfinite(segment.final_state, reset_state)
        state = state.replace(obs_stats=update_stats(state.obs_stats, segment.obs), env_state=env_state,
                              key=key)
        metrics = {"actor_loss": loss, "critic_loss": critic_loss, "grad_norm": optax.tree.norm(grads),
                   "skipped_updates": skipped + critic_skipped, "nonfinite_envs": n_bad.astype(jnp.float32),
                   "train_reward": jnp.mean(segment.rewards)}
        return state, metrics

    return init, update, actor
