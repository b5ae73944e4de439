"""Hybrid analytic / likelihood-ratio gradient: its pieces against direct computations, both estimators
agree on a smooth task, the weight moves to the likelihood ratio at a near-hard contact, and training."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.stats import norm

from apg_jax import ConfigError, default_config
from apg_jax.config import DEFAULTS, HYBRID_FROM_PPO
from apg_jax.agents.apg import Segment, make_apg, segment_gae
from apg_jax.agents.hybrid import log_likelihood, mix, reuse_segment, reward_to_go
from apg_jax.envs import make
from apg_jax.networks import init_params, make_networks
from apg_jax.normalization import init_stats
from apg_jax.optim import make_optimizer
from apg_jax.training import make_trainer
from experiments.cli import config_name
from experiments.runner import run_experiment


def test_reward_to_go_stops_at_episode_ends():
    rng = np.random.default_rng(0)
    c = rng.normal(size=(7, 3))
    ended = np.zeros((7, 3))
    ended[2, 0] = ended[5, 1] = 1.0
    expected = np.zeros_like(c)
    for n in range(3):
        running = 0.0
        for t in reversed(range(7)):
            running = c[t, n] + (0.0 if ended[t, n] else running)
            expected[t, n] = running
    np.testing.assert_allclose(reward_to_go(jnp.asarray(c), jnp.asarray(ended)), expected, rtol=1e-5)


def test_log_likelihood_is_the_gaussian_density_of_the_taken_action():
    actor, critic = make_networks(2, (8,), "tanh", -0.3)
    params, _ = init_params(actor, critic, jax.random.PRNGKey(0), 3)
    obs = jax.random.normal(jax.random.PRNGKey(1), (4, 5, 3))
    noise = jax.random.normal(jax.random.PRNGKey(2), (4, 5, 2))
    stats = init_stats(3)
    mean, log_std = actor.apply(params, obs)
    action = np.asarray(mean + jnp.exp(log_std) * noise)
    expected = norm.logpdf(action, np.asarray(mean), np.exp(np.asarray(log_std))).sum(-1)
    np.testing.assert_allclose(log_likelihood(actor, params, stats, obs, noise), expected, rtol=1e-5)


def test_mixture_weights_by_inverse_variance_and_drops_a_biased_or_broken_analytic_gradient():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=6)
    analytic = truth + 0.1 * rng.normal(size=(4000, 6))
    likelihood = truth + 0.3 * rng.normal(size=(4000, 6))
    m = mix(jnp.asarray(analytic), jnp.asarray(likelihood), 3.0)
    s_a, s_l = analytic.var(0, ddof=1).sum() / 4000, likelihood.var(0, ddof=1).sum() / 4000
    assert float(m.analytic_weight) == pytest.approx(s_l / (s_a + s_l), rel=1e-4)  # about 0.9
    expected = s_l / (s_a + s_l) * analytic.mean(0) + s_a / (s_a + s_l) * likelihood.mean(0)
    np.testing.assert_allclose(m.gradient, expected, rtol=1e-4, atol=1e-6)
    biased = mix(jnp.asarray(analytic + 0.5), jnp.asarray(likelihood), 3.0)
    assert float(biased.disagreement) > 3.0 and float(biased.analytic_weight) == 0.0
    np.testing.assert_allclose(biased.gradient, likelihood.mean(0), rtol=1e-4, atol=1e-6)
    broken = analytic.copy()
    broken[7, 2] = np.nan
    m = mix(jnp.asarray(broken), jnp.asarray(likelihood), 3.0)
    assert float(m.analytic_weight) == 0.0 and np.all(np.isfinite(m.gradient))


def test_unpaired_mixture_of_disjoint_environments_adds_the_variances():
    """``paired=False`` (the split batch): the estimates come from different environments, in different
    numbers; the weight is still inverse-variance and the disagreement is measured against s_A + s_L."""
    rng = np.random.default_rng(2)
    truth = rng.normal(size=5)
    analytic = truth + 0.1 * rng.normal(size=(3000, 5))
    likelihood = truth + 0.4 * rng.normal(size=(1000, 5))
    m = mix(jnp.asarray(analytic), jnp.asarray(likelihood), 3.0, paired=False)
    s_a, s_l = analytic.var(0, ddof=1).sum() / 3000, likelihood.var(0, ddof=1).sum() / 1000
    assert float(m.analytic_weight) == pytest.approx(s_l / (s_a + s_l), rel=1e-4)  # about 0.98
    distance = np.linalg.norm(analytic.mean(0) - likelihood.mean(0))
    assert float(m.disagreement) == pytest.approx(distance / np.sqrt(s_a + s_l), rel=1e-4)
    biased = mix(jnp.asarray(analytic + 0.1), jnp.asarray(likelihood), 3.0, paired=False)
    assert float(biased.disagreement) > 3.0 and float(biased.analytic_weight) == 0.0


def test_split_batch_takes_the_analytic_gradient_from_the_deterministic_policy():
    """``hybrid_explore_fraction=0.5``: the first half of the environments act with the policy's mean (no
    noise) and their analytic gradients are APG's deterministic ones from the same states and resets
    (log-std entry 0); the second half explore with the same noise as the unsplit hybrid draws."""
    split = default_config("pointmass1d", "hybrid", segment_length=8, num_envs=16, hybrid_explore_fraction=0.5)
    full = split.replace(hybrid_explore_fraction=1.0)
    apg = split.replace(algo="apg", exploration_noise=False, hybrid_explore_fraction=1.0)
    env = make("pointmass1d")
    learner = jax.jit(make_trainer(split).init)(jax.random.PRNGKey(0)).learner
    keys = jax.random.split(jax.random.PRNGKey(1))

    def gradients(config):
        parts = make_apg(env, config, make_trainer(config).schedule)
        reset, noise = parts.draw(*keys, 8, learner.env_steps)
        return noise, parts.per_env_gradients(learner, learner.env_state, reset, noise)[2]

    (noise, grads), (full_noise, _), (_, apg_grads) = gradients(split), gradients(full), gradients(apg)
    assert float(jnp.max(jnp.abs(noise[:, :8]))) == 0.0
    np.testing.assert_array_equal(noise[:, 8:], full_noise[:, 8:])
    np.testing.assert_allclose(grads[:8], apg_grads[:8], rtol=1e-5, atol=1e-7)
    marked = jax.tree_util.tree_map_with_path(
        lambda path, x: jnp.full_like(x, "log_std" in jax.tree_util.keystr(path)), learner.actor_params)
    log_std = jax.flatten_util.ravel_pytree(marked)[0] > 0
    assert int(jnp.sum(log_std)) == env.action_size
    assert float(jnp.max(jnp.abs(grads[:8][:, log_std]))) == 0.0
    assert float(jnp.min(jnp.abs(grads[8:][:, log_std]))) > 0.0  # exploring: the std moves the actions


def test_split_update_mixes_the_deterministic_analytic_and_the_exploring_likelihood_gradients():
    """One split update end to end (no reuse passes) against its pieces computed directly over the whole
    batch: the analytic rows of the deterministic environments, the likelihood-ratio rows of the exploring
    ones, their unpaired mixture stepped by the actor's optimizer; the environments end where the whole
    batch's rollout ends."""
    config = default_config("pointmass1d", "hybrid", segment_length=8, num_envs=16, hybrid_explore_fraction=0.25,
                            hybrid_reuse_epochs=0)
    env, trainer = make("pointmass1d"), make_trainer(config)
    parts = make_apg(env, config, trainer.schedule)
    learner = jax.jit(trainer.init)(jax.random.PRNGKey(3)).learner
    updated, metrics = jax.jit(parts.updates[0])(learner)

    _, k_reset, k_noise, _ = jax.random.split(learner.key, 4)
    reset, noise = parts.draw(k_reset, k_noise, 8, learner.env_steps)
    values, segment, analytic = parts.per_env_gradients(learner, learner.env_state, reset, noise)
    likelihood = parts.likelihood_gradients(learner, segment, noise)
    expected = mix(analytic[:12], likelihood[12:], config.hybrid_bias_z, paired=False)
    assert 0.0 < float(expected.analytic_weight) < 1.0
    np.testing.assert_allclose(metrics["analytic_weight"], expected.analytic_weight, rtol=1e-4)
    np.testing.assert_allclose(metrics["actor_loss"], -jnp.mean(values), rtol=1e-5)

    optimizer = make_optimizer(config.learning_rate, config.max_grad_norm, config.lr_schedule,
                               trainer.schedule.num_updates, config.adam_betas)
    unravel = jax.flatten_util.ravel_pytree(learner.actor_params)[1]
    stepped = optimizer.update(unravel(-expected.gradient), learner.actor_opt, learner.actor_params)[0]
    want = jax.flatten_util.ravel_pytree(optax.apply_updates(learner.actor_params, stepped))[0]
    got = jax.flatten_util.ravel_pytree(updated.actor_params)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)
    assert float(jnp.max(jnp.abs(got - jax.flatten_util.ravel_pytree(learner.actor_params)[0]))) > 0.0
    np.testing.assert_allclose(updated.env_state.pipeline_state, segment.final_state.pipeline_state, rtol=1e-6)


