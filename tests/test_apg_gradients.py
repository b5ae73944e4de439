"""Properties of APG's segmented gradient, checked against independent computations."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from apg_jax import default_config, envs, make_trainer
from apg_jax.agents.apg import segment_objective
from apg_jax.envs.batch import reset_batch
from apg_jax.networks import init_params, make_networks
from apg_jax.normalization import init_stats, normalize, update_stats
from gradcheck import relative_error

N = 8


def setup(task="pointmass1d", **env_overrides):
    env = envs.make(task, **env_overrides)
    actor, critic = make_networks(env.action_size, (32, 32), "tanh", -0.5)
    actor_params, critic_params = init_params(actor, critic, jax.random.PRNGKey(0), env.observation_size)
    # a policy that actually moves: perturb the tiny output layer
    actor_params = jax.tree.map(lambda x: x * 30.0 if x.ndim == 2 and x.shape[1] == env.action_size else x,
                                actor_params)
    state = reset_batch(env, jax.random.PRNGKey(1), N)
    # statistics of states in motion (reset states alone have zero velocity variance)
    moving = jax.vmap(env.step)(state, jax.random.uniform(jax.random.PRNGKey(3), (N, env.action_size), minval=-1))
    stats = update_stats(init_stats(env.observation_size), jnp.concatenate([state.obs, moving.obs]))
    return env, actor, critic, actor_params, critic_params, state, stats


def objective(env, actor, critic, ap, cp, stats, state, k, bootstrap="mc", gamma=0.99):
    reset = reset_batch(env, jax.random.PRNGKey(2), N)
    noise = jnp.zeros((k, N, env.action_size))
    return segment_objective(ap, cp, stats, state, reset, noise, env=env, actor=actor, critic=critic,
                             gamma=gamma, bootstrap=bootstrap)


def test_full_horizon_mc_gradient_equals_episode_return_gradient():
    env, actor, critic, ap, cp, state, stats = setup(episode_length=40)
    gamma = 0.97

    def episode_return(params):  # written independently: plain loop over the physics function
        def body(carry, t):
            q, total = carry
            obs = jax.vmap(env.observe)(q)
            mean, _ = actor.apply(params, normalize(stats, obs))
            q, r = jax.vmap(env.physics_step)(q, mean)
            return (q, total + gamma**t * r), None

        (_, total), _ = jax.lax.scan(body, (state.pipeline_state, jnp.zeros(N)), jnp.arange(40))
        return jnp.mean(total)

    g_segment = jax.grad(lambda p: objective(env, actor, critic, p, cp, stats, state, 40, gamma=gamma)[0])(ap)
    g_episode = jax.grad(episode_return)(ap)
    err = relative_error(jnp.concatenate([x.ravel() for x in jax.tree.leaves(g_segment)]),
                         jnp.concatenate([x.ravel() for x in jax.tree.leaves(g_episode)]))
    assert err < 1e-5
    assert float(objective(env, actor, critic, ap, cp, stats, state, 40, gamma=gamma)[0]) == pytest.approx(
        float(episode_return(ap)), rel=1e-5)


def flat(tree):
    return jnp.concatenate([x.ravel() for x in jax.tree.leaves(tree)])


def test_cut_state_carries_no_gradient_to_previous_segment():
    env, actor, critic, ap, cp, state, stats = setup()

    def two_segments(params, cut: bool):
        # segment 1 produces s_K with the same parameters; segment 2's objective is differentiated
        _, seg1 = objective(env, actor, critic, params, cp, stats, state, 10)
        carried = seg1.final_state if cut else _uncut_final_state(env, actor, params, stats, state, 10)
        return objective(env, actor, critic, params, cp, stats, carried, 10)[0]

    g_cut = jax.grad(lambda p: two_segments(p, True))(ap)
    s_k = objective(env, actor, critic, ap, cp, stats, state, 10)[1].final_state
    g_alone = jax.grad(lambda p: objective(env, actor, critic, p, cp, stats, s_k, 10)[0])(ap)
    np.testing.assert_allclose(flat(g_cut), flat(g_alone), rtol=1e-6, atol=1e-7)
    # without the cut (a differentiable s_K, still stopped inside segment_objective) the grads agree too,
    # because segment_objective itself stops the gradient at its entry:
    g_uncut = jax.grad(lambda p: two_segments(p, False))(ap)
    np.testing.assert_allclose(flat(g_uncut), flat(g_alone), rtol=1e-6, atol=1e-7)
    # ... and the check can fail: a version with no stop_gradient gets a different gradient
    g_through = jax.grad(lambda p: _objective_without_cut(env, actor, p, stats,
                                                          _uncut_final_state(env, actor, p, stats, state, 10), 10))(ap)
    assert relative_error(flat(g_through), flat(g_alone)) > 1e-3


def _uncut_final_state(env, actor, params, stats, state, k):
    def body(s, _):
        mean, _ = actor.apply(params, normalize(stats, s.obs))
        return jax.vmap(env.step)(s, mean), None

    return jax.lax.scan(body, state, None, length=k)[0]


def _objective_without_cut(env, actor, params, stats, state, k, gamma=0.99):
    def body(carry, t):
        s, total = carry
        mean, _ = actor.apply(params, normalize(stats, s.obs))
        s = jax.vmap(env.step)(s, mean)
        return (s, total + gamma**t * s.reward), None

    return jnp.mean(jax.lax.scan(body, (state, jnp.zeros(N)), jnp.arange(k))[0][1])


def test_critic_mode_gradient_flows_through_value_of_final_state():
    env, actor, critic, ap, cp, state, stats = setup()
    k, gamma = 10, 0.99
    g_mc = jax.grad(lambda p: objective(env, actor, critic, p, cp, stats, state, k, "mc", gamma)[0])(ap)
    g_critic = jax.grad(lambda p: objective(env, actor, critic, p, cp, stats, state, k, "critic", gamma)[0])(ap)

    def value_term(p):  # gamma^K V(s_K(p)), computed separately
        s_k = _uncut_final_state(env, actor, p, stats, state, k)
        v = critic.apply(cp, normalize(stats, s_k.obs))
        return jnp.mean(gamma**k * v)

    g_value = jax.grad(value_term)(ap)
    assert float(jnp.linalg.norm(flat(g_value))) > 1e-4  # the path exists
    np.testing.assert_allclose(flat(g_critic), flat(g_mc) + flat(g_value), rtol=1e-4, atol=1e-6)
    # a constant critic (zero last layer) gives the mc gradient
    cp_const = jax.tree.map(lambda x: jnp.zeros_like(x) if x.shape[-1] == 1 else x, cp)
    g_const = jax.grad(lambda p: objective(env, actor, critic, p, cp_const, stats, state, k, "critic", gamma)[0])(ap)
    np.testing.assert_allclose(flat(g_const), flat(g_mc), rtol=1e-6, atol=1e-8)


def test_nonfinite_gradient_is_skipped_and_counted_and_env_restarted():
    config = default_config("pointmass1d", "apg", env_steps=64 * 10 * 2, num_evals=1, num_envs=64,
                            segment_length=10)  # no episode ends inside the chunk
    trainer = make_trainer(config)
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    learner = state.learner
    bad_q = learner.env_state.pipeline_state.at[3].set(jnp.nan)
    bad_env = learner.env_state.replace(pipeline_state=bad_q, obs=bad_q)
    state = state.replace(learner=learner.replace(env_state=bad_env))
    new_state, metrics = jax.jit(trainer.chunk)(state)
    # first update: NaN gradient -> refused, params unchanged by it; env 3 restarted; second update fine
    assert float(metrics["skipped_updates"]) == 1.0
    assert float(metrics["nonfinite_envs"]) == 1.0
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(new_state.learner.actor_params))
    assert np.all(np.isfinite(new_state.learner.env_state.pipeline_state))
    assert not np.allclose(flat(new_state.learner.actor_params), flat(learner.actor_params))
