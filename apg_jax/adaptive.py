"""Adaptive segment length (``segment_length="auto"``): the rule that picks K from gradient statistics.

Before the first chunk and between evaluation chunks the learner measures, from its current training
states and parameters, the per-environment segment gradients ``g_K`` of every length of a ladder
``K_0 < K_1 < ...`` (powers of two by default): of the first K steps (``adapt_probe="start"``), or of the
largest length's window cut every K steps (``"window"``). Two statistics decide:

- **reliability**: the signal-to-noise ratio of the batch-mean gradient,
  ``snr = (|mean|^2 - tr(C)/N) / (tr(C)/N)`` over the ``N`` environments (``C`` their covariance; the
  squared mean is corrected for its own sampling error), and finiteness;
- **agreement**: the cosine between a length's expected gradient and that of the *reference*, the longest
  reliable length (the least truncated gradient that is not noise), estimated from the batch with the
  sampling noise of both means removed (``ladder_statistics``).

The rule picks the shortest reliable length whose gradient agrees with the reference: its cosine reaches
``min_cosine`` or falls short by less than ``cosine_z`` standard errors (``cos + z * se >= min_cosine``,
``se`` the cosine's jackknife standard error over the environments; ``z = 0``, the default, is the plain
test): short segments where they point where the long ones do (more updates per env step), the reference
itself where every shorter one is myopic, and never a length whose gradient is noise or explodes (chaotic
or stiff dynamics). When no length is reliable (near an optimum every gradient is mostly noise) the length
in use is kept. No statistic is task-specific.

``TrainConfig.adapt_snr_over="chunk"`` (``over_updates``) judges reliability by the SNR of the mean over
the updates a chunk makes at each length instead of one update's (measured in results/adaptive-v7: no
help on the T-block, better on franka `mc`, worse on franka `critic`; not the default).

Two options act on the rule's choice near an optimum, where every length's signal fades (the long ones'
first): ``hold_on_noise`` (``choose_length``) keeps a length whose gradient faded into noise instead of
falling back to the shorter reference, and ``confirm_length`` takes a new length only once ``confirmations``
consecutive probes proposed it. Both still leave a length at once when its gradient explodes (not finite).
Measured in results/adaptive-v6: holding helps the point masses with ``mc``, confirming helps nowhere.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from apg_jax.fullprecision import einsum, matmul


class LadderStatistics(NamedTuple):
    """Statistics of the segment gradients of every ladder length (leading axes: length)."""

    finite: jax.Array  #: [R] bool, every per-env gradient finite
    snr: jax.Array  #: [R] signal-to-noise ratio of the batch-mean gradient (0 where not finite)
    cosine: jax.Array  #: [R, R] cosines between the lengths' expected gradients, estimated from the batch
    norm: jax.Array  #: [R] norm of the batch-mean gradient
    mean: jax.Array | None = None  #: [R, P] the batch-mean gradients
    cosine_se: jax.Array | None = None  #: [R, R] jackknife standard errors of ``cosine`` (None: taken as 0)


def batch_statistics(samples: jax.Array, batch_size: int | None = None
                     ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(mean [P], snr [], finite [])`` of per-sample gradients ``samples [M, P]``; ``snr`` is that of a
    mean over ``batch_size`` samples (default ``M``), its squared mean corrected for the sampling error of
    the ``M`` samples (0 when not finite, or when the gradients are all equal and zero)."""
    m = samples.shape[0]
    finite = jnp.all(jnp.isfinite(samples))
    samples = jnp.where(finite, samples, 0.0)
    mean = jnp.mean(samples, axis=0)
    trace = jnp.sum(jnp.var(samples, axis=0, ddof=1))  # trace of one sample's covariance
    signal = jnp.maximum(jnp.sum(mean**2) - trace / m, 0.0)
    noise = trace / (m if batch_size is None else batch_size)
    snr = jnp.where(noise > 0, signal / jnp.where(noise > 0, noise, 1.0), jnp.where(signal > 0, jnp.inf, 0.0))
    return mean, jnp.where(finite, snr, 0.0), finite


def ladder_statistics(samples: list) -> LadderStatistics:
    """Statistics of per-environment gradients ``samples[i] [N, P]`` of ladder length ``i``, all measured
    from the same ``N`` environments (paired; ``cosine_se`` is 0 for ``N < 3``).

    The cosine estimates that of the *expected* gradients: the dot products of the batch means and their
    squared norms are each corrected for their sampling error (``E[m_i . m_j] = mu_i . mu_j + tr C_ij / N``,
    ``C_ij`` the cross-covariance of lengths ``i`` and ``j`` over environments), then clipped to [-1, 1];
    0 (no direction) where a length's estimated squared norm is not positive.
    Uncorrected, noise alone pulls the cosine of two noisy means towards 0 (by ``1/sqrt(1 + 1/snr)`` per
    side), which made a noisy long reference look as if every shorter length disagreed with it.
    ``cosine_se`` is the delete-one jackknife standard error of that estimate (closed form, no refits)."""
    n = samples[0].shape[0]
    means, snrs, finites = zip(*(batch_statistics(s) for s in samples))
    means = jnp.stack(means)  # [R, P]
    finite = jnp.stack(finites)
    centred = jnp.stack([jnp.where(ok, s, 0.0) for s, ok in zip(samples, finites)]) - means[:, None, :]
    cross = einsum("inp,jnp->ij", centred, centred)  # (N - 1) tr C_ij
    products = matmul(means, means.T) - cross / (n * (n - 1))  # unbiased estimates of mu_i . mu_j
    # the same estimate without environment k, [R, R, N]: mu_i . mu_j from the other N - 1 environments
    mean_dot_dev = einsum("ip,jnp->ijn", means, centred)  # m_i . y_jk
    dev_dot_dev = einsum("inp,jnp->ijn", centred, centred)  # y_ik . y_jk
    left_out = (matmul(means, means.T)[..., None] - (mean_dot_dev + mean_dot_dev.transpose(1, 0, 2)) / (n - 1)
                + (2.0 * dev_dot_dev - cross[..., None]) / ((n - 1) * max(n - 2, 1)))
    cosine, positive = _cosines(products)
    left_out_cosine, left_out_positive = _cosines(left_out)
    spread = jnp.sum((left_out_cosine - jnp.mean(left_out_cosine, axis=-1, keepdims=True)) ** 2, axis=-1)
    cosine_se = jnp.where(positive & jnp.all(left_out_positive, axis=-1) & (n >= 3),
                          jnp.sqrt((n - 1) / n * spread), 0.0)
    return LadderStatistics(finite, jnp.stack(snrs), cosine, jnp.linalg.norm(means, axis=1), means, cosine_se)


