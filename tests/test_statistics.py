"""apg_jax.statistics: IQM, stratified bootstrap, probability of improvement, AUC, steps to threshold."""
import numpy as np
import pytest
from scipy import stats

from apg_jax import statistics as st


def test_interquartile_mean_cuts_a_quarter_from_each_end():
    x = np.array([100.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -50.0])  # 8 runs: 2 cut at each end
    assert st.interquartile_mean(x) == pytest.approx(np.mean([2.0, 3.0, 4.0, 5.0]))
    runs = np.random.default_rng(0).normal(size=(10, 3))  # pooled over runs and tasks: 30 scores, 7 cut
    pooled = np.sort(runs.ravel())[7:23]
    assert st.interquartile_mean(runs) == pytest.approx(pooled.mean())
    assert st.median(runs) == pytest.approx(np.median(runs))


def test_bootstrap_resamples_within_tasks_only():
    # task 0 always scores 0, task 1 always 10: resampling runs within a task can never change the mean;
    # resampling across tasks would
    scores = np.stack([np.zeros(6), np.full(6, 10.0)], axis=1)
    point, low, high = st.stratified_bootstrap_ci(scores, st.mean, reps=500, seed=1)
    assert point == low == high == 5.0


def test_bootstrap_interval_covers_the_mean_at_its_nominal_rate():
    rng = np.random.default_rng(3)
    covered = 0
    for trial in range(200):
        x = rng.normal(loc=2.0, size=30)
        _, low, high = st.stratified_bootstrap_ci(x, st.mean, reps=400, seed=trial)
        covered += low <= 2.0 <= high
    assert 0.88 <= covered / 200 <= 0.99  # nominal 0.95; percentile intervals run slightly narrow
    # more runs, narrower interval; same seed, same interval
    x = rng.normal(size=200)
    wide = np.subtract(*st.stratified_bootstrap_ci(x[:20], st.mean, seed=0)[2:0:-1])
    narrow = np.subtract(*st.stratified_bootstrap_ci(x, st.mean, seed=0)[2:0:-1])
    assert narrow < 0.6 * wide
    assert st.stratified_bootstrap_ci(x, st.median, seed=5) == st.stratified_bootstrap_ci(x, st.median, seed=5)


def test_probability_of_improvement_is_the_mann_whitney_statistic():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0.3, 1, size=(10, 2)), rng.normal(0.0, 1, size=(12, 2))
    x[0, 0] = y[0, 0]  # a tie counts one half
    expected = np.mean([stats.mannwhitneyu(x[:, t], y[:, t]).statistic / (10 * 12) for t in range(2)])
    assert st.probability_of_improvement(x, y) == pytest.approx(expected)
    assert st.probability_of_improvement(x + 100, y) == 1.0
    assert st.probability_of_improvement(y, y) == 0.5
    p, low, high = st.probability_of_improvement_ci(x, y, reps=300)
    assert low <= p <= high and high - low > 0.05
    with pytest.raises(ValueError, match="same tasks"):
        st.probability_of_improvement(x, y[:, :1])


def test_area_under_curve_and_steps_to_threshold():
    steps = np.array([0.0, 1.0, 3.0])
    values = np.array([[0.0, 2.0, 2.0], [1.0, 1.0, 1.0]])
    # trapezoids: (0+2)/2 * 1 + (2+2)/2 * 2 = 5 over a span of 3
    np.testing.assert_allclose(st.area_under_curve(steps, values), [5 / 3, 1.0])
    np.testing.assert_array_equal(st.steps_to_threshold(steps, values, 1.5), [1.0, np.inf])
    np.testing.assert_array_equal(st.steps_to_threshold(steps, values, 1.0), [1.0, 0.0])
    with pytest.raises(ValueError, match="increasing"):
        st.area_under_curve(np.array([0.0, 2.0, 1.0]), values)


def test_batched_statistics_equal_the_loop():
    x = np.random.default_rng(2).normal(size=(9, 3))
    for statistic in (st.interquartile_mean, st.median, st.mean):
        fast = st.stratified_bootstrap_ci(x, statistic, reps=200, seed=4)
        slow = st.stratified_bootstrap_ci(x, lambda s: statistic(s), reps=200, seed=4)  # not in the table
        np.testing.assert_allclose(fast, slow, rtol=1e-12)