def per_env_estimates(task, config, states=None, seed=0):
    """Analytic and likelihood-ratio per-env gradients ``[N, P]`` of one segment (optionally from the
    physics states ``states [N, S]``)."""
    env = make(task, **config.env_params)
    trainer = make_trainer(config)
    parts = make_apg(env, config, trainer.schedule)
    learner = jax.jit(trainer.init)(jax.random.PRNGKey(seed)).learner
    if states is not None:
        learner = learner.replace(env_state=learner.env_state.replace(
            pipeline_state=states, obs=jax.vmap(env.observe)(states)))
    k = config.segment_length

    @jax.jit
    def estimates(learner):
        reset, noise = parts.draw(*jax.random.split(jax.random.PRNGKey(seed + 1)), k, learner.env_steps)
        _, segment, analytic = parts.per_env_gradients(learner, learner.env_state, reset, noise)
        return analytic, parts.likelihood_gradients(learner, segment, noise)

    return estimates(learner)


def test_both_estimators_estimate_the_same_gradient_on_a_smooth_task():
    """pointmass1d (linear dynamics): the per-env difference of the two estimates has a mean within its
    standard error (the statistic |mean d|^2 / (tr cov(d) / N) is about 1 or below); a likelihood-ratio
    estimate with a sign error is far outside it."""
    config = default_config("pointmass1d", "hybrid", segment_length=10, num_envs=4096, bootstrap="critic")
    analytic, likelihood = per_env_estimates("pointmass1d", config)
    n = analytic.shape[0]

    def statistic(a, b):
        d = a - b
        return float(jnp.sum(jnp.mean(d, 0) ** 2) / (jnp.sum(jnp.var(d, 0, ddof=1)) / n))

    assert statistic(analytic, likelihood) < 3.0
    assert statistic(analytic, -likelihood) > 20.0


