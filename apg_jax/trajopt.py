"""Open-loop trajectory optimisation through the simulator: a per-start upper reference for the learners.

For one initial physics state ``q0`` the action sequence ``u_t = tanh(z_t)`` (``t < T``, so every action is
in the task's box) is improved by Adam (step size decaying to 0 on a cosine) on ``-sum_t r_t``, the
gradient taken through the whole horizon with ``jax.grad`` (no segments, no policy) and clipped to a
global norm per sequence; an iteration whose gradient is not finite is skipped. Each start has its own
free actions, so nothing averages gradients of different starts (what makes a policy's long-segment
gradient noise on contact tasks); restarts from random ``z`` show how often the local search finds a
solution. The answer says which starts the simulator's gradient can solve at all.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from apg_jax.envs.base import DiffEnv
from apg_jax.optim import clip_by_global_norm


class TrajOptResult(NamedTuple):
    actions: jax.Array  #: [..., T, action_size] the optimised actions, in [-1, 1]
    returns: jax.Array  #: [...] undiscounted return of those actions over the T steps
    history: jax.Array  #: [..., iterations] return before each iteration's update


def rollout_actions(env: DiffEnv, q0: jax.Array, actions: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(q [T + 1, state_dim], rewards [T])`` of applying ``actions [T, action_size]`` from ``q0``."""
    def step(q, u):
        q_next, reward = env.physics_step(q, u)
        return q_next, (q_next, reward)

    _, (qs, rewards) = jax.lax.scan(step, q0, actions)
    return jnp.concatenate([q0[None], qs]), rewards


def optimize_actions(env: DiffEnv, q0: jax.Array, z0: jax.Array, iterations: int, learning_rate: float = 0.05,
                     max_grad_norm: float = 1.0) -> TrajOptResult:
    """Optimise the pre-squash actions ``z0 [T, action_size]`` from ``q0 [state_dim]`` (one start; ``vmap``
    it for many) by ``iterations`` Adam steps on the return; see the module docstring."""
    schedule = optax.cosine_decay_schedule(learning_rate, iterations)  # to 0: settles saturated actions
    optimizer = optax.chain(clip_by_global_norm(max_grad_norm), optax.adam(schedule))
    total = lambda z: jnp.sum(rollout_actions(env, q0, jnp.tanh(z))[1])

    def iteration(carry, _):
        z, opt_state = carry
        value, grad = jax.value_and_grad(total)(z)
        grad = jnp.where(jnp.all(jnp.isfinite(grad)), -grad, jnp.zeros_like(grad))  # ascend; skip non-finite
        updates, opt_state = optimizer.update(grad, opt_state, z)
        return (optax.apply_updates(z, updates), opt_state), value

    (z, _), history = jax.lax.scan(iteration, (z0, optimizer.init(z0)), None, length=iterations)
    actions = jnp.tanh(z)
    return TrajOptResult(actions, total(z), history)
