"""Adaptive segment length (``segment_length="auto"``): the rule that picks K from gradient statistics.

Between evaluation chunks the learner measures, from its current training states and parameters, the
per-environment segment gradients ``g_K`` of every length of a ladder ``K_0 < K_1 < ...`` (powers of
two by default). Two statistics decide:

- **reliability**: the signal-to-noise ratio of the batch-mean gradient,
  ``snr = (|mean|^2 - tr(C)/N) / (tr(C)/N)`` over the ``N`` environments (``C`` their covariance; the
  squared mean is corrected for its own sampling error), and finiteness;
- **myopia**: the cosine between the mean gradients of consecutive lengths, ``cos(g_K, g_2K)``: when
  doubling the segment turns the gradient, the K-step objective is missing future consequences of the
  actions that matter.

The rule walks up the ladder from the shortest length and moves from ``K`` to ``2K`` while the longer
gradient is reliable (finite, ``snr >= min_snr``) and the current one is myopic
(``cos(g_K, g_2K) < min_cosine``) or unreliable. It stops at the shortest length that is reliable and
that doubling does not turn, or where the longer gradient is too noisy to trust (exploding or chaotic
dynamics): short segments when they suffice (more updates per env step), longer ones when the task needs
them, never one whose gradient is noise. No statistic is task-specific.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class LadderStatistics(NamedTuple):
    """Statistics of the segment gradients of every ladder length (leading axis: length)."""

    finite: jax.Array  #: [R] bool, every per-env gradient finite
    snr: jax.Array  #: [R] signal-to-noise ratio of the batch-mean gradient (0 where not finite)
    cosine: jax.Array  #: [R] cos(g_K_i, g_K_{i+1}); NaN for the longest length
    norm: jax.Array  #: [R] norm of the batch-mean gradient


def batch_statistics(samples: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(mean [P], snr [], finite [])`` of per-environment gradients ``samples [N, P]``; ``snr`` is that
    of their mean over ``N`` (0 when not finite, or when the gradients are all equal and zero)."""
    n = samples.shape[0]
    finite = jnp.all(jnp.isfinite(samples))
    samples = jnp.where(finite, samples, 0.0)
    mean = jnp.mean(samples, axis=0)
    noise = jnp.sum(jnp.var(samples, axis=0, ddof=1)) / n  # trace of the mean's covariance
    signal = jnp.maximum(jnp.sum(mean**2) - noise, 0.0)
    snr = jnp.where(noise > 0, signal / jnp.where(noise > 0, noise, 1.0), jnp.where(signal > 0, jnp.inf, 0.0))
    return mean, jnp.where(finite, snr, 0.0), finite


def ladder_statistics(samples: list) -> LadderStatistics:
    """Statistics of per-environment gradients ``samples[i] [N, P]`` of ladder length ``i``."""
    means, snrs, finites = zip(*(batch_statistics(s) for s in samples))
    norms = [jnp.linalg.norm(m) for m in means]
    cosines = [jnp.dot(a, b) / jnp.maximum(na * nb, 1e-30)
               for a, b, na, nb in zip(means[:-1], means[1:], norms[:-1], norms[1:])]
    cosines.append(jnp.asarray(jnp.nan, means[0].dtype))
    return LadderStatistics(jnp.stack(finites), jnp.stack(snrs), jnp.stack(cosines), jnp.stack(norms))


def choose_length(stats: LadderStatistics, min_snr: float, min_cosine: float) -> jax.Array:
    """Index ``[] int32`` into the ladder chosen by the rule of this module's docstring."""
    index = jnp.zeros((), jnp.int32)
    climbing = jnp.ones((), bool)
    for i in range(stats.snr.shape[0] - 1):  # the ladder is short and static
        reliable_here = stats.finite[i] & (stats.snr[i] >= min_snr)
        reliable_next = stats.finite[i + 1] & (stats.snr[i + 1] >= min_snr)
        myopic = ~(stats.cosine[i] >= min_cosine)  # a NaN cosine (zero gradient) counts as myopic
        climbing = climbing & reliable_next & (myopic | ~reliable_here)
        index = index + climbing.astype(jnp.int32)
    return index
