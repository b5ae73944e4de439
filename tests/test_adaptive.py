"""Adaptive segment length: the rule on synthetic statistics, the probe's statistics against direct batch
gradients, one compiled program for every length, resume, and equivalence with a fixed length."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from apg_jax import ConfigError, default_config
from apg_jax.adaptive import (LadderStatistics, batch_statistics, choose_length, confirm_length, ladder_statistics,
                              over_updates)
from apg_jax.agents.apg import PROBE_STREAM, segment_objective
from apg_jax.envs.batch import reset_batch
from apg_jax.networks import make_networks
from apg_jax.optim import make_optimizer
from apg_jax.rundir import load_checkpoint, metric_row, save_checkpoint
from apg_jax.training import gradient_scale_ratio, make_trainer
from experiments import run as run_cli
from experiments.cli import config_name
from experiments.runner import batch_seeds, run_experiment

nan = float("nan")


def stats(snr, degrees, finite=None):
    """Statistics of mean gradients at the given angles (2-D unit vectors) with the given SNRs."""
    snr = np.asarray(snr, float)
    finite = np.ones(len(snr), bool) if finite is None else np.asarray(finite)
    angles = np.radians(degrees)
    return LadderStatistics(jnp.asarray(finite), jnp.asarray(snr), jnp.asarray(np.cos(angles[:, None] - angles)),
                            jnp.ones(len(snr)))


@pytest.mark.parametrize("snr, degrees, finite, current, expected, why", [
    ([5, 5, 5, 5], [0, 0, 0, 0], None, 3, 0, "every length points the same way: the shortest"),
    ([5, 5, 5, 5], [60, 40, 10, 0], None, 0, 2, "the shortest within 25 degrees (cos 0.9) of the longest"),
    ([5, 5, 5, 0.3], [60, 40, 10, 0], None, 0, 2, "a noisy longest length is no reference: the next is"),
    ([5, 5, 5, 0.3], [60, 20, 0, 0], None, 0, 1, "agreement is with the reference, not the noisy length"),
    ([5, 5, 5, 5], [60, 40, 10, 0], [True, True, True, False], 0, 2, "a non-finite gradient is never used"),
    ([0.2, 3, 3, 3], [0, 0, 0, 0], None, 0, 1, "an unreliable length is not chosen even where it agrees"),
    ([5, 5, 5, 5], [90, 70, 50, 0], None, 0, 3, "every shorter length is myopic: the reference"),
    ([0.2, 0.3, 0.1, 0.1], [0, 50, 0, 80], None, 2, 2, "nothing reliable: the length in use is kept"),
])
def test_rule_decisions_on_synthetic_statistics(snr, degrees, finite, current, expected, why):
    chosen = choose_length(stats(snr, degrees, finite), jnp.asarray(current), 1.0, 0.9)
    assert int(chosen) == expected, why


@pytest.mark.parametrize("snr, finite, current, plain, held, why", [
    ([5, 5, 0.3, 0.2], None, 2, 0, 2, "the length in use faded into noise, only shorter ones are reliable: kept"),
    ([5, 5, 0.3, 0.2], [True, True, False, True], 2, 0, 0, "the length in use explodes: left"),
    ([5, 5, 5, 0.2], None, 2, 0, 0, "the length in use is reliable: the rule decides"),
    ([5, 0.3, 5, 0.2], None, 1, 0, 0, "a longer reliable reference: the rule decides"),
    ([0.2, 0.3, 0.1, 0.1], None, 2, 2, 2, "nothing reliable: kept either way"),
])
def test_holding_a_length_whose_gradient_faded_into_noise(snr, finite, current, plain, held, why):
    statistics = stats(snr, [0, 0, 0, 0], finite)  # every length points the same way: plainly the shortest
    assert int(choose_length(statistics, jnp.asarray(current), 1.0, 0.9)) == plain, why
    assert int(choose_length(statistics, jnp.asarray(current), 1.0, 0.9, hold_on_noise=True)) == held, why


def test_reliability_over_a_chunk_of_updates_keeps_a_noisy_long_reference():
    """Per update the 64-step gradient (SNR 0.2) is noise and the 32-step one the reference, which the 8-step
    one agrees with; over a chunk (10 updates at 64, 160 at 4) its mean is reliable (SNR 2) and the
    shorter ones, 30 degrees or more away from it, are myopic: the rule keeps the long length."""
    per_update = stats([5, 5, 5, 5, 0.2], [60, 50, 40, 30, 0])
    assert int(choose_length(per_update, jnp.asarray(0), 1.0, 0.9)) == 1
    over_chunk = over_updates(per_update, [160, 80, 40, 20, 10])
    np.testing.assert_allclose(np.asarray(over_chunk.snr), [800, 400, 200, 100, 2])
    np.testing.assert_array_equal(np.asarray(over_chunk.cosine), np.asarray(per_update.cosine))
    assert int(choose_length(over_chunk, jnp.asarray(0), 1.0, 0.9)) == 4
    exploding = over_updates(stats([5, 5, 5, 5, 0.2], [60, 50, 40, 30, 0], [True] * 4 + [False]), [160, 80, 40, 20, 10])
    assert int(choose_length(exploding, jnp.asarray(4), 1.0, 0.9)) == 1, "an exploding length is left however many updates"


def test_training_judges_reliability_over_the_chunk_when_asked():
    """``adapt_snr_over="chunk"``: the trainer's first choice is the rule's on the probe's statistics with
    each length's SNR times the updates a chunk makes at it (4, 2, 1 macro-updates of 16 steps per chunk
    here), which differs from the per-update choice at the threshold picked below."""
    config = default_config("pointmass1d", "apg", segment_length="auto", lr_schedule="constant",
                            segment_ladder=(4, 8, 16), num_envs=8, env_steps=8 * 16 * 3 * 4, num_evals=4)
    trainer = make_trainer(config)
    key = jax.random.PRNGKey(1)
    learner = trainer.init(key).learner
    from apg_jax.agents.apg import make_apg
    raw = jax.jit(make_apg(trainer.env, config, trainer.schedule).probe)(learner)
    updates = [trainer.schedule.updates_per_chunk * 16 // k for k in (4, 8, 16)]
    start = jnp.asarray(1)  # the middle of the ladder, kept where nothing is reliable
    decide = lambda stats, threshold: int(choose_length(stats, start, threshold, config.adapt_min_cosine))
    thresholds = sorted(float(v) * 1.01 for v in np.concatenate([raw.snr, over_updates(raw, updates).snr]))
    differing = [t for t in thresholds if decide(raw, t) != decide(over_updates(raw, updates), t)]
    assert differing, "no threshold separates the two tests on these statistics"
    threshold = differing[0]
    chunk = make_trainer(config.replace(adapt_snr_over="chunk", adapt_min_snr=threshold)).init(key)
    plain = make_trainer(config.replace(adapt_min_snr=threshold)).init(key)
    assert int(chunk.length_index) == decide(over_updates(raw, updates), threshold)
    assert int(plain.length_index) == decide(raw, threshold) != int(chunk.length_index)


def test_a_zero_mean_gradient_never_agrees():
    base = stats([5, 5, 5], [0, 0, 0])
    cosine = np.array(base.cosine)
    cosine[0, :] = cosine[:, 0] = np.nan
    assert int(choose_length(base._replace(cosine=jnp.asarray(cosine)), jnp.asarray(0), 1.0, 0.9)) == 1


def test_batch_statistics_match_numpy():
    rng = np.random.default_rng(0)
    samples = rng.normal(0.3, 1.0, (64, 7))
    mean, snr, finite = batch_statistics(jnp.asarray(samples))
    noise = samples.var(axis=0, ddof=1).sum() / 64
    assert bool(finite) and np.allclose(mean, samples.mean(0), atol=1e-6)
    assert float(snr) == pytest.approx((np.sum(samples.mean(0) ** 2) - noise) / noise, rel=1e-4)
    samples[3, 2] = np.inf
    _, snr, finite = batch_statistics(jnp.asarray(samples))
    assert not bool(finite) and float(snr) == 0.0


def test_ladder_cosine_estimates_the_expected_gradients_cosine():
    """Paired noisy samples of two expected gradients 0.95 apart in cosine, with noise 6x the signal per
    sample (a batch-mean SNR near 2, partly shared noise): the plain cosine of the batch means is pulled
    far towards 0, the corrected one recovers 0.95
    (mean over batches); the formula equals a numpy transcription."""
    rng = np.random.default_rng(1)
    dim, n = 50, 64
    mu_a = rng.normal(size=dim)
    orth = rng.normal(size=dim)
    orth -= orth @ mu_a / (mu_a @ mu_a) * mu_a
    mu_b = 0.95 * mu_a / np.linalg.norm(mu_a) + np.sqrt(1 - 0.95**2) * orth / np.linalg.norm(orth)
    mu_b *= 2.0 * np.linalg.norm(mu_a)
    plain, corrected = [], []
    for _ in range(200):
        common = rng.normal(size=(n, dim))  # noise shared by both lengths (same environments), and own noise
        a = mu_a + 6.0 * np.linalg.norm(mu_a) / np.sqrt(dim) * (0.5 * common + rng.normal(size=(n, dim)))
        b = mu_b + 6.0 * np.linalg.norm(mu_b) / np.sqrt(dim) * (0.5 * common + rng.normal(size=(n, dim)))
        stats_ab = ladder_statistics([jnp.asarray(a), jnp.asarray(b)])
        ma, mb = a.mean(0), b.mean(0)
        plain.append(ma @ mb / np.linalg.norm(ma) / np.linalg.norm(mb))
        corrected.append(float(stats_ab.cosine[0, 1]))
        cross = (a - ma).ravel() @ (b - mb).ravel() / (n - 1)
        signal_a = ma @ ma - np.sum(a.var(0, ddof=1)) / n
        signal_b = mb @ mb - np.sum(b.var(0, ddof=1)) / n
        positive = min(signal_a, signal_b) > 0
        expected = np.clip((ma @ mb - cross / n) / np.sqrt(signal_a * signal_b), -1, 1) if positive else 0.0
        np.testing.assert_allclose(corrected[-1], expected, rtol=1e-4, atol=1e-5)
    assert np.mean(plain) < 0.8
    assert np.nanmean(corrected) == pytest.approx(0.95, abs=0.03)


@pytest.mark.parametrize("estimate, se, z, agrees", [
    (0.85, 0.05, 1.645, True),   # 0.85 + 0.082 reaches 0.9: not significantly below the threshold
    (0.85, 0.05, 0.0, False),    # the plain test
    (0.85, 0.01, 1.645, False),  # precisely measured: significantly below
    (0.95, 0.00, 1.645, True),
])
def test_rule_rejects_a_length_only_when_its_cosine_is_significantly_below_the_threshold(estimate, se, z, agrees):
    base = stats([5, 5], [0, 0])
    cosine = jnp.asarray([[1.0, estimate], [estimate, 1.0]])
    standard_errors = jnp.asarray([[0.0, se], [se, 0.0]])
    chosen = choose_length(base._replace(cosine=cosine, cosine_se=standard_errors), jnp.asarray(1), 1.0, 0.9, z)
    assert int(chosen) == (0 if agrees else 1)


def correlated_pair(rng, n, dim=40, cosine=0.9, noise=4.0):
    """Per-environment gradients ``[n, dim]`` of two lengths whose expected gradients are ``cosine`` apart,
    with noise ``noise`` x the signal per sample, half of it shared (the same environments)."""
    mu_a = rng.normal(size=dim)
    orth = rng.normal(size=dim)
    orth -= orth @ mu_a / (mu_a @ mu_a) * mu_a
    mu_b = np.linalg.norm(mu_a) * (cosine * mu_a / np.linalg.norm(mu_a) + np.sqrt(1 - cosine**2) * orth / np.linalg.norm(orth))
    scale = noise * np.linalg.norm(mu_a) / np.sqrt(dim)
    common = rng.normal(size=(n, dim))
    return (mu_a + scale * (0.5 * common + rng.normal(size=(n, dim))),
            mu_b + scale * (0.5 * common + rng.normal(size=(n, dim))))


def test_cosine_standard_error_is_the_delete_one_jackknife():
    """The closed form equals refitting the corrected cosine without each environment in turn (float64)."""
    a, b = correlated_pair(np.random.default_rng(2), n=12)

    def corrected_cosine(x, y):
        m = len(x)
        mx, my = x.mean(0), y.mean(0)
        products = np.array([[p @ q - (u - p).ravel() @ (v - q).ravel() / (m - 1) / m
                              for q, v in ((mx, x), (my, y))] for p, u in ((mx, x), (my, y))])
        return products[0, 1] / np.sqrt(products[0, 0] * products[1, 1])

    left_out = np.array([corrected_cosine(np.delete(a, k, 0), np.delete(b, k, 0)) for k in range(len(a))])
    expected = np.sqrt((len(a) - 1) / len(a) * np.sum((left_out - left_out.mean()) ** 2))
    measured = ladder_statistics([jnp.asarray(a), jnp.asarray(b)])
    assert float(measured.cosine[0, 1]) == pytest.approx(corrected_cosine(a, b), rel=1e-4)
    assert float(measured.cosine_se[0, 1]) == pytest.approx(expected, rel=1e-3)
    assert float(measured.cosine_se[0, 0]) == pytest.approx(0.0, abs=1e-6)  # a length agrees with itself exactly


def test_cosine_standard_error_matches_the_spread_over_batches():
    """Over many independent batches (batch-mean SNR about 16) the jackknife standard error is the cosine's
    actual spread. (At lower SNR it errs large: the clipping at 1 narrows the actual spread.)"""
    rng = np.random.default_rng(3)
    estimates, errors = [], []
    for _ in range(300):
        a, b = correlated_pair(rng, n=64, noise=2.0)
        measured = ladder_statistics([jnp.asarray(a), jnp.asarray(b)])
        estimates.append(float(measured.cosine[0, 1]))
        errors.append(float(measured.cosine_se[0, 1]))
    assert np.mean(errors) == pytest.approx(np.std(estimates), rel=0.15)


@pytest.mark.parametrize("adapt_probe", ["start", pytest.param("window", marks=pytest.mark.slow)])
def test_probe_statistics_are_those_of_the_batch_segment_gradients(adapt_probe):
    """The probe's per-env gradients average to the batch gradient of each length's training objective,
    from the same states: its norms and cosines match ones computed directly. ``start``: the first K
    steps; ``window``: the 16-step window as consecutive K-step segments, each from the last one's final
    state with the gradient cut there (a K-step learner's objectives over 16 / K updates)."""
    config = default_config("pointmass1d", "apg", segment_length="auto", lr_schedule="constant", segment_ladder=(4, 8, 16),
                            num_envs=16, env_steps=16 * 16 * 20, bootstrap="critic", adapt_probe=adapt_probe)
    trainer = make_trainer(config)
    state = jax.jit(trainer.init)(jax.random.PRNGKey(3))
    update = jax.jit(trainer.update)
    learner = state.learner
    for _ in range(3):  # trained a little, so the critic and the observation statistics are not initial
        learner, _ = update(learner)
    env = trainer.env
    from apg_jax.agents.apg import make_apg
    probe = make_apg(env, config, trainer.schedule).probe
    measured = jax.jit(probe)(learner)
    k_reset, _ = jax.random.split(jax.random.fold_in(learner.key, PROBE_STREAM))
    reset_state = reset_batch(env, k_reset, config.num_envs)
    actor, critic = make_networks(env.action_size, config.hidden_sizes, config.activation, config.init_log_std)
    grads = []
    for k in (4, 8, 16):
        noise = jnp.zeros((k, config.num_envs, env.action_size))
        objective = lambda p, start: segment_objective(p, learner.critic_params, learner.obs_stats, start,
                                                       reset_state, noise, env=env, actor=actor, critic=critic,
                                                       gamma=config.gamma, bootstrap="critic",
                                                       reward_scale=config.reward_scale)
        start, grad = learner.env_state, 0.0
        for _ in range(16 // k if adapt_probe == "window" else 1):
            grad = grad + jax.flatten_util.ravel_pytree(jax.grad(lambda p: objective(p, start)[0])(learner.actor_params))[0]
            start = objective(learner.actor_params, start)[1].final_state
        grads.append(grad)
    if adapt_probe == "window":  # the cuts matter: a 4-step learner does not follow the 16-step gradient
        assert float(jnp.linalg.norm(grads[0] - grads[2])) > 1e-2 * float(jnp.linalg.norm(grads[2]))
    for measured_mean, grad in zip(measured.mean, grads):
        assert float(jnp.linalg.norm(measured_mean - grad)) < 2e-4 * float(jnp.linalg.norm(grad))
    np.testing.assert_allclose(np.asarray(measured.norm), [float(jnp.linalg.norm(g)) for g in grads], rtol=2e-4)
    assert bool(jnp.all(measured.finite)) and np.all(np.asarray(measured.snr) > 0)


def test_every_length_runs_in_one_compiled_program(compiles):
    """Seeds at different lengths, and lengths changing between chunks, never recompile."""
    config = default_config("pointmass1d", "apg", segment_length="auto", lr_schedule="constant", segment_ladder=(4, 8, 16),
                            num_envs=8, env_steps=8 * 16 * 2 * 4, num_evals=4)
    trainer = make_trainer(config)
    chunk = jax.jit(batch_seeds(trainer))
    states = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.PRNGKey(0), 3))
    seen = None
    for indices in ([0, 1, 2], [2, 2, 0], [1, 0, 1]):
        states = states.replace(length_index=jnp.asarray(indices, jnp.int32))
        before = states.updates
        states, metrics = chunk(states)
        np.testing.assert_array_equal(metrics["segment_length"], [(4, 8, 16)[i] for i in indices])
        # a chunk holds the same env steps at every length: 16 / K updates per macro-update
        np.testing.assert_array_equal(states.updates - before, [2 * 16 // (4, 8, 16)[i] for i in indices])
        if seen is None:
            seen = len(compiles)
    assert len(compiles) == seen, "changing segment lengths recompiled the chunk"


def test_a_length_change_restarts_the_actor_optimizer_only_where_it_happens():
    """``adapt_reset_optimizer``: seeds whose length changes start the next chunk with Adam's initial state
    (moments and step count zero, as ``make_optimizer(...).init`` gives); a seed that keeps its length keeps
    its moments."""
    config = default_config("pointmass1d", "apg", segment_length="auto", lr_schedule="constant", segment_ladder=(4, 8, 16),
                            num_envs=8, env_steps=8 * 16 * 2 * 4, num_evals=4, adapt_min_snr=0.0, adapt_min_cosine=-1.0,
                            adapt_reset_optimizer=True)  # every gradient passes: the rule picks K = 4
    trainer = make_trainer(config)
    states = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.PRNGKey(0), 3))
    states = states.replace(length_index=jnp.asarray([0, 1, 2], jnp.int32))
    states, _ = jax.jit(batch_seeds(trainer))(states)
    np.testing.assert_array_equal(states.length_index, [0, 0, 0])
    fresh = make_optimizer(config.learning_rate, config.max_grad_norm, "constant", 1, config.adam_betas).init(
        jax.tree.map(lambda x: x[0], states.learner.actor_params))
    for seed, restarted in enumerate([False, True, True]):
        opt = jax.tree.map(lambda x: x[seed], states.learner.actor_opt)
        same = [bool(jnp.array_equal(a, b)) for a, b in zip(jax.tree.leaves(opt), jax.tree.leaves(fresh))]
        assert all(same) == restarted, (seed, same)  # (kept: some leaves, e.g. an unused log-std's, stay 0)
    trainer = make_trainer(config.replace(adapt_reset_optimizer=False))
    states = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.PRNGKey(0), 3))
    states, _ = jax.jit(batch_seeds(trainer))(states.replace(length_index=jnp.asarray([0, 1, 2], jnp.int32)))
    counts = [int(jax.tree.leaves(jax.tree.map(lambda x: x[s], states.learner.actor_opt))[0]) for s in range(3)]
    assert min(counts) > 0, "without the flag no seed restarts"


