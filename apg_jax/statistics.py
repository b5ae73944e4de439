"""Statistics for comparing learners over few runs (Agarwal et al., 2021, "Deep RL at the edge of the
statistical precipice"; the definitions of ``rliable``, reimplemented in numpy).

Scores are arrays ``[runs, tasks]`` (or ``[runs]`` for one task). Confidence intervals are percentile
intervals of a stratified bootstrap: runs are resampled with replacement within each task, never across.
"""
from __future__ import annotations

import numpy as np
from scipy import stats


def _as_matrix(scores) -> np.ndarray:
    scores = np.asarray(scores, float)
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.ndim != 2 or scores.shape[0] < 1:
        raise ValueError(f"scores must be [runs] or [runs, tasks] with at least one run, got shape {scores.shape}")
    return scores


def interquartile_mean(scores) -> float:
    """Mean of the middle 50 % of all scores pooled over runs and tasks: ``floor(n / 4)`` scores cut
    from each end (``scipy.stats.trim_mean(..., 0.25)``, as rliable computes it)."""
    return float(stats.trim_mean(_as_matrix(scores).ravel(), 0.25))


def median(scores) -> float:
    return float(np.median(_as_matrix(scores)))


def mean(scores) -> float:
    return float(np.mean(_as_matrix(scores)))


_BATCHED = {  # statistic -> the same statistic of each row of [resamples, pooled scores]
    interquartile_mean: lambda x: stats.trim_mean(x, 0.25, axis=1),
    median: lambda x: np.median(x, axis=1),
    mean: lambda x: np.mean(x, axis=1),
}


def stratified_bootstrap_ci(scores, statistic, reps: int = 2000, confidence: float = 0.95,
                            seed: int = 0) -> tuple[float, float, float]:
    """``(point estimate, low, high)`` of ``statistic(scores [runs, tasks]) -> float``: percentile
    interval of ``reps`` stratified bootstrap resamples (runs redrawn within each task)."""
    scores = _as_matrix(scores)
    runs, tasks = scores.shape
    rng = np.random.default_rng(seed)
    index = rng.integers(0, runs, size=(reps, runs, tasks))
    resampled = np.take_along_axis(np.broadcast_to(scores, (reps, runs, tasks)), index, axis=1)
    batched = _BATCHED.get(statistic)
    if batched is not None:  # the same numbers, one numpy call over all resamples
        values = batched(resampled.reshape(reps, runs * tasks))
    else:
        values = np.array([statistic(r) for r in resampled])
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(statistic(scores)), float(low), float(high)


def probability_of_improvement(x, y) -> float:
    """P(X > Y) + P(X = Y) / 2 for a run X of one method and a run Y of the other, per task, averaged
    over tasks (the Mann-Whitney U statistic divided by n m). ``x [n, tasks]``, ``y [m, tasks]``."""
    x, y = _as_matrix(x), _as_matrix(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same tasks, got {x.shape[1]} and {y.shape[1]}")
    per_task = [np.mean((x[:, None, t] > y[None, :, t]) + 0.5 * (x[:, None, t] == y[None, :, t]))
                for t in range(x.shape[1])]
    return float(np.mean(per_task))


def probability_of_improvement_ci(x, y, reps: int = 2000, confidence: float = 0.95,
                                  seed: int = 0) -> tuple[float, float, float]:
    """``probability_of_improvement`` with a percentile interval from resampling the runs of both methods
    (independently, within each task)."""
    x, y = _as_matrix(x), _as_matrix(y)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(reps):
        xi = np.take_along_axis(x, rng.integers(0, x.shape[0], size=x.shape), axis=0)
        yi = np.take_along_axis(y, rng.integers(0, y.shape[0], size=y.shape), axis=0)
        values.append(probability_of_improvement(xi, yi))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return probability_of_improvement(x, y), float(low), float(high)


def area_under_curve(steps, values) -> np.ndarray:
    """Normalised area under learning curves: the trapezoidal integral of ``values [..., E]`` over
    ``steps [E]`` divided by the span of ``steps`` (a mean value over the budget, in the values' unit)."""
    steps = np.asarray(steps, float)
    values = np.asarray(values, float)
    if steps.ndim != 1 or values.shape[-1] != steps.size or steps.size < 2 or np.any(np.diff(steps) <= 0):
        raise ValueError(f"steps must be increasing [E >= 2] matching values' last axis, got {steps.shape} "
                         f"and {values.shape}")
    widths = np.diff(steps)
    return np.sum(0.5 * (values[..., 1:] + values[..., :-1]) * widths, axis=-1) / (steps[-1] - steps[0])


def steps_to_threshold(steps, values, threshold: float) -> np.ndarray:
    """Per curve, the first of ``steps [E]`` at which ``values [..., E]`` is at or above ``threshold``
    (``inf`` where never). Resolution is the evaluation spacing: no interpolation."""
    steps = np.asarray(steps, float)
    values = np.asarray(values, float)
    reached = values >= threshold
    first = np.argmax(reached, axis=-1)
    return np.where(reached.any(axis=-1), steps[first], np.inf)
