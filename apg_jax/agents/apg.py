"""Analytic policy gradients with segmented backpropagation through the differentiable dynamics.

Training runs in segments of K steps from the current environment states. The state entering a segment
is ``stop_gradient``-ed, so a segment's gradient never reaches earlier segments' actions. The actor
ascends the segment objective (rewards scaled by ``reward_scale``)

    J = mean_envs [ sum_{t<K} gamma^t r_t  (+ gamma^K V(s_K) in ``critic`` mode) ],

differentiated end to end through ``env.step`` (and through ``s_K`` into the frozen critic). Episodes
end inside a segment by the time limit (truncation) or a terminal state (termination); the discount then
restarts with the next episode. In ``critic`` mode a truncated episode is credited with
``gamma V(s_T)`` of the state it reached (differentiated through ``s_T``, as SHAC does), a terminated one
with nothing. The critic is fitted after every segment to TD(lambda) targets of a target critic:
``critic_epochs`` shuffled passes of ``critic_minibatches`` minibatches, then a Polyak update. During
the first ``critic_warmup_steps`` env steps the critic is fitted but left out of the actor's objective
(the actor ascends the ``mc`` objective), so an unfitted critic's ``dV/ds_K`` never steers the actor.

A segment as long as the horizon, started with synchronised episodes (no clock staggering), is one whole
episode: plain full-horizon BPTT. Shorter segments start from staggered episode clocks
(``stagger_clocks``), so every update sees every phase of the episode.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.flatten_util import ravel_pytree

from apg_jax.adaptive import LadderStatistics, ladder_statistics
from apg_jax.agents.hybrid import log_likelihood, mix, reuse_segment, reward_to_go
from apg_jax.agents.returns import compute_gae
from apg_jax.config import Schedule, TrainConfig, exploring_envs, fits_critic
from apg_jax.envs.base import DiffEnv, State
from apg_jax.envs.batch import (curriculum_difficulty, replace_nonfinite, reset_batch, stagger_clocks,
                                step_with_reset, terminated)
from apg_jax.networks import init_params, make_networks
from apg_jax.normalization import RunningStats, init_stats, normalize, update_stats
from apg_jax.optim import global_norm, guarded_update, make_optimizer


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
    env_steps: jax.Array  #: [] int32 env steps trained on (all envs; the critic warm-up counts them)
    reuse_opt: Any = None  #: the hybrid's optimizer state of its PPO-style reuse passes (None otherwise)


class Segment(NamedTuple):
    """What a segment rollout leaves for the critic and the normaliser (all gradient-free)."""

    obs: jax.Array  #: [K, N, obs] observation before each step
    next_obs: jax.Array  #: [K, N, obs] observation the step reached (before an automatic reset)
    rewards: jax.Array  #: [K, N] scaled rewards
    terminated: jax.Array  #: [K, N] 1 where the step reached a terminal state (no value after it)
    ended: jax.Array  #: [K, N] 1 where the step ended its episode (terminated or truncated)
    final_state: State  #: s_K, leaves [N, ...]
    contributions: jax.Array  #: [K, N] each step's terms of the objective (discounted reward, bootstraps;
    #: the bootstrap at the cut is in the last step's)
    discounts: jax.Array  #: [K, N] discount of each step's reward within its episode


def segment_objective(actor_params, critic_params, obs_stats, env_state, reset_state, noise, *,
                      env: DiffEnv, actor, critic, gamma: float, bootstrap: str, reward_scale: float = 1.0,
                      truncation_bootstrap: bool = True, bootstrap_weight=1.0):
    """Mean over envs of the segment's discounted return (+ bootstraps); differentiable in actor params.

    ``env_state`` (leaves ``[N, ...]``, clocks in ``info["steps"]``) is cut from the graph; ``reset_state``
    restarts ended episodes; ``noise [K, N, act]`` is scaled by the policy's std (zeros for a deterministic
    policy). With ``truncation_bootstrap=False`` a truncation counts as a termination. ``bootstrap_weight``
    ([] scalar, 0 or 1) multiplies the critic's terms: 0 during the critic warm-up (the ``mc`` objective).
    Returns ``(objective [], Segment)``."""
    start = jax.lax.stop_gradient(env_state)
    value = lambda obs: critic.apply(jax.lax.stop_gradient(critic_params), normalize(obs_stats, obs))

    def body(carry, eps):
        state, discount, total = carry
        mean, log_std = actor.apply(actor_params, normalize(obs_stats, state.obs))
        next_state, stepped = step_with_reset(env, state, mean + jnp.exp(log_std) * eps, reset_state)
        reward = reward_scale * stepped.reward
        ended = stepped.done
        term = terminated(stepped) if truncation_bootstrap else ended
        total = total + discount * reward
        contribution = discount * reward
        if bootstrap == "critic":
            truncated = bootstrap_weight * discount * gamma * (ended - term) * value(stepped.obs)
            total = total + truncated
            contribution = contribution + truncated
        out = (jax.lax.stop_gradient(state.obs), jax.lax.stop_gradient(stepped.obs),
               jax.lax.stop_gradient(reward), term, ended, jax.lax.stop_gradient(contribution), discount)
        discount = jnp.where(ended > 0, 1.0, discount * gamma)
        return (next_state, discount, total), out

    n = start.reward.shape[0]
    ones, zeros = jnp.ones((n,), start.reward.dtype), jnp.zeros((n,), start.reward.dtype)
    (final, discount, total), (obs, next_obs, rewards, terms, ends, contributions, discounts) = jax.lax.scan(
        body, (start, ones, zeros), noise)
    if bootstrap == "critic":  # episodes still running at the cut (one that just ended was credited above)
        at_cut = bootstrap_weight * (1.0 - ends[-1]) * discount * value(final.obs)
        total = total + at_cut
        contributions = contributions.at[-1].add(jax.lax.stop_gradient(at_cut))
    return jnp.mean(total), Segment(obs, next_obs, rewards, terms, ends, jax.lax.stop_gradient(final),
                                    contributions, jax.lax.stop_gradient(discounts))


def segment_gae(critic, critic_params, obs_stats, segment: Segment, gamma: float, lam: float):
    """GAE(lambda) over the segment from ``critic_params``: ``(advantages [K, N], TD(lambda) returns [K, N])``,
    bootstrapped with the value of the state reached at the cut and at truncations (``compute_gae``)."""
    value = lambda obs: critic.apply(critic_params, normalize(obs_stats, obs))
    return compute_gae(segment.rewards, value(segment.obs), value(segment.next_obs), segment.terminated,
                       segment.ended, gamma, lam)


def critic_targets(critic, target_params, obs_stats, segment: Segment, gamma: float, lam: float):
    """TD(lambda) targets ``[K, N]`` for the segment's observations from the target critic."""
    return segment_gae(critic, target_params, obs_stats, segment, gamma, lam)[1]


