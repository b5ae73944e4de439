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


def plain_return(env, actor, params, stats, q0, noise, gamma):
    """``sum_t gamma^t r_t`` of one environment from ``q0`` under ``mean + std * noise[t]``, written
    independently of the learner: a Python loop over ``physics_step``, no wrappers, no resets."""
    q, total = q0, 0.0
    for t in range(noise.shape[0]):
        mean, log_std = actor.apply(params, normalize(stats, env.observe(q)))
        q, r = env.physics_step(q, mean + jnp.exp(log_std) * noise[t])
        total = total + gamma**t * r
    return total


def test_segment_gradient_ignores_how_its_start_state_was_reached():
    """The state entering a segment is cut: differentiating segment 2 through a start state that
    depends on the parameters gives the gradient from that state held constant."""
    env, actor, critic, ap, cp, state, stats = setup()
    k, gamma = 10, 0.99
    q_k = np.asarray(_uncut_final_state(env, actor, ap, stats, state, k).pipeline_state)
    zero = jnp.zeros((k, env.action_size))

    def reference(p):  # segment 2 from the constant q_K
        return jnp.mean(jnp.stack([plain_return(env, actor, p, stats, jnp.asarray(q), zero, gamma) for q in q_k]))

    def through_learner(p):  # segment 2 from s_K(p): the start state still depends on p
        start = _uncut_final_state(env, actor, p, stats, state, k)
        return objective(env, actor, critic, p, cp, stats, start, k, gamma=gamma)[0]

    g_learner, g_ref = jax.grad(through_learner)(ap), jax.grad(reference)(ap)
    assert relative_error(flat(g_learner), flat(g_ref)) < 1e-5
    # the check can fail: without the cut the gradient also flows into segment 1's actions
    g_uncut = jax.grad(lambda p: reference_uncut(env, actor, p, stats, state, k, gamma))(ap)
    assert relative_error(flat(g_uncut), flat(g_ref)) > 1e-2


def _uncut_final_state(env, actor, params, stats, state, k):
    def body(s, _):
        mean, _ = actor.apply(params, normalize(stats, s.obs))
        return jax.vmap(env.step)(s, mean), None

    return jax.lax.scan(body, state, None, length=k)[0]


def reference_uncut(env, actor, params, stats, state, k, gamma):
    start = _uncut_final_state(env, actor, params, stats, state, k).pipeline_state
    zero = jnp.zeros((k, env.action_size))
    return jnp.mean(jnp.stack([plain_return(env, actor, params, stats, start[i], zero, gamma)
                               for i in range(start.shape[0])]))


def crossing_setup(horizon=10, k=7):
    """Episodes of ``horizon`` steps, segments of ``k`` (not a divisor), clocks staggered so that the
    episodes end inside the segment at different steps (or not at all)."""
    env, actor, critic, ap, cp, state, stats = setup(episode_length=horizon)
    clocks = jnp.array([7, 3, 9, 0, 5, 8, 1, 6], jnp.float32)  # episode ends after 3, 7, 1, -, 5, 2, -, 4 steps
    state = state.replace(info={**state.info, "steps": clocks})
    reset = reset_batch(env, jax.random.PRNGKey(2), N)
    noise = jax.random.normal(jax.random.PRNGKey(4), (k, N, env.action_size))
    return env, actor, critic, ap, cp, stats, state, reset, noise, clocks