def test_a_length_change_rescales_the_actor_optimizer_moments_by_the_gradient_scale():
    """``adapt_rescale_optimizer``: from the same states the same updates run with and without it; afterwards
    a seed whose length changed holds Adam's moments times ``r`` (first) and ``r**2`` (second) with ``r`` the
    logged ``optimizer_rescale``, and a seed that kept its length holds them unchanged (``r = 1``)."""
    config = default_config("pointmass1d", "apg", segment_length="auto", lr_schedule="constant", segment_ladder=(4, 8, 16),
                            num_envs=8, env_steps=8 * 16 * 2 * 4, num_evals=4, adapt_min_snr=0.0, adapt_min_cosine=-1.0,
                            max_grad_norm=1e3)  # (with pointmass1d's own bound the norms of every length are clipped)
    after = {}
    for flag in (False, True):
        trainer = make_trainer(config.replace(adapt_rescale_optimizer=flag))
        states = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.PRNGKey(0), 3))
        states = states.replace(length_index=jnp.asarray([0, 1, 2], jnp.int32))
        after[flag] = jax.jit(batch_seeds(trainer))(states)
    (plain, _), (scaled, metrics) = after[False], after[True]
    np.testing.assert_array_equal(scaled.length_index, [0, 0, 0])
    ratio = np.asarray(metrics["optimizer_rescale"])
    assert ratio[0] == 1.0 and np.all(ratio[1:] != 1.0) and np.all(np.isfinite(ratio)), ratio
    adam = lambda opt: [s for s in jax.tree.leaves(opt, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))
                        if isinstance(s, optax.ScaleByAdamState)][0]
    old, new = adam(plain.learner.actor_opt), adam(scaled.learner.actor_opt)
    for seed in range(3):
        for power, (a, b) in ((1, (old.mu, new.mu)), (2, (old.nu, new.nu))):
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
                np.testing.assert_allclose(y[seed], ratio[seed] ** power * x[seed], rtol=1e-5, atol=1e-30)
    np.testing.assert_array_equal(new.count, old.count)
    counts = {"env_steps": 0, "actor_grad_steps": 0, "critic_grad_steps": 0}
    row = metric_row(config, 1, 1, counts, 0.0, jax.tree.map(lambda v: v[1], metrics))
    assert row["optimizer_rescale"] == pytest.approx(float(ratio[1]))  # logged in metrics.csv


