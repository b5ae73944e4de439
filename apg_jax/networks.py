"""Actor-critic networks shared by APG and PPO (same sizes, activations and initialisation)."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from apg_jax.normalization import RunningStats, normalize

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "elu": nn.elu, "swish": nn.swish}


def orthogonal(scale: float = 1.0, iterations: int = 60):
    """Orthogonal initialiser without LAPACK: the polar factor of a Gaussian matrix (Haar-distributed),
    computed by Newton-Schulz iterations ``X <- 1.5 X - 0.5 X X^T X`` (matrix products only).

    flax's own orthogonal initialiser calls a batched QR when parameter initialisation is vmapped over
    seeds; on small CPUs that LAPACK call deadlocked (jaxlib 0.10.2's ParallelBatchMap waiting on its own
    thread pool). Returns a flax initialiser for 2-D kernels ``[fan_in, fan_out]``."""

    def init(key, shape, dtype=jnp.float32):
        rows, cols = shape
        x = jax.random.normal(key, (max(rows, cols), min(rows, cols)), dtype)
        x = x / jnp.linalg.norm(x)  # singular values in (0, 1]: inside the iteration's basin

        def newton_schulz(_, x):
            return 1.5 * x - 0.5 * x @ (x.T @ x)

        q = jax.lax.fori_loop(0, iterations, newton_schulz, x)
        return scale * (q if rows >= cols else q.T)

    return init


class MLP(nn.Module):
    """Fully connected trunk ``[..., in] -> [..., out_size]`` with orthogonal initialisation."""

    hidden_sizes: Sequence[int]
    out_size: int
    activation: str = "tanh"
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for size in self.hidden_sizes:
            x = act(nn.Dense(size, kernel_init=orthogonal(jnp.sqrt(2.0)))(x))
        return nn.Dense(self.out_size, kernel_init=orthogonal(self.out_scale))(x)


class Actor(nn.Module):
    """Normalised observation ``[..., obs]`` -> (mean in [-1, 1] ``[..., act]``, log-std ``[act]``).

    The mean is tanh-squashed; the log-std is a learned, state-independent parameter."""

    action_size: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    init_log_std: float = -0.5

    @nn.compact
    def __call__(self, obs):
        mean = jnp.tanh(MLP(self.hidden_sizes, self.action_size, self.activation, out_scale=0.01)(obs))
        log_std = self.param("log_std", nn.initializers.constant(self.init_log_std), (self.action_size,))
        return mean, log_std


class Critic(nn.Module):
    """Normalised observation ``[..., obs]`` -> state value ``[...]``."""

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs):
        return MLP(self.hidden_sizes, 1, self.activation, out_scale=1.0)(obs)[..., 0]


def gaussian_log_prob(action, mean, log_std):
    """Log-density of ``action [..., act]`` under a diagonal Gaussian, summed over the last axis."""
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi), axis=-1)


def gaussian_entropy(log_std):
    """Entropy of a diagonal Gaussian with ``log_std [act]``."""
    return jnp.sum(log_std + 0.5 * jnp.log(2.0 * jnp.pi * jnp.e))


def make_networks(action_size: int, hidden_sizes, activation: str, init_log_std: float):
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{activation}'; valid: {', '.join(ACTIVATIONS)}")
    actor = Actor(action_size, tuple(hidden_sizes), activation, init_log_std)
    critic = Critic(tuple(hidden_sizes), activation)
    return actor, critic


def init_params(actor: Actor, critic: Critic, key: jax.Array, obs_size: int):
    k_actor, k_critic = jax.random.split(key)
    dummy = jnp.zeros((obs_size,))
    return actor.init(k_actor, dummy), critic.init(k_critic, dummy)


def deterministic_action(actor, actor_params, stats: RunningStats, obs: jax.Array) -> jax.Array:
    """The policy's mean action in [-1, 1] for ``obs [..., obs_size]`` (observations normalised by ``stats``)."""
    mean, _ = actor.apply(actor_params, normalize(stats, obs))
    return mean