def contact_states(n: int) -> jnp.ndarray:
    """pointmass2d states moving at 1 m/s into the central obstacle (contact within two steps)."""
    key = jax.random.PRNGKey(5)
    x = -0.2 + 0.05 * jax.random.uniform(key, (n,))
    y = jax.random.uniform(jax.random.fold_in(key, 1), (n,), minval=-0.1, maxval=0.1)
    zeros = jnp.zeros(n)
    return jnp.stack([x, y, jnp.ones(n), zeros, jnp.full(n, 0.75), zeros, zeros], axis=1)


@pytest.mark.slow
def test_the_weight_moves_to_the_likelihood_ratio_at_a_near_hard_contact():
    """Same stiff contact (3e4 N/m), smoothed over 2 mm (default) or 1 micrometre (near-hard): the analytic
    gradient through the near-hard contact explodes in variance and the mixture leans on the likelihood
    ratio (measured weights 0.006-0.19 over 4 batches); with the smoothing it keeps the analytic gradient
    (0.996-0.997)."""
    weights = {}
    for width in (2e-3, 1e-6):
        config = default_config("pointmass2d", "hybrid", segment_length=10, num_envs=256,
                                env_params={"contact_width": width, "contact_stiffness": 3e4})
        weights[width] = []
        for seed in (0, 1):
            analytic, likelihood = per_env_estimates("pointmass2d", config, contact_states(256), seed=seed)
            weights[width].append(float(mix(analytic, likelihood, config.hybrid_bias_z).analytic_weight))
    assert min(weights[2e-3]) > 0.9, weights
    assert max(weights[1e-6]) < 0.5, weights


@pytest.mark.parametrize("explore_fraction", [1.0, 0.25])
def test_hybrid_trains_and_logs_the_analytic_weight(tmp_path, explore_fraction):
    config = default_config("pointmass1d", "hybrid", env_steps=64 * 100 * 8, num_evals=4,
                            hybrid_explore_fraction=explore_fraction)
    rows = run_experiment(config, 1, str(tmp_path), progress=False, artifacts=False).rows
    weights = [r["analytic_weight"] for r in rows[1:]]
    assert all(0.0 <= w <= 1.0 for w in weights), weights
    assert rows[-1]["eval_return"] > rows[0]["eval_return"] + 20  # -72 at the start
    assert all(np.isfinite(r["grad_norm"]) for r in rows[1:])


