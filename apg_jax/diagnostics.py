"""Gradient fidelity of segmented backpropagation: how far a K-step segment gradient is from the gradient
of the full-horizon return, and how noisy it is.

The estimator of segment length K differentiates, over whole episodes from the start distribution,

    J_K = sum_j gamma^{jK} [ sum_{t<K} gamma^t r_{jK+t}  (+ gamma^K V(s_{(j+1)K}) at cuts inside the horizon,
                                                          ``critic`` mode) ]

with the state cut from the graph (``stop_gradient``) at every multiple of K: the same paths a training
segment keeps, weighted as in the full return. ``K = T`` is the exact gradient of the discounted return
``J = E sum_{t<T} gamma^t r_t``, the reference. Actions are the policy's mean (the deterministic policy APG
trains by default); the start state is the only randomness, so the spread of per-episode gradients is the
estimator's variance at batch size 1.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from apg_jax.adaptive import batch_statistics
from apg_jax.envs.base import DiffEnv
from apg_jax.fullprecision import dot


def segmented_return(env: DiffEnv, policy: Callable, params, q0: jax.Array, segment_length: int, gamma: float,
                     value: Callable | None = None, steps: int | None = None) -> jax.Array:
    """``J_K`` of one episode from the physics state ``q0 [S]``; ``policy(params, obs [obs]) -> action``,
    ``value(obs) -> []`` for the critic bootstrap (``None``: ``mc``). Differentiable in ``params``.
    ``steps < horizon`` rolls only that many steps (bootstrapping at the end in critic mode): with
    ``steps = K`` it is one training segment's objective, whose cost the diagnostics measure."""
    horizon = env.episode_length
    steps = horizon if steps is None else steps

    def body(carry, t):
        q, total = carry
        if value is not None:  # bootstrap at a cut inside the horizon, through the state before the cut
            cut = (t % segment_length == 0) & (t > 0)
            total = total + jnp.where(cut, gamma**t * value(env.observe(q)), 0.0)
        q = jnp.where(t % segment_length == 0, jax.lax.stop_gradient(q), q)
        q_next, reward = env.physics_step(q, jnp.clip(policy(params, env.observe(q)), -1.0, 1.0))
        return (q_next, total + gamma**t * reward), None

    (q, total), _ = jax.lax.scan(body, (q0, jnp.zeros((), q0.dtype)), jnp.arange(steps))
    if value is not None and steps < horizon:
        total = total + gamma**steps * value(env.observe(q))
    return total


def per_episode_gradients(env: DiffEnv, policy: Callable, params, q0: jax.Array, segment_length: int,
                          gamma: float, value: Callable | None = None, chunk: int = 256) -> jax.Array:
    """Flattened gradients ``[M, P]`` of ``J_K`` for each start state of ``q0 [M, S]`` (``chunk`` episodes
    at a time, to bound memory)."""
    flat, unravel = ravel_pytree(params)
    grad = jax.jit(jax.vmap(jax.grad(lambda f, q: segmented_return(env, policy, unravel(f), q, segment_length,
                                                                     gamma, value)), in_axes=(None, 0)))
    return jnp.concatenate([grad(flat, q0[i:i + chunk]) for i in range(0, q0.shape[0], chunk)])


class Fidelity(NamedTuple):
    cosine: float  #: cosine similarity of the estimator's mean with the reference gradient
    relative_error: float  #: |mean - reference| / |reference|
    snr: float  #: |mean|^2 / trace(covariance of a batch mean) at the given batch size
    mean_norm: float  #: |mean gradient|
    relative_standard_error: float  #: sqrt(trace(cov) / M) / |mean|: the mean's own error


def fidelity(samples: jax.Array, reference: jax.Array, batch_size: int) -> Fidelity:
    """Bias and noise of per-episode gradients ``samples [M, P]`` against ``reference [P]``; the signal to
    noise ratio is that of a mean over ``batch_size`` episodes (squared mean corrected for the sampling
    error of ``M`` episodes)."""
    mean, snr, _ = batch_statistics(samples, batch_size)
    trace = jnp.sum(jnp.var(samples, axis=0, ddof=1))
    m = samples.shape[0]
    norm, ref_norm = jnp.linalg.norm(mean), jnp.linalg.norm(reference)
    return Fidelity(cosine=float(dot(mean, reference) / (norm * ref_norm)),
                    relative_error=float(jnp.linalg.norm(mean - reference) / ref_norm),
                    snr=float(snr), mean_norm=float(norm),
                    relative_standard_error=float(jnp.sqrt(trace / m) / norm))