def _cosines(products: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(cosine, positive)`` from estimated dot products ``products [R, R, ...]`` of the lengths' expected
    gradients: clipped to [-1, 1], 0 where either squared norm (the diagonal) is not positive."""
    signal = jnp.diagonal(products, axis1=0, axis2=1)  # [..., R]
    signal = jnp.moveaxis(signal, -1, 0)  # [R, ...]
    positive = (signal[:, None] > 0) & (signal[None, :] > 0)
    scale = jnp.sqrt(jnp.where(positive, signal[:, None] * signal[None, :], 1.0))
    return jnp.where(positive, jnp.clip(products / scale, -1.0, 1.0), 0.0), positive


def over_updates(stats: LadderStatistics, updates) -> LadderStatistics:
    """``stats`` with each length's SNR that of the mean of its ``updates [R]`` batch gradients (``snr *
    updates``, the updates taken as independent draws): the reliability of what a learner integrates over
    that many updates at the length rather than of one update. A long length whose single batch is mostly
    noise (a contact task's 64-step gradient over 32 environments) can still be a reference when a chunk's
    updates average its noise out; the plain test would take the shortest length as the reference there."""
    return stats._replace(snr=stats.snr * jnp.asarray(updates, stats.snr.dtype))


def reliable(stats: LadderStatistics, min_snr: float) -> jax.Array:
    """``[R]`` bool: finite and ``snr >= min_snr``."""
    return stats.finite & (stats.snr >= min_snr)


def reference_length(stats: LadderStatistics, min_snr: float) -> tuple[jax.Array, jax.Array]:
    """``(index [] int32, any [] bool)``: the longest reliable length, and whether there is one."""
    ok = reliable(stats, min_snr)
    positions = jnp.arange(ok.shape[0])
    return jnp.max(jnp.where(ok, positions, -1)).astype(jnp.int32), jnp.any(ok)


def choose_length(stats: LadderStatistics, current: jax.Array, min_snr: float, min_cosine: float,
                  cosine_z: float = 0.0, hold_on_noise: bool = False) -> jax.Array:
    """Index ``[] int32`` into the ladder chosen by the rule of this module's docstring (``current``: the
    index in use, kept when no length is reliable; ``cosine_z``: standard errors of slack in the agreement
    test). ``hold_on_noise``: also keep ``current`` when its gradient is finite but has become noise and
    the reference is shorter (near an optimum every length's signal fades, the long ones' first: a
    shorter reference then says nothing about whether the short lengths' myopic bias matters); a length
    that explodes (not finite) is still left."""
    reference, any_reliable = reference_length(stats, min_snr)
    positions = jnp.arange(stats.snr.shape[0])
    column = jnp.maximum(reference, 0)
    slack = 0.0 if stats.cosine_se is None else cosine_z * stats.cosine_se[:, column]
    agrees = stats.cosine[:, column] + slack >= min_cosine  # NaN (a zero gradient) never agrees
    candidates = reliable(stats, min_snr) & (agrees | (positions == reference))
    shortest = jnp.argmax(candidates).astype(jnp.int32)  # first True; the reference is always one
    current = jnp.asarray(current, jnp.int32)
    faded = stats.finite[current] & ~reliable(stats, min_snr)[current] & (reference < current)
    return jnp.where(any_reliable & ~(hold_on_noise & faded), shortest, current)


def confirm_length(proposal: jax.Array, current: jax.Array, pending: jax.Array, count: jax.Array,
                   current_finite: jax.Array, confirmations: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(index, pending, count)`` (each ``[] int32``) after a probe that proposed ladder index ``proposal``
    while ``current`` is in use: ``count`` consecutive probes so far proposed ``pending`` (a length other
    than ``current``); the switch to ``proposal`` happens when it has been proposed ``confirmations`` times
    in a row, or at once when the current length's gradient is not finite (``current_finite`` False).
    ``confirmations = 1`` is the plain rule (switch at every proposal)."""
    proposal, current = jnp.asarray(proposal, jnp.int32), jnp.asarray(current, jnp.int32)
    count = jnp.where(proposal == current, 0, jnp.where(proposal == pending, count + 1, 1)).astype(jnp.int32)
    switch = (proposal != current) & ((count >= confirmations) | ~current_finite)
    index = jnp.where(switch, proposal, current)
    count = jnp.where(switch, 0, count).astype(jnp.int32)
    return index, jnp.where(count > 0, proposal, index), count
