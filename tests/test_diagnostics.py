"""Gradient-fidelity diagnostics: the full-horizon reference against an exact gradient, and the
estimator's statistics."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from apg_jax import envs
from apg_jax.diagnostics import fidelity, per_episode_gradients, segmented_return
from apg_jax.envs.batch import reset_batch

GAMMA = 0.98


def affine_policy(params, obs):
    return jnp.atleast_1d(params["w"] @ obs + params["b"])


def exact_return(env, params):
    """Expected discounted return of ``u = w . (x, v, g) + b`` on pointmass1d (no clipping): the state
    ``z = (x, v, g, 1)`` moves linearly, so its second moment propagates exactly."""
    p = env.params
    c = p.dt * p.force_scale / p.mass
    k = jnp.concatenate([params["w"], params["b"][None]])
    a = jnp.array([[1.0, p.dt, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]) + jnp.outer(
        jnp.array([p.dt * c, c, 0, 0]), k)
    e = jnp.array([1.0, 0, -1, 0])
    r = p.init_range
    sigma = jnp.diag(jnp.array([r**2 / 3, 0.0, r**2 / 3, 1.0]))

    def body(s, t):
        nxt = a @ s @ a.T
        reward = -(e @ nxt @ e + p.effort_cost * k @ s @ k)
        return nxt, GAMMA**t * reward

    return jnp.sum(jax.lax.scan(body, sigma, jnp.arange(env.episode_length))[1])


def test_full_horizon_reference_matches_the_exact_gradient_and_short_segments_are_biased():
    with jax.enable_x64(True):
        env = envs.make("pointmass1d")
        params = {"w": jnp.array([-0.3, -0.4, 0.3]), "b": jnp.array(0.05)}
        exact = ravel_pytree(jax.grad(lambda p: exact_return(env, p))(params))[0]  # same order as the estimator
        q0 = reset_batch(env, jax.random.PRNGKey(0), 4096).pipeline_state
        # the policy never saturates on these episodes, so the exact model applies
        actions = jax.vmap(lambda q: affine_policy(params, q))(q0)
        assert float(jnp.max(jnp.abs(actions))) < 0.9
        mean_return = jnp.mean(jax.vmap(lambda q: segmented_return(env, affine_policy, params, q, 100, GAMMA))(q0))
        np.testing.assert_allclose(mean_return, exact_return(env, params), rtol=0.05)

        full = per_episode_gradients(env, affine_policy, params, q0, 100, GAMMA)
        stats = fidelity(full, exact, batch_size=64)
        se = stats.relative_standard_error
        assert stats.relative_error < 4 * se, (stats, se)
        assert stats.cosine > 0.99

        one_step = fidelity(per_episode_gradients(env, affine_policy, params, q0, 1, GAMMA), exact, 64)
        assert one_step.relative_error > 10 * max(se, one_step.relative_standard_error)
        assert one_step.cosine < stats.cosine


def test_fidelity_statistics_on_synthetic_gradients():
    key = jax.random.PRNGKey(1)
    true = jnp.array([3.0, 4.0, 0.0])  # norm 5
    noise = jax.random.normal(key, (20000, 3))  # unit variance per coordinate: trace 3
    stats = fidelity(true + noise, true, batch_size=12)
    np.testing.assert_allclose(stats.snr, 25.0 / (3.0 / 12), rtol=0.05)
    assert stats.cosine > 0.999 and stats.relative_error < 0.01
    turned = fidelity(true + noise, jnp.array([-4.0, 3.0, 0.0]), batch_size=12)
    assert abs(turned.cosine) < 0.01 and turned.relative_error > 1.3


def test_critic_bootstrap_gradient_flows_through_the_state_before_the_cut():
    """With ``V(obs) = -c x^2`` at the cuts, the K-segment gradient gains exactly the gradient of
    ``sum_cuts gamma^t V(s_t)`` through the segment before each cut (checked against an independent
    Python loop over the two segments that end at a cut)."""
    with jax.enable_x64(True):
        env = envs.make("pointmass1d", episode_length=12)
        params = {"w": jnp.array([-0.3, -0.4, 0.3]), "b": jnp.array(0.05)}
        q0 = jnp.array([0.4, 0.0, -0.2])
        value = lambda obs: -2.0 * obs[0] ** 2
        grad = lambda v: jax.grad(lambda p: segmented_return(env, affine_policy, p, q0, 4, GAMMA, v))(params)
        with_critic, without = grad(value), grad(None)
        difference = ravel_pytree(with_critic)[0] - ravel_pytree(without)[0]
        assert float(jnp.linalg.norm(difference)) > 1e-3

        def bootstrap_terms(p, frozen):
            """sum over cuts t = 4, 8 of gamma^t V(s_t), s_t reached from the frozen state at t - 4."""
            total = 0.0
            for start in (0, 4):
                q = frozen[start]
                for t in range(start, start + 4):
                    q, _ = env.physics_step(q, affine_policy(p, q))
                total = total + GAMMA ** (start + 4) * value(q)
            return total

        states = [q0]
        for t in range(8):
            states.append(env.physics_step(states[-1], affine_policy(params, states[-1]))[0])
        expected = ravel_pytree(jax.grad(bootstrap_terms)(params, states))[0]
        np.testing.assert_allclose(difference, expected, rtol=1e-9, atol=1e-12)


def test_one_segment_is_the_trainers_segment_objective():
    """``segmented_return(..., steps=K)`` is APG's training objective for a segment from fresh episodes:
    same value and same gradient, in ``mc`` and ``critic`` mode."""
    from apg_jax.agents.apg import segment_objective
    from apg_jax.networks import init_params, make_networks
    from apg_jax.normalization import init_stats, normalize

    env = envs.make("pointmass2d")
    actor, critic = make_networks(env.action_size, (16, 16), "tanh", -0.5)
    actor_params, critic_params = init_params(actor, critic, jax.random.PRNGKey(2), env.observation_size)
    stats = init_stats(env.observation_size)
    state = reset_batch(env, jax.random.PRNGKey(4), 8)
    k = 12
    policy = lambda p, obs: actor.apply(p, normalize(stats, obs))[0]
    value = lambda obs: critic.apply(critic_params, normalize(stats, obs))
    for bootstrap in ("mc", "critic"):
        ours = lambda p: jnp.mean(jax.vmap(lambda q: segmented_return(
            env, policy, p, q, k, 0.99, value if bootstrap == "critic" else None, steps=k))(state.pipeline_state))
        trainers = lambda p: segment_objective(p, critic_params, stats, state, state, jnp.zeros((k, 8, 2)), env=env,
                                               actor=actor, critic=critic, gamma=0.99, bootstrap=bootstrap)[0]
        np.testing.assert_allclose(ours(actor_params), trainers(actor_params), rtol=1e-5)
        np.testing.assert_allclose(ravel_pytree(jax.grad(ours)(actor_params))[0],
                                   ravel_pytree(jax.grad(trainers)(actor_params))[0], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_gradients_command_writes_the_table(tmp_path):
    import csv

    from experiments import gradients

    gradients.main(["--task", "pointmass1d", "--segment-lengths", "2,full", "--bootstraps", "mc,critic",
                    "--samples", "64", "--reference-samples", "128", "--critic-updates", "5", "--batch-size", "16",
                    "--out", str(tmp_path)])
    rows = list(csv.DictReader(open(tmp_path / "gradients.csv")))
    assert [(r["segment_length"], r["bootstrap"]) for r in rows] == [("2", "mc"), ("full", "mc"), ("2", "critic")]
    assert set(gradients.COLUMNS) <= set(rows[0])
    for r in rows:
        assert -1.0 <= float(r["cosine"]) <= 1.0 and float(r["snr"]) >= 0 and float(r["seconds_per_gradient"]) > 0
    full = rows[1]  # the estimator at K = full estimates the reference itself: error within its noise
    assert float(full["relative_error"]) < 4 * (float(full["relative_standard_error"])
                                                + float(full["reference_relative_standard_error"]))
    assert (tmp_path / "gradients.png").exists()