def fit_critic(critic, optimizer, params, opt_state, inputs, targets, key, epochs: int, minibatches: int):
    """``epochs`` shuffled passes of ``minibatches`` guarded Adam steps on the squared error of
    ``critic(inputs [M, obs])`` against ``targets [M]``. Returns ``(params, opt_state, mean loss, skipped)``."""
    size = targets.shape[0] // minibatches

    def step(carry, batch):
        params, opt = carry
        x, y = batch
        loss, grads = jax.value_and_grad(lambda p: jnp.mean((critic.apply(p, x) - y) ** 2))(params)
        params, opt, skipped = guarded_update(optimizer, grads, opt, params)
        return (params, opt), (loss, skipped)

    def epoch(carry, k):
        order = jax.random.permutation(k, targets.shape[0])[: size * minibatches]
        batches = (inputs[order].reshape(minibatches, size, -1), targets[order].reshape(minibatches, size))
        return jax.lax.scan(step, carry, batches)

    (params, opt_state), (losses, skipped) = jax.lax.scan(epoch, (params, opt_state), jax.random.split(key, epochs))
    return params, opt_state, jnp.mean(losses), jnp.sum(skipped)


class APGParts(NamedTuple):
    init: Any  #: key -> APGState
    updates: tuple  #: updates[i](APGState) -> (APGState, metrics): one segment of ``segment_lengths[i]``
    actor: Any  #: flax Actor module
    probe: Any  #: APGState -> LadderStatistics of every length (None with a single length)
    draw: Any  #: (k_reset, k_noise, K, env_steps) -> (reset states, action noise [K, N, act]); env_steps
    #: grades the resets by the curriculum
    per_env_gradients: Any  #: (state, env_state, reset_state, noise) -> (objectives [N], Segment, [N, P])
    likelihood_gradients: Any  #: (state, Segment, noise) -> score-function gradients [N, P]


