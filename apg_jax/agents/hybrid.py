"""Hybrid analytic / likelihood-ratio policy gradient (``--algo hybrid``).

From the same segment rollouts of a stochastic policy two estimates of the gradient of the same segment
objective ``J = sum_t c_t`` (``c_t``: each step's discounted reward and bootstrap terms, as APG's
``segment_objective`` defines them) are formed per environment:

- **analytic** ``g_A``: the reparameterised gradient, differentiated through the dynamics (APG);
- **likelihood ratio** ``g_L = sum_t grad log pi(a_t | s_t) (G_t - b_t)``: the score function, with
  ``G_t`` the objective's terms from step t to the end of its episode within the segment (later terms
  do not depend on ``a_t``) and the critic baseline ``b_t = discount_t V(s_t)``. It needs no derivative
  of the dynamics, so contacts and discontinuities do not bias it; it is noisier where they are smooth.

They are mixed per update as ``g = alpha g_A + (1 - alpha) g_L`` with the inverse-variance weight
``alpha = s_L / (s_A + s_L)`` (``s``: trace of the covariance of each batch mean over the ``N``
environments), the variance-minimising weight of two unbiased estimates (the alpha-order estimator of
Suh et al., 2022). Where the analytic estimate is not finite, or differs from the likelihood-ratio one by
more than ``hybrid_bias_z`` standard errors of their difference (the analytic gradient is then biased:
stiff or discontinuous dynamics), ``alpha = 0``: the likelihood-ratio gradient alone.

With ``hybrid_explore_fraction`` f < 1 the batch is split: a fraction f of the environments act with the
stochastic policy and feed only ``g_L``; the others act with its mean, as APG's deterministic policy, and
feed only ``g_A`` (then the gradient of the deterministic policy's objective, the one evaluated; its
log-std entry is 0). Exploration then no longer perturbs the rollouts the analytic gradient comes from.

After the mixed step the segment's transitions are reused as PPO reuses a rollout (``reuse_segment``):
``hybrid_reuse_epochs`` passes of PPO's clipped surrogate (advantages: PPO's GAE from the critic, or
``G_t - b_t`` with ``hybrid_advantages="segment"``; ratios to the policy that acted), each optimizer
update scaled by ``1 - alpha`` (the exploring environments' transitions only). Where the analytic gradient is
trusted (``alpha`` near 1) this adds almost nothing to APG's step; where it is dropped the hybrid learns
from each segment as much as PPO does from a rollout, instead of one noisy score-function step.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from apg_jax.agents.ppo import clipped_surrogate_loss
from apg_jax.networks import gaussian_entropy, gaussian_log_prob
from apg_jax.normalization import normalize
from apg_jax.optim import guarded_update


def reward_to_go(contributions: jax.Array, ended: jax.Array) -> jax.Array:
    """``G_t [K, N]``: the sum of ``contributions [K, N]`` from step t to the end of its episode (a step
    with ``ended`` 1 is its episode's last in the segment)."""
    def backward(carry, x):
        c, end = x
        carry = c + (1.0 - end) * carry
        return carry, carry

    _, out = jax.lax.scan(backward, jnp.zeros_like(contributions[0]), (contributions, ended), reverse=True)
    return out


def log_likelihood(actor, actor_params, obs_stats, obs: jax.Array, noise: jax.Array) -> jax.Array:
    """``log pi(a_t | s_t) [K, N]`` of the actions the rollout took, ``a = mean + std * noise`` (held
    fixed), under ``actor_params``; ``obs [K, N, obs]``, ``noise [K, N, act]``."""
    mean, log_std = actor.apply(actor_params, normalize(obs_stats, obs))
    action = jax.lax.stop_gradient(mean + jnp.exp(log_std) * noise)
    z = (action - mean) / jnp.exp(log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi), axis=-1)