def confirmed_path(proposals, confirmations, finite=None, start=0):
    """Lengths in use after each proposal of ``proposals`` under ``confirm_length``."""
    index, pending, count, path = start, start, 0, []
    for i, proposal in enumerate(proposals):
        ok = True if finite is None else finite[i]
        index, pending, count = (int(x) for x in confirm_length(proposal, index, pending, count, jnp.asarray(ok),
                                                                confirmations))
        path.append(index)
    return path


@pytest.mark.parametrize("proposals, confirmations, finite, expected, why", [
    ([1, 0, 2, 2, 0], 1, None, [1, 0, 2, 2, 0], "one confirmation: every proposal is taken"),
    ([1, 0, 1, 0, 1, 0], 2, None, [0, 0, 0, 0, 0, 0], "a single-chunk excursion is never taken"),
    ([1, 1, 0, 2, 0, 0], 2, None, [0, 1, 1, 1, 1, 0], "two in a row switch; the count restarts after it"),
    ([2, 1, 1, 2, 2], 2, None, [0, 0, 1, 1, 2], "a different proposal restarts the count"),
    ([1, 0, 1, 1], 3, None, [0, 0, 0, 0], "back at the length in use: nothing pending"),
    ([1, 1, 1, 2], 3, None, [0, 0, 1, 1], "three confirmations"),
    ([1, 2], 2, [False, True], [1, 1], "an exploding length in use is left at once"),
])
def test_a_new_length_needs_consecutive_confirmations(proposals, confirmations, finite, expected, why):
    assert confirmed_path(proposals, confirmations, finite) == expected, why