def test_hybrid_needs_a_stochastic_policy_and_unknown_env_params_are_refused():
    with pytest.raises(ConfigError, match="set exploration_noise=True"):
        make_trainer(default_config("pointmass1d", "hybrid", exploration_noise=False))
    with pytest.raises(ConfigError, match="unknown parameter.*contact_widht"):
        make_trainer(default_config("pointmass2d", "apg", env_params={"contact_widht": 1e-6}))


def test_reuse_passes_scale_with_the_likelihood_weight_and_climb_the_surrogate():
    """Weight 0 leaves the policy as it is; weight 1/2 moves it half of PPO's (weight 1) single step;
    four full-weight passes raise the advantage-weighted log-likelihood of the taken actions, and the
    clipping holds the probability ratios closer to 1 than the same passes unclipped."""
    actor, critic = make_networks(2, (16,), "tanh", -0.5)
    params, _ = init_params(actor, critic, jax.random.PRNGKey(0), 3)
    obs = jax.random.normal(jax.random.PRNGKey(1), (8, 16, 3))
    noise = jax.random.normal(jax.random.PRNGKey(2), (8, 16, 2))
    advantages = noise[..., 0] - 0.5 * noise[..., 1]  # favours some directions of the taken actions
    stats = init_stats(3)
    optimizer = make_optimizer(1e-2, 1.0, "constant", 1, (0.9, 0.999))
    kw = dict(epochs=1, minibatches=1, clip_eps=0.2, normalize_advantages=True)
    flat = lambda p: jax.flatten_util.ravel_pytree(p)[0]
    run = lambda weight, **extra: reuse_segment(actor, optimizer, params, params, optimizer.init(params), stats,
                                                obs, noise, advantages, weight, jax.random.PRNGKey(3),
                                                **{**kw, **extra})[0]
    np.testing.assert_array_equal(flat(run(0.0)), flat(params))
    full, half = flat(run(1.0)) - flat(params), flat(run(0.5)) - flat(params)
    assert float(jnp.linalg.norm(full)) > 1e-3
    np.testing.assert_allclose(half, 0.5 * full, rtol=1e-5, atol=1e-8)
    old = log_likelihood(actor, params, stats, obs, noise)
    old_mean, old_log_std = actor.apply(params, obs)
    taken = old_mean + jnp.exp(old_log_std) * noise

    def log_ratio(p):
        mean, log_std = actor.apply(p, obs)
        z = (taken - mean) / jnp.exp(log_std)
        return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1) - old

    clipped = log_ratio(run(1.0, epochs=4, minibatches=4))
    unclipped = log_ratio(run(1.0, epochs=4, minibatches=4, clip_eps=100.0))
    assert float(jnp.mean(advantages * clipped)) > 0.01
    assert float(jnp.mean(jnp.abs(clipped))) < 0.8 * float(jnp.mean(jnp.abs(unclipped)))


@pytest.mark.parametrize("task", ["pointmass1d", "pointmass2d", "tblock", "franka"])
def test_hybrid_defaults_are_apgs_segments_with_ppos_exploration_and_reuse_passes(task):
    hybrid, apg, ppo = (default_config(task, algo) for algo in ("hybrid", "apg", "ppo"))
    for name in ("segment_length", "bootstrap", "num_envs", "learning_rate", "env_steps", "max_grad_norm"):
        assert getattr(hybrid, name) == getattr(apg, name), name
    for mine, theirs in HYBRID_FROM_PPO.items():
        assert getattr(hybrid, mine) == getattr(ppo, theirs), mine
    assert hybrid.exploration_noise and hybrid.hybrid_advantages == "gae"
    assert "init_log_std" in DEFAULTS[(task, "ppo")]  # the exploration std is PPO's tuned one, not a default


def test_bad_hybrid_reuse_settings_are_refused_with_what_to_change():
    with pytest.raises(ConfigError, match="unknown hybrid_advantages 'td'"):
        make_trainer(default_config("pointmass1d", "hybrid", hybrid_advantages="td"))
    with pytest.raises(ConfigError, match="hybrid_reuse_learning_rate must be positive"):
        make_trainer(default_config("pointmass1d", "hybrid", hybrid_reuse_learning_rate=0.0))
    with pytest.raises(ConfigError, match="fewer than the reuse passes' num_minibatches = 64; lower num_minibatches"):
        make_trainer(default_config("pointmass2d", "hybrid", num_envs=2, segment_length=4, num_minibatches=64))
    with pytest.raises(ConfigError, match="hybrid_explore_fraction must be in"):
        make_trainer(default_config("pointmass1d", "hybrid", hybrid_explore_fraction=0.0))
    with pytest.raises(ConfigError, match="leaves 1 exploring and 63 deterministic environments"):
        make_trainer(default_config("pointmass1d", "hybrid", num_envs=64, hybrid_explore_fraction=0.01))