def make_apg(env: DiffEnv, config: TrainConfig, sched: Schedule) -> APGParts:
    """APG's learner (and the hybrid's: ``config.algo == "hybrid"`` mixes in the likelihood-ratio
    gradient, ``apg_jax.agents.hybrid``); see ``APGParts``."""
    actor, critic = make_networks(env.action_size, config.hidden_sizes, config.activation,
                                  config.init_log_std)
    actor_optimizer = make_optimizer(config.learning_rate, config.max_grad_norm, config.lr_schedule,
                                     sched.num_updates, config.adam_betas)
    critic_optimizer = make_optimizer(config.critic_learning_rate, config.max_grad_norm, config.lr_schedule,
                                      sched.num_updates * sched.critic_steps_per_update, config.adam_betas)
    hybrid = config.algo == "hybrid"
    reuse = hybrid and config.hybrid_reuse_epochs > 0
    reuse_steps = sched.num_updates * config.hybrid_reuse_epochs * config.num_minibatches  # its schedule's length
    reuse_optimizer = make_optimizer(config.hybrid_reuse_learning_rate or config.learning_rate,
                                     config.max_grad_norm, config.lr_schedule, reuse_steps,
                                     config.adam_betas) if reuse else None
    use_critic = fits_critic(config)
    lengths, n = sched.segment_lengths, config.num_envs
    split = hybrid and config.hybrid_explore_fraction < 1.0  # deterministic envs [:n - explorers], exploring rest
    explorers = exploring_envs(config) if hybrid else n
    # [N] 1 where an env acts stochastically; numpy, so that building the learner compiles nothing
    explore_mask = (np.arange(n) >= n - explorers).astype(np.float32)
    deterministic, exploring = slice(0, n - explorers), slice(n - explorers, n)  # the split's two sides
    stagger = config.stagger_clocks and lengths[0] < env.episode_length

    def init(key):
        k_params, k_env, k_clock, key = jax.random.split(key, 4)
        actor_params, critic_params = init_params(actor, critic, k_params, env.observation_size)
        env_state = reset_batch(env, k_env, n, curriculum_difficulty(config, jnp.zeros(())))
        if stagger:
            env_state = stagger_clocks(env, env_state, k_clock)
        return APGState(actor_params, critic_params, critic_params, actor_optimizer.init(actor_params),
                        critic_optimizer.init(critic_params), init_stats(env.observation_size), env_state, key,
                        jnp.zeros((), jnp.int32), reuse_optimizer.init(actor_params) if reuse else None)

    def objective(state: APGState, actor_params, env_state, reset_state, noise):
        """``(objective, Segment)`` of the segment ``noise [K, N', act]`` from ``env_state``."""
        return segment_objective(
            actor_params, state.critic_params, state.obs_stats, env_state, reset_state, noise, env=env,
            actor=actor, critic=critic, gamma=config.gamma, bootstrap=config.bootstrap,
            reward_scale=config.reward_scale, truncation_bootstrap=config.truncation_bootstrap,
            bootstrap_weight=(state.env_steps >= config.critic_warmup_steps).astype(noise.dtype))

    def draw(k_reset, k_noise, k, env_steps):
        """Reset states ``[N, ...]`` (graded by the curriculum after ``env_steps``) and action noise
        ``[k, N, act]`` (zeros for a deterministic policy and for the hybrid's deterministic envs)."""
        noise = (jax.random.normal(k_noise, (k, n, env.action_size)) * explore_mask[:, None]
                 if config.exploration_noise else jnp.zeros((k, n, env.action_size)))
        return reset_batch(env, k_reset, n, curriculum_difficulty(config, env_steps)), noise

    def make_update(k: int):
        def update(state: APGState):
            key, k_reset, k_noise, k_critic = jax.random.split(state.key, 4)  # (APG's streams as before)
            reset_state, noise = draw(k_reset, k_noise, k, state.env_steps)

            def loss_fn(actor_params):
                value, segment = objective(state, actor_params, state.env_state, reset_state, noise)
                return -value, segment

            extra = {}
            if hybrid:
                values, segment, analytic = per_env_gradients(state, state.env_state, reset_state, noise)
                advantages = likelihood_weights(state, segment)
                likelihood = likelihood_gradients(state, segment, noise, advantages)
                if split:
                    analytic, likelihood = analytic[deterministic], likelihood[exploring]
                mixture = mix(analytic, likelihood, config.hybrid_bias_z, paired=not split)
                unravel = ravel_pytree(state.actor_params)[1]
                loss, grads = -jnp.mean(values), unravel(-mixture.gradient)
                extra = {"analytic_weight": mixture.analytic_weight}
            else:
                (loss, segment), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.actor_params)
            actor_params, actor_opt, skipped = guarded_update(actor_optimizer, grads, state.actor_opt,
                                                              state.actor_params)
            if reuse:
                actor_params, reuse_opt, reuse_skipped = reuse_segment(
                    actor, reuse_optimizer, state.actor_params, actor_params, state.reuse_opt, state.obs_stats,
                    segment.obs[:, exploring], noise[:, exploring],
                    reuse_advantages(state, segment, advantages)[:, exploring], 1.0 - mixture.analytic_weight,
                    jax.random.fold_in(k_noise, 1), epochs=config.hybrid_reuse_epochs,
                    minibatches=config.num_minibatches, clip_eps=config.clip_eps,
                    normalize_advantages=config.normalize_advantages, ent_coef=config.ent_coef)
                state = state.replace(reuse_opt=reuse_opt)
                skipped = skipped + jnp.minimum(reuse_skipped, 1.0)
            state = state.replace(actor_params=actor_params, actor_opt=actor_opt)
            critic_loss, critic_skipped = jnp.zeros(()), jnp.zeros(())
            if use_critic:
                targets = critic_targets(critic, state.target_critic_params, state.obs_stats, segment,
                                         config.gamma, config.td_lambda).reshape(-1)
                inputs = normalize(state.obs_stats, segment.obs).reshape(targets.shape[0], -1)
                params, opt, critic_loss, critic_skipped = fit_critic(
                    critic, critic_optimizer, state.critic_params, state.critic_opt, inputs, targets, k_critic,
                    config.critic_epochs, config.critic_minibatches)
                target = optax.incremental_update(params, state.target_critic_params, config.target_tau)
                state = state.replace(critic_params=params, critic_opt=opt, target_critic_params=target)
            env_state, n_bad = replace_nonfinite(segment.final_state, reset_state)
            state = state.replace(obs_stats=update_stats(state.obs_stats, segment.obs), env_state=env_state,
                                  key=key, env_steps=state.env_steps + n * k)
            metrics = {"actor_loss": loss, "critic_loss": critic_loss, "grad_norm": global_norm(grads),
                       "skipped_updates": skipped + critic_skipped, "nonfinite_envs": n_bad.astype(jnp.float32),
                       "train_reward": jnp.mean(segment.rewards) / config.reward_scale, **extra}
            return state, metrics
        return update

    def one(tree):
        """A single environment's state as a batch of one."""
        return jax.tree.map(lambda x: x[None], tree)

    def per_env_gradients(state: APGState, env_state, reset_state, noise):
        """Per-environment segment objectives ``[N]``, the batch's ``Segment`` and flattened analytic
        gradients ``[N, P]`` of the segment ``noise [K, N, act]`` from ``env_state``."""
        def single(env_state, reset, eps):
            f = lambda p: objective(state, p, one(env_state), one(reset), eps[:, None])
            (value, segment), grads = jax.value_and_grad(f, has_aux=True)(state.actor_params)
            return value, segment, ravel_pytree(grads)[0]

        values, segments, grads = jax.vmap(single, in_axes=(0, 0, 1))(env_state, reset_state, noise)
        per_step = {name: jnp.swapaxes(getattr(segments, name)[:, :, 0], 0, 1)
                    for name in Segment._fields if name != "final_state"}
        final = jax.tree.map(lambda x: x[:, 0], segments.final_state)
        return values, Segment(**per_step, final_state=final), grads

    def likelihood_weights(state: APGState, segment: Segment):
        """``G_t - b_t [K, N]``: each step's reward-to-go within its episode and segment, less the critic
        baseline (the score function's weights, and the reuse passes' advantages)."""
        baseline = segment.discounts * critic.apply(state.critic_params, normalize(state.obs_stats, segment.obs))
        return jax.lax.stop_gradient(reward_to_go(segment.contributions, segment.ended) - baseline)

    def reuse_advantages(state: APGState, segment: Segment, weights):
        """The reuse passes' advantages ``[K, N]``: ``weights`` (``G_t - b_t``) or, with
        ``hybrid_advantages="gae"``, PPO's GAE(``gae_lambda``) from the critic, bootstrapped at the cut."""
        if config.hybrid_advantages == "segment":
            return weights
        advantages = segment_gae(critic, state.critic_params, state.obs_stats, segment, config.gamma,
                                 config.gae_lambda)[0]
        return jax.lax.stop_gradient(advantages)

    def likelihood_gradients(state: APGState, segment: Segment, noise, weights=None):
        """Flattened score-function gradients ``[N, P]`` of the same objective, critic baseline."""
        weights = likelihood_weights(state, segment) if weights is None else weights

        def single(obs, eps, w):
            f = lambda p: jnp.sum(log_likelihood(actor, p, state.obs_stats, obs[:, None], eps[:, None])[:, 0] * w)
            return ravel_pytree(jax.grad(f)(state.actor_params))[0]

        return jax.vmap(single, in_axes=(1, 1, 1))(segment.obs, noise, weights)

    def window_gradients(state: APGState, env_state, reset_state, noise, k: int):
        """Flattened per-environment gradients ``[N, P]`` of the window ``noise [K_max, N, act]`` from
        ``env_state`` cut every ``k`` steps: the sum of its consecutive ``k``-step segment objectives, each
        started from the last one's (gradient-cut) final state."""

        def single(env_state, reset, eps):
            def window(actor_params):
                def segment(start, seg_noise):
                    value, seg = objective(state, actor_params, start, one(reset), seg_noise[:, None])
                    return seg.final_state, value
                _, values = jax.lax.scan(segment, one(env_state), eps.reshape(-1, k, eps.shape[-1]))
                return jnp.sum(values)
            return ravel_pytree(jax.grad(window)(state.actor_params))[0]

        return jax.vmap(single, in_axes=(0, 0, 1))(env_state, reset_state, noise)

    def probe(state: APGState) -> LadderStatistics:
        """Per-env gradients ``g_K`` of every ladder length from the current states (``config.adapt_probe``:
        of the first K steps, or of the largest length's window cut every K steps); the training RNG
        stream is left untouched."""
        reset_state, noise = draw(*jax.random.split(jax.random.fold_in(state.key, PROBE_STREAM)), lengths[-1],
                                  state.env_steps)
        if config.adapt_probe == "window":
            return ladder_statistics([window_gradients(state, state.env_state, reset_state, noise, k)
                                      for k in lengths])
        return ladder_statistics([per_env_gradients(state, state.env_state, reset_state, noise[:k])[2]
                                  for k in lengths])

    return APGParts(init, tuple(make_update(k) for k in lengths), actor, probe if len(lengths) > 1 else None,
                    draw, per_env_gradients, likelihood_gradients)


PROBE_STREAM = 0x5E9  #: ``fold_in`` constant of the probe's random numbers