def test_confirmations_hold_the_length_in_training_and_survive_a_checkpoint(tmp_path):
    """With two confirmations the first proposal of K = 4 only becomes pending, the second takes it; a
    checkpoint written before the pending fields existed resumes with nothing pending."""
    config = default_config("pointmass1d", "apg", segment_length="auto", lr_schedule="constant", segment_ladder=(4, 8, 16),
                            num_envs=8, env_steps=8 * 16 * 2 * 4, num_evals=4, adapt_min_snr=0.0, adapt_min_cosine=-1.0,
                            adapt_confirmations=2)  # every gradient passes: the rule proposes K = 4
    trainer = make_trainer(config)
    chunk = jax.jit(batch_seeds(trainer))
    states = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.PRNGKey(0), 3))
    np.testing.assert_array_equal(states.length_index, [0, 0, 0])  # the first choice needs no confirmation
    states = states.replace(length_index=jnp.asarray([0, 1, 2], jnp.int32))
    states, metrics = chunk(states)
    np.testing.assert_array_equal(metrics["segment_length"], [4, 8, 16])
    np.testing.assert_array_equal(states.length_index, [0, 1, 2])
    np.testing.assert_array_equal(states.pending_count, [0, 1, 1])
    save_checkpoint(str(tmp_path), states, 1, 0.0)
    restored, chunks, _ = load_checkpoint(str(tmp_path), states)
    np.testing.assert_array_equal(restored.pending_count, [0, 1, 1])
    states, _ = chunk(states)
    np.testing.assert_array_equal(states.length_index, [0, 0, 0])
    np.testing.assert_array_equal(states.pending_count, [0, 0, 0])
    # an older checkpoint: the same state without the pending fields
    from flax import serialization
    old = serialization.to_state_dict({"state": restored, "chunk": np.int64(1), "wall_time_s": np.float64(0)})
    del old["state"]["pending_index"], old["state"]["pending_count"]
    (tmp_path / "checkpoint.msgpack").write_bytes(serialization.msgpack_serialize(old))
    legacy, chunks, _ = load_checkpoint(str(tmp_path), restored)
    assert chunks == 1
    np.testing.assert_array_equal(legacy.pending_index, [0, 1, 2])
    np.testing.assert_array_equal(legacy.pending_count, [0, 0, 0])


