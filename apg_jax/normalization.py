"""Running observation normalisation (mean/variance), shared by both learners.

Statistics are merged batch by batch with the parallel (Chan et al.) update, so the result does not
depend on how observations are split into batches."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

CLIP = 10.0  #: normalised observations are clipped to [-CLIP, CLIP]
EPS = 1e-8


@struct.dataclass
class RunningStats:
    count: jax.Array  #: [] number of observations merged
    mean: jax.Array  #: [obs]
    var: jax.Array  #: [obs] population variance


def init_stats(obs_size: int) -> RunningStats:
    return RunningStats(jnp.zeros(()), jnp.zeros((obs_size,)), jnp.ones((obs_size,)))


def update_stats(stats: RunningStats, obs: jax.Array) -> RunningStats:
    """Merge a batch ``obs [..., obs_size]`` into the running statistics.

    Rows holding NaN/inf (an environment that blew up) are left out, so they cannot poison the
    statistics of every later update."""
    batch = jax.lax.stop_gradient(obs).reshape(-1, stats.mean.shape[-1])
    valid = jnp.all(jnp.isfinite(batch), axis=-1, keepdims=True)
    batch = jnp.where(valid, batch, 0.0)
    n = jnp.sum(valid).astype(stats.mean.dtype)
    batch_mean = jnp.sum(batch, axis=0) / jnp.maximum(n, 1.0)
    batch_var = jnp.sum(jnp.where(valid, (batch - batch_mean) ** 2, 0.0), axis=0) / jnp.maximum(n, 1.0)
    total = stats.count + n
    safe_total = jnp.maximum(total, 1.0)
    delta = batch_mean - stats.mean
    mean = stats.mean + delta * n / safe_total
    m2 = stats.var * stats.count + batch_var * n + delta**2 * stats.count * n / safe_total
    merged = RunningStats(total, mean, m2 / safe_total)
    return jax.tree.map(lambda new, old: jnp.where(n > 0, new, old), merged, stats)


def normalize(stats: RunningStats, obs: jax.Array) -> jax.Array:
    """``(obs - mean) / std``, clipped; identity-like (mean 0, var 1) before any update."""
    return jnp.clip((obs - stats.mean) / jnp.sqrt(stats.var + EPS), -CLIP, CLIP)
