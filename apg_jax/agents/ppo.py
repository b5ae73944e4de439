"""PPO with the same networks, observation normalisation, optimizer and evaluation as APG.

Each update collects ``rollout_length`` steps from every environment with the Gaussian policy (actions
clipped to [-1, 1] by the task), computes GAE(lambda) advantages on rewards scaled by ``reward_scale``
(an episode truncated by the time limit is bootstrapped with the value of the state it reached, a
terminated one is not; as APG's critic), and runs ``ppo_epochs`` passes of ``num_minibatches`` minibatch
steps on the clipped surrogate - entropy bonus (actor) and the value loss (critic). Actor and critic have
their own Adam states with the same settings, so the two losses need no relative weight; each minibatch
step counts one actor and one critic gradient step. Training episodes start from staggered clocks
(``stagger_clocks``), as APG's.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from apg_jax.envs.batch import (curriculum_difficulty, replace_nonfinite, reset_batch, stagger_clocks,
                                step_with_reset, terminated)
from apg_jax.agents.returns import compute_gae
from apg_jax.config import Schedule, TrainConfig
from apg_jax.envs.base import DiffEnv, State
from apg_jax.networks import gaussian_entropy, gaussian_log_prob, init_params, make_networks
from apg_jax.normalization import RunningStats, init_stats, normalize, update_stats
from apg_jax.optim import global_norm, guarded_update, make_optimizer


@struct.dataclass
class PPOState:
    actor_params: Any
    critic_params: Any
    actor_opt: Any
    critic_opt: Any
    obs_stats: RunningStats
    env_state: State  #: batched, leaves [num_envs, ...]
    key: jax.Array
    env_steps: jax.Array  #: [] int32 env steps collected (all envs; the curriculum counts them)


class Batch(NamedTuple):
    """Training data of one rollout, flattened to ``[T * N, ...]`` before minibatching."""

    obs: jax.Array
    actions: jax.Array
    log_probs: jax.Array
    advantages: jax.Array
    returns: jax.Array


def clipped_surrogate_loss(log_probs, old_log_probs, advantages, clip_eps: float, normalize_advantages: bool):
    """PPO's clipped surrogate objective, negated (a loss), of transitions with ``log_probs [M]`` under
    the current policy, ``old_log_probs [M]`` under the one that acted, and ``advantages [M]``."""
    ratio = jnp.exp(log_probs - old_log_probs)
    if normalize_advantages:
        advantages = (advantages - jnp.mean(advantages)) / (jnp.std(advantages) + 1e-8)
    return -jnp.mean(jnp.minimum(ratio * advantages, jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * advantages))


def ppo_loss(actor_params, critic_params, batch: Batch, obs_stats, *, actor, critic, clip_eps, ent_coef,
             normalize_advantages):
    """Clipped surrogate - ``ent_coef`` * entropy (a function of the actor only) + value MSE (of the
    critic only); returns (loss, aux dict)."""
    inputs = normalize(obs_stats, batch.obs)
    mean, log_std = actor.apply(actor_params, inputs)
    log_probs = gaussian_log_prob(batch.actions, mean, log_std)
    policy_loss = clipped_surrogate_loss(log_probs, batch.log_probs, batch.advantages, clip_eps,
                                         normalize_advantages)
    value_loss = jnp.mean((critic.apply(critic_params, inputs) - batch.returns) ** 2)
    entropy = gaussian_entropy(log_std)
    loss = policy_loss - ent_coef * entropy + value_loss
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}


def make_ppo(env: DiffEnv, config: TrainConfig, sched: Schedule):
    """Returns ``(init(key) -> PPOState, update(PPOState) -> (PPOState, metrics), actor)``."""
    actor, critic = make_networks(env.action_size, config.hidden_sizes, config.activation,
                                  config.init_log_std)
    steps_total = sched.num_updates * sched.actor_steps_per_update
    actor_optimizer = make_optimizer(config.learning_rate, config.max_grad_norm, config.lr_schedule,
                                     steps_total, config.adam_betas)
    critic_optimizer = make_optimizer(config.critic_learning_rate, config.max_grad_norm,
                                      config.lr_schedule, steps_total, config.adam_betas)
    t_len, n = sched.segment_length, config.num_envs
    batch_size = t_len * n
    minibatch = batch_size // config.num_minibatches

    def init(key):
        k_params, k_env, k_clock, key = jax.random.split(key, 4)
        actor_params, critic_params = init_params(actor, critic, k_params, env.observation_size)
        env_state = reset_batch(env, k_env, n, curriculum_difficulty(config, jnp.zeros(())))
        if config.stagger_clocks:
            env_state = stagger_clocks(env, env_state, k_clock)
        return PPOState(actor_params, critic_params, actor_optimizer.init(actor_params),
                        critic_optimizer.init(critic_params), init_stats(env.observation_size), env_state, key,
                        jnp.zeros((), jnp.int32))

    def collect(state: PPOState, reset_state, key):
        def body(env_state, k):
            inputs = normalize(state.obs_stats, env_state.obs)
            mean, log_std = actor.apply(state.actor_params, inputs)
            action = mean + jnp.exp(log_std) * jax.random.normal(k, mean.shape)
            value = critic.apply(state.critic_params, inputs)
            next_state, stepped = step_with_reset(env, env_state, action, reset_state)
            next_value = critic.apply(state.critic_params, normalize(state.obs_stats, stepped.obs))
            ended = stepped.done
            term = terminated(stepped) if config.truncation_bootstrap else ended
            out = (env_state.obs, action, gaussian_log_prob(action, mean, log_std), value, next_value,
                   stepped.reward, term, ended)
            return next_state, out

        return jax.lax.scan(body, state.env_state, jax.random.split(key, t_len))

    def sgd_step(carry, minibatch_data: Batch, obs_stats):
        actor_params, critic_params, actor_opt, critic_opt = carry
        grad_fn = jax.value_and_grad(ppo_loss, argnums=(0, 1), has_aux=True)
        (loss, aux), (g_actor, g_critic) = grad_fn(
            actor_params, critic_params, minibatch_data, obs_stats, actor=actor, critic=critic,
            clip_eps=config.clip_eps, ent_coef=config.ent_coef,
            normalize_advantages=config.normalize_advantages)
        actor_params, actor_opt, skip_a = guarded_update(actor_optimizer, g_actor, actor_opt, actor_params)
        critic_params, critic_opt, skip_c = guarded_update(critic_optimizer, g_critic, critic_opt,
                                                           critic_params)
        stats = {"loss": loss, **aux, "grad_norm": global_norm(g_actor), "skipped": skip_a + skip_c}
        return (actor_params, critic_params, actor_opt, critic_opt), stats

    def update(state: PPOState):
        key, k_reset, k_collect, k_perm = jax.random.split(state.key, 4)
        reset_state = reset_batch(env, k_reset, n, curriculum_difficulty(config, state.env_steps))
        final, (obs, actions, log_probs, values, next_values, rewards, terms, ends) = collect(
            state, reset_state, k_collect)
        advantages, returns = compute_gae(rewards * config.reward_scale, values, next_values, terms, ends,
                                          config.gamma, config.gae_lambda)
        flat = lambda x: x.reshape((batch_size,) + x.shape[2:])
        data = Batch(flat(obs), flat(actions), flat(log_probs), flat(advantages), flat(returns))

        def epoch(carry, k):
            perm = jax.random.permutation(k, batch_size)
            shuffled = jax.tree.map(lambda x: x[perm].reshape((config.num_minibatches, minibatch) + x.shape[1:]),
                                    data)
            return jax.lax.scan(lambda c, mb: sgd_step(c, mb, state.obs_stats), carry, shuffled)

        carry = (state.actor_params, state.critic_params, state.actor_opt, state.critic_opt)
        carry, stats = jax.lax.scan(epoch, carry, jax.random.split(k_perm, config.ppo_epochs))
        actor_params, critic_params, actor_opt, critic_opt = carry
        env_state, n_bad = replace_nonfinite(final, reset_state)
        state = PPOState(actor_params, critic_params, actor_opt, critic_opt,
                         update_stats(state.obs_stats, obs), env_state, key, state.env_steps + batch_size)
        metrics = {"actor_loss": jnp.mean(stats["policy_loss"]), "critic_loss": jnp.mean(stats["value_loss"]),
                   "grad_norm": jnp.mean(stats["grad_norm"]), "skipped_updates": jnp.sum(stats["skipped"]),
                   "nonfinite_envs": n_bad.astype(jnp.float32), "train_reward": jnp.mean(rewards)}
        return state, metrics

    return init, update, actor