def test_the_gradient_scale_ratio_clips_as_the_optimizer_does_and_ignores_unusable_norms():
    norms = jnp.array([0.5, 10.0, jnp.nan, 0.0, 1.0])
    ratio = lambda a, b: float(gradient_scale_ratio(norms, a, b, 2.0))
    assert ratio(0, 1) == pytest.approx(4.0)  # 10 is clipped to 2
    assert ratio(1, 0) == pytest.approx(0.25)
    assert ratio(0, 4) == pytest.approx(2.0)
    assert ratio(0, 2) == 1.0 and ratio(2, 0) == 1.0 and ratio(3, 0) == 1.0 and ratio(0, 3) == 1.0


def strip_wall(rows):
    same = lambda v: "nan" if isinstance(v, float) and np.isnan(v) else v
    return [{k: same(v) for k, v in r.items() if k != "wall_time_s"} for r in rows]


@pytest.mark.slow
def test_auto_resumes_with_the_length_in_use(tmp_path):
    config = default_config("pointmass1d", "apg", segment_length="auto", lr_schedule="constant", segment_ladder=(4, 8),
                            num_envs=16, env_steps=16 * 8 * 4 * 6, num_evals=6)
    full = run_experiment(config, 2, str(tmp_path / "full"), progress=False, artifacts=False)
    run_experiment(config, 2, str(tmp_path / "cut"), progress=False, max_chunks=3, artifacts=False)
    resumed = run_experiment(config, 2, str(tmp_path / "cut"), progress=False, artifacts=False)
    assert strip_wall(resumed.rows) == strip_wall(full.rows)
    lengths = [r["segment_length"] for r in full.rows if r["chunk"] > 0]
    assert set(lengths) <= {4.0, 8.0}
    grads = {s: [r["actor_grad_steps"] for r in full.rows if r["seed"] == s] for s in (0, 1)}
    assert all(np.all(np.diff(g) > 0) for g in grads.values())