def test_segment_crossing_a_reset_is_the_sum_of_two_independent_episodes():
    env, actor, critic, ap, cp, stats, state, reset, noise, clocks = crossing_setup()
    horizon, k, gamma = 10, noise.shape[0], 0.95
    ends = [int(horizon - c) for c in np.asarray(clocks)]  # steps until each episode ends

    def learner(p, eps):
        return segment_objective(p, cp, stats, state, reset, eps, env=env, actor=actor, critic=critic,
                                 gamma=gamma, bootstrap="mc")[0]

    def pieces(p, eps, which):  # per env: the old episode's last steps, then the new episode's first
        total = []
        for i, m in enumerate(ends):
            m = min(m, k)
            before = plain_return(env, actor, p, stats, state.pipeline_state[i], eps[:m, i], gamma)
            after = plain_return(env, actor, p, stats, reset.pipeline_state[i], eps[m:, i], gamma)
            total.append({"both": before + after, "before": before, "after": after}[which])
        return jnp.mean(jnp.stack(total))

    assert float(learner(ap, noise)) == pytest.approx(float(pieces(ap, noise, "both")), rel=1e-5)
    g_params = jax.grad(learner)(ap, noise)
    assert relative_error(flat(g_params), flat(jax.grad(pieces)(ap, noise, "both"))) < 1e-5
    g_noise = jax.grad(learner, argnums=1)(ap, noise)
    g_before = jax.grad(pieces, argnums=1)(ap, noise, "before")
    for i, m in enumerate(ends):
        if m < k:  # no gradient from after the reset into the actions before it
            np.testing.assert_allclose(g_noise[:m, i], g_before[:m, i], rtol=1e-5, atol=1e-8)
            assert float(jnp.abs(jax.grad(pieces, argnums=1)(ap, noise, "after")[:m, i]).max()) == 0.0
            assert float(jnp.abs(g_noise[m:, i]).max()) > 0.0  # the new episode's actions are credited


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


class TerminatingPointMass(envs.TASKS["pointmass1d"]):
    """pointmass1d with a real terminal state: the episode terminates once x > 0.2 (test-only)."""

    name = "pointmass1d_terminating"

    def terminated(self, q):
        return (q[0] > 0.2).astype(q.dtype)


@pytest.mark.parametrize("truncation_bootstrap", [True, False])
def test_critic_bootstrap_on_truncation_not_on_termination(truncation_bootstrap):
    """With a constant critic V = b, the critic objective exceeds the mc one by exactly the bootstraps:
    gamma^m b for an episode truncated after m steps of the segment (none if it terminated, or if
    truncations count as terminations), and gamma^j b at the cut for an episode j steps old there."""
    env, actor, critic, ap, cp, stats, state, reset, noise, clocks = crossing_setup()
    env = TerminatingPointMass(episode_length=10)
    q0 = state.pipeline_state.at[:, 0].set(jnp.array([0.19, -0.5, 0.5, -0.5, 0.19, -0.5, -0.5, -0.5]))
    state = state.replace(pipeline_state=q0, obs=jax.vmap(env.observe)(q0), done=jax.vmap(env.terminated)(q0))
    reset = reset.replace(pipeline_state=reset.pipeline_state.at[:, 0].set(-0.9))  # never terminates
    reset = reset.replace(obs=jax.vmap(env.observe)(reset.pipeline_state))
    b, gamma, k = 3.0, 0.9, noise.shape[0]
    cp_const = jax.tree.map(lambda x: jnp.full_like(x, b) if x.shape == (1,) else
                            (jnp.zeros_like(x) if x.shape[-1] == 1 else x), cp)

    def run(bootstrap):
        return segment_objective(ap, cp_const, stats, state, reset, 0.0 * noise, env=env, actor=actor,
                                 critic=critic, gamma=gamma, bootstrap=bootstrap,
                                 truncation_bootstrap=truncation_bootstrap)

    (j_mc, seg), (j_critic, _) = run("mc"), run("critic")
    expected = []
    for i in range(N):
        ended = np.nonzero(np.asarray(seg.ended[:, i]))[0]
        m = int(ended[0]) + 1 if ended.size else None  # steps until the first episode ended
        was_truncated = m is not None and not bool(seg.terminated[m - 1, i])
        bonus = gamma**m * b if (m is not None and was_truncated) else 0.0
        age_at_cut = k - m if m is not None else k
        if m is None or m < k:
            bonus += gamma**age_at_cut * b
        expected.append(bonus)
    terminated_envs = np.asarray(seg.terminated).sum(0) > 0
    assert terminated_envs.sum() >= 1  # the cases exist: a termination ...
    assert (np.asarray(seg.ended).sum(0) > np.asarray(seg.terminated).sum(0)).sum() >= (3 if truncation_bootstrap else 0)
    assert float(j_critic - j_mc) == pytest.approx(float(np.mean(expected)), rel=1e-5)