class Mixture(NamedTuple):
    gradient: jax.Array  #: [P] the mixed gradient of the objective (ascent direction)
    analytic_weight: jax.Array  #: [] alpha in [0, 1]
    analytic_variance: jax.Array  #: [] trace of the analytic batch mean's covariance
    likelihood_variance: jax.Array  #: [] same for the likelihood-ratio estimate
    disagreement: jax.Array  #: [] |mean_A - mean_L| in standard errors of the difference


def mix(analytic: jax.Array, likelihood: jax.Array, bias_z: float, paired: bool = True) -> Mixture:
    """Inverse-variance mixture of per-environment gradients ``analytic [N_A, P]`` and ``likelihood
    [N_L, P]`` (this module's docstring). ``paired``: row i of both comes from the same environment
    (``N_A = N_L``); otherwise they come from disjoint environments (``hybrid_explore_fraction < 1``) and the
    variance of their difference is the sum of theirs."""
    finite = jnp.all(jnp.isfinite(analytic))
    analytic = jnp.where(finite, analytic, 0.0)
    variance = lambda x: jnp.sum(jnp.var(x, axis=0, ddof=1)) / x.shape[0]
    s_a, s_l = variance(analytic), variance(likelihood)
    mean_a, mean_l = jnp.mean(analytic, axis=0), jnp.mean(likelihood, axis=0)
    difference = variance(analytic - likelihood) if paired else s_a + s_l
    disagreement = jnp.linalg.norm(mean_a - mean_l) / jnp.sqrt(jnp.maximum(difference, 1e-30))
    alpha = jnp.where(s_a + s_l > 0, s_l / jnp.maximum(s_a + s_l, 1e-30), 0.5)
    alpha = jnp.where(finite & (disagreement <= bias_z), alpha, 0.0)
    return Mixture(alpha * mean_a + (1.0 - alpha) * mean_l, alpha, s_a, s_l, disagreement)


def reuse_segment(actor, optimizer, acting_params, actor_params, opt_state, obs_stats, obs, noise, advantages,
                  weight, key, *, epochs: int, minibatches: int, clip_eps: float, normalize_advantages: bool,
                  ent_coef: float = 0.0):
    """PPO's clipped-surrogate passes (less ``ent_coef`` times the policy's entropy, as PPO's loss) over a
    segment's transitions, each update scaled by ``weight``.

    ``obs [K, N, obs]``, ``noise [K, N, act]``: the actions taken were ``mean + std * noise`` under
    ``acting_params``; ``advantages [K, N]``. Starts from ``actor_params`` (``opt_state``: the optimizer
    state of these passes); a minibatch with a non-finite gradient is skipped. Returns
    ``(actor_params, opt_state, skipped [])``."""
    inputs = normalize(obs_stats, obs).reshape(-1, obs.shape[-1])
    mean, log_std = actor.apply(acting_params, inputs)
    actions = mean + jnp.exp(log_std) * noise.reshape(-1, noise.shape[-1])
    old_log_probs = gaussian_log_prob(actions, mean, log_std)
    advantages = advantages.reshape(-1)
    size = advantages.shape[0] // minibatches

    def step(carry, idx):
        params, opt, skipped = carry

        def loss(p):
            m, s = actor.apply(p, inputs[idx])
            surrogate = clipped_surrogate_loss(gaussian_log_prob(actions[idx], m, s), old_log_probs[idx],
                                               advantages[idx], clip_eps, normalize_advantages)
            return surrogate - ent_coef * gaussian_entropy(s)

        stepped, opt, bad = guarded_update(optimizer, jax.grad(loss)(params), opt, params)
        params = jax.tree.map(lambda new, old: old + weight * (new - old), stepped, params)
        return (params, opt, skipped + bad), None

    def epoch(carry, k):
        order = jax.random.permutation(k, advantages.shape[0])[: size * minibatches].reshape(minibatches, size)
        return jax.lax.scan(step, carry, order)[0], None

    carry = (actor_params, opt_state, jnp.zeros(()))
    return jax.lax.scan(epoch, carry, jax.random.split(key, epochs))[0]