def test_auto_held_at_one_length_trains_exactly_as_that_fixed_length(tmp_path):
    """With thresholds every gradient passes the rule picks the shortest length: the same numbers as a
    fixed-K run (the probe draws its own random numbers)."""
    common = dict(num_envs=16, env_steps=16 * 16 * 2 * 4, num_evals=4)
    auto = default_config("pointmass1d", "apg", segment_length="auto", lr_schedule="constant", segment_ladder=(8, 16),
                          adapt_min_snr=0.0, adapt_min_cosine=-1.0, **common)
    fixed = default_config("pointmass1d", "apg", segment_length=8, lr_schedule="constant", **common)
    a = run_experiment(auto, 1, str(tmp_path / "auto"), progress=False, artifacts=False).rows
    f = run_experiment(fixed, 1, str(tmp_path / "fixed"), progress=False, artifacts=False).rows
    for key in ("env_steps", "actor_grad_steps", "segment_length"):
        assert [r[key] for r in a[1:]] == [r[key] for r in f[1:]], key
    for key in ("eval_return", "grad_norm", "actor_loss"):  # seeds under lax.map vs vmap: float32 rounding
        np.testing.assert_allclose([r[key] for r in a[1:]], [r[key] for r in f[1:]], rtol=1e-5)


@pytest.mark.parametrize("overrides, message", [
    (dict(algo="ppo"), "is for --algo apg"),
    (dict(segment_ladder=(4, 6, 8)), "must divide the largest"),
    (dict(segment_ladder=(8, 4)), "increasing positive lengths"),
    (dict(segment_ladder=(128, 256)), "at least one within the horizon 100"),
    (dict(lr_schedule="linear"), "needs lr_schedule='constant'"),
    (dict(adapt_min_cosine=1.5), "adapt_min_cosine must be in \\[-1, 1\\]"),
    (dict(adapt_probe="middle"), "unknown adapt_probe 'middle'; valid: start, window"),
    (dict(segment_length="automatic"), "'auto', or unset"),
    (dict(adapt_reset_optimizer=True, adapt_rescale_optimizer=True), "exclude each other"),
    (dict(adapt_confirmations=0), "adapt_confirmations must be >= 1"),
    (dict(adapt_snr_over="episode"), "unknown adapt_snr_over 'episode'; valid: update, chunk"),
])
def test_auto_rejects_impossible_configurations(overrides, message):
    config = default_config("pointmass1d", "apg", segment_length="auto", lr_schedule="constant").replace(**overrides)
    with pytest.raises(ConfigError, match=message):
        make_trainer(config)