def test_segment_gae_bootstraps_at_the_cut_and_at_truncations_not_at_terminations():
    """The reuse passes' advantages against a direct backward recursion: V(s_K) enters at the cut, the
    value of the reached state after a truncation, nothing after a termination."""
    actor, critic = make_networks(1, (8,), "tanh", -0.5)
    _, critic_params = init_params(actor, critic, jax.random.PRNGKey(0), 2)
    rng = np.random.default_rng(1)
    k, n, gamma, lam = 6, 3, 0.9, 0.8
    obs, next_obs = rng.normal(size=(k, n, 2)), rng.normal(size=(k, n, 2))
    rewards = rng.normal(size=(k, n))
    terminated, ended = np.zeros((k, n)), np.zeros((k, n))
    ended[2, 0] = terminated[2, 0] = 1.0  # env 0 terminates at step 2
    ended[3, 1] = 1.0  # env 1 is truncated at step 3
    zeros = np.zeros((k, n))
    segment = Segment(*(jnp.asarray(x, jnp.float32) for x in (obs, next_obs, rewards, terminated, ended)),
                      None, jnp.asarray(zeros), jnp.asarray(zeros))
    stats = init_stats(2)
    advantages, returns = segment_gae(critic, critic_params, stats, segment, gamma, lam)
    value = lambda x: np.asarray(critic.apply(critic_params, jnp.asarray(x, jnp.float32)))
    v, v_next = value(obs), value(next_obs)
    expected = np.zeros((k, n))
    for env in range(n):
        running = 0.0
        for t in reversed(range(k)):
            delta = rewards[t, env] + gamma * (1 - terminated[t, env]) * v_next[t, env] - v[t, env]
            running = delta + gamma * lam * (1 - ended[t, env]) * running  # a new episode follows an end
            expected[t, env] = running
    np.testing.assert_allclose(advantages, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(returns, expected + v, rtol=1e-5, atol=1e-6)
    cut = rewards[-1, 2] + gamma * v_next[-1, 2] - v[-1, 2]  # env 2 runs on: one TD error with V(s_K)
    termination = rewards[2, 0] - v[2, 0]  # env 0's last step: no value after it
    np.testing.assert_allclose([advantages[-1, 2], advantages[2, 0]], [cut, termination], rtol=1e-5, atol=1e-6)


def test_reuse_passes_add_ppos_entropy_bonus():
    """With zero advantages the surrogate has no gradient: the passes move the policy only through the
    entropy bonus, which widens it; without the bonus they leave it as it is."""
    actor, critic = make_networks(2, (16,), "tanh", -0.5)
    params, _ = init_params(actor, critic, jax.random.PRNGKey(0), 3)
    obs = jax.random.normal(jax.random.PRNGKey(1), (8, 16, 3))
    noise = jax.random.normal(jax.random.PRNGKey(2), (8, 16, 2))
    optimizer = make_optimizer(1e-2, 1.0, "constant", 1, (0.9, 0.999))
    run = lambda ent: reuse_segment(actor, optimizer, params, params, optimizer.init(params), init_stats(3), obs,
                                    noise, jnp.zeros((8, 16)), 1.0, jax.random.PRNGKey(3), epochs=2, minibatches=2,
                                    clip_eps=0.2, normalize_advantages=False, ent_coef=ent)[0]
    log_std = lambda p: actor.apply(p, obs[0])[1]
    flat = lambda p: jax.flatten_util.ravel_pytree(p)[0]
    np.testing.assert_array_equal(flat(run(0.0)), flat(params))
    assert float(jnp.mean(log_std(run(0.01)) - log_std(params))) > 0.01


def test_split_hybrid_runs_carry_their_explore_fraction_in_their_label():
    hybrid = default_config("tblock", "hybrid", hybrid_reuse_epochs=0)  # (APG's tuned 150-step training episodes)
    assert config_name(hybrid) == "tblock-hybrid-K32-mc-train150"
    assert config_name(hybrid.replace(hybrid_explore_fraction=0.25)) == "tblock-hybrid-K32-mc-explore0.25-train150"