def test_auto_replaces_a_tuned_decaying_schedule_unless_one_is_asked_for():
    assert default_config("pointmass1d", "apg").lr_schedule == "linear"  # the tuned default
    assert default_config("pointmass1d", "apg", segment_length="auto").lr_schedule == "constant"
    with pytest.raises(ConfigError, match="needs lr_schedule='constant'"):
        make_trainer(default_config("pointmass1d", "apg", segment_length="auto", lr_schedule="cosine"))


def test_cli_takes_auto_and_full():
    assert run_cli.build_config(run_cli.parse_args(["--task", "franka", "--segment-length", "auto"])
                                ).segment_length == "auto"
    assert run_cli.build_config(run_cli.parse_args(["--task", "franka", "--segment-length", "full"])
                                ).segment_length is None
    assert run_cli.build_config(run_cli.parse_args(["--task", "franka"])).segment_length == 4
    with pytest.raises(SystemExit):
        run_cli.parse_args(["--segment-length", "long"])


def test_the_optimizer_restart_is_named_in_the_configuration_label():
    auto = default_config("franka", "apg", segment_length="auto", bootstrap="mc")
    assert config_name(auto) == "franka-apg-Kauto-mc"
    assert config_name(auto.replace(adapt_reset_optimizer=True)) == "franka-apg-Kauto-mc-restart"
    assert config_name(auto.replace(adapt_rescale_optimizer=True)) == "franka-apg-Kauto-mc-rescale"
    assert config_name(auto.replace(adapt_snr_over="chunk", adapt_hold_on_noise=True)) == "franka-apg-Kauto-mc-chunksnr-hold"
    assert config_name(auto.replace(adapt_hold_on_noise=True, adapt_confirmations=2, adapt_rescale_optimizer=True)
                       ) == "franka-apg-Kauto-mc-hold-confirm2-rescale"
    assert config_name(default_config("franka", "apg", segment_length=8, adapt_reset_optimizer=True,
                                      bootstrap="mc")) == "franka-apg-K8-mc"  # no length changes: no restart
