"""Contract tests run over every registered task: brax API, batching, gradients, bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from apg_jax import envs
from gradcheck import fd_jacobian, relative_error

TASKS = envs.task_names()


def random_actions(key, env, n_steps):
    return jax.random.uniform(key, (n_steps, env.action_size), minval=-0.9, maxval=0.9)


def rollout_return(env, q0, actions):
    def body(q, u):
        q, r = env.physics_step(q, u)
        return q, r

    _, rewards = jax.lax.scan(body, q0, actions)
    return jnp.sum(rewards)


@pytest.mark.parametrize("task", TASKS)
def test_registered_with_brax_and_make(task):
    import brax.envs

    env = envs.make(task)
    assert isinstance(env, brax.envs.base.Env)
    assert f"apg_{task}" in envs.register_brax()
    brax_env = brax.envs.get_environment(f"apg_{task}", episode_length=9)
    assert type(brax_env) is type(env) and brax_env.episode_length == 9
    assert env.physics_state(env.reset(jax.random.PRNGKey(0))).shape == (env.state_dim,)


def test_make_rejects_unknown_task_and_override():
    with pytest.raises(ValueError, match="valid tasks are: .*pointmass1d"):
        envs.make("pointmass3d")
    with pytest.raises(TypeError, match="valid parameters are: .*episode_length"):
        envs.make("pointmass1d", horizon=10)
    assert envs.make("pointmass1d", episode_length=7).episode_length == 7


@pytest.mark.parametrize("task", TASKS)
def test_step_is_physics_step(task):
    env = envs.make(task)
    state = env.reset(jax.random.PRNGKey(1))
    action = jnp.full((env.action_size,), 0.3)
    next_state = jax.jit(env.step)(state, action)
    q_next, reward = jax.jit(env.physics_step)(env.physics_state(state), action)
    np.testing.assert_array_equal(env.physics_state(next_state), q_next)
    np.testing.assert_array_equal(next_state.reward, reward)
    np.testing.assert_array_equal(next_state.obs, env.observe(q_next))
    assert float(next_state.metrics["success"]) in (0.0, 1.0)


@pytest.mark.parametrize("task", TASKS)
def test_actions_are_clipped(task):
    env = envs.make(task)
    q = env.physics_state(env.reset(jax.random.PRNGKey(2)))
    big = jnp.full((env.action_size,), 7.0)
    one = jnp.ones((env.action_size,))
    for a, b in zip(env.physics_step(q, big), env.physics_step(q, one)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("x64, tol", [(True, 1e-9), (False, 1e-4)])
def test_vmap_over_1024_envs_matches_single_steps(task, x64, tol):
    """Same numbers batched or one by one: to 1e-9 in float64; float32 rounding of batched vs single
    kernels differs and is amplified over contact substeps, hence 1e-4 there."""
    with jax.enable_x64(x64):
        env = envs.make(task)
        n = 1024
        states = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(3), n))
        actions = jax.random.uniform(jax.random.PRNGKey(4), (n, env.action_size), minval=-1, maxval=1)
        batched = jax.jit(jax.vmap(env.step))(states, actions)
        single_step = jax.jit(env.step)
        for i in range(n):
            one = single_step(jax.tree.map(lambda x: x[i], states), actions[i])
            np.testing.assert_allclose(env.physics_state(one), batched.pipeline_state[i], rtol=tol, atol=tol)
            np.testing.assert_allclose(one.reward, batched.reward[i], rtol=tol, atol=tol)


@pytest.mark.parametrize("task", TASKS)
def test_task_keeps_no_clock_and_never_terminates_by_time(task):
    """The time limit belongs to brax's EpisodeWrapper (tests/test_brax_interop.py), not to the task."""
    env = envs.make(task, episode_length=3)
    state = env.reset(jax.random.PRNGKey(5))
    step = jax.jit(env.step)
    for _ in range(7):
        state = step(state, jnp.zeros(env.action_size))
        assert float(state.done) == 0.0
    assert state.info == {}


@pytest.mark.parametrize("task", TASKS)
def test_physics_step_jacobians_match_finite_differences(task):
    with jax.enable_x64(True):
        env = envs.make(task)
        q = env.physics_state(env.reset(jax.random.PRNGKey(7)))
        assert q.dtype == jnp.float64
        u = jnp.full((env.action_size,), 0.4)
        for output in (0, 1):  # q_next, reward
            jq = jax.jacfwd(lambda q_: env.physics_step(q_, u)[output])(q)
            ju = jax.jacfwd(lambda u_: env.physics_step(q, u_)[output])(u)
            assert relative_error(jq, fd_jacobian(lambda q_: env.physics_step(q_, u)[output], q)) < 1e-6
            assert relative_error(ju, fd_jacobian(lambda u_: env.physics_step(q, u_)[output], u)) < 1e-6


@pytest.mark.parametrize("task", TASKS)
def test_rollout_return_gradient_matches_finite_differences(task):
    with jax.enable_x64(True):
        env = envs.make(task)
        q0 = env.physics_state(env.reset(jax.random.PRNGKey(8)))
        actions = random_actions(jax.random.PRNGKey(9), env, 32)
        grad_u = jax.grad(lambda a: rollout_return(env, q0, a))(actions)
        fd_u = fd_jacobian(lambda a: rollout_return(env, q0, a), actions).reshape(actions.shape)
        assert relative_error(grad_u, fd_u) < 1e-6
        grad_q = jax.grad(lambda q: rollout_return(env, q, actions))(q0)
        assert relative_error(grad_q, fd_jacobian(lambda q: rollout_return(env, q, actions), q0)) < 1e-6


@pytest.mark.parametrize("task", TASKS)
def test_rollout_gradient_float32_is_finite_and_close_to_float64(task):
    env = envs.make(task)
    q0 = env.physics_state(env.reset(jax.random.PRNGKey(10)))
    actions = random_actions(jax.random.PRNGKey(11), env, 32)
    g32 = jax.jit(jax.grad(lambda a: rollout_return(env, q0, a)))(actions)
    with jax.enable_x64(True):
        g64 = jax.grad(lambda a: rollout_return(env, q0.astype(jnp.float64), a))(actions.astype(jnp.float64))
    assert g32.dtype == jnp.float32 and np.all(np.isfinite(g32))
    assert relative_error(g32, g64) < 1e-3


@pytest.mark.parametrize("task", TASKS)
def test_wrong_action_shape_raises(task):
    env = envs.make(task)
    state = env.reset(jax.random.PRNGKey(12))
    with pytest.raises(ValueError, match="use jax.vmap"):
        env.step(state, jnp.zeros((4, env.action_size)))
    with pytest.raises(ValueError, match="action must have shape"):
        jax.jit(env.step)(state, jnp.zeros((env.action_size + 1,)))


@pytest.mark.parametrize("task", TASKS)
def test_nan_action_raises_eagerly_and_is_flagged_under_jit(task):
    env = envs.make(task)
    state = env.reset(jax.random.PRNGKey(13))
    bad = jnp.full((env.action_size,), jnp.nan)
    with pytest.raises(FloatingPointError, match="action contains NaN"):
        env.step(state, bad)
    flagged = jax.jit(env.step)(state, bad)
    assert float(flagged.metrics["nonfinite"]) == 1.0
    ok = jax.jit(env.step)(state, jnp.zeros(env.action_size))
    assert float(ok.metrics["nonfinite"]) == 0.0


@pytest.mark.parametrize("task", TASKS)
def test_nan_state_raises(task):
    env = envs.make(task)
    with pytest.raises(FloatingPointError, match="state contains NaN"):
        env.state_from_q(jnp.full((env.state_dim,), jnp.nan))
    with pytest.raises(ValueError, match="q must have shape"):
        env.state_from_q(jnp.zeros(env.state_dim + 2))


@pytest.mark.parametrize("task", TASKS)
def test_render_draws_the_state(task, tmp_path):
    env = envs.make(task)
    q0 = env.physics_state(env.reset(jax.random.PRNGKey(14)))
    q1 = env.physics_step(q0, jnp.ones(env.action_size))[0]
    q_far = q0.at[0].add(0.5)
    frames = envs.render(env, jnp.stack([q0, q0, q_far]))
    assert frames.shape[0] == 3 and frames.dtype == np.uint8 and frames.shape[-1] == 3
    np.testing.assert_array_equal(frames[0], frames[1])  # same state, same picture
    assert np.mean(frames[0] != frames[2]) > 1e-4  # moving the body changes the picture
    path = envs.write_animation(env, jnp.stack([q0, q1]), str(tmp_path / "a.gif"))
    import imageio.v2 as imageio

    assert len(imageio.mimread(path)) == 2


def test_animation_of_several_episodes_tiles_their_panels(tmp_path):
    """Three episodes in two columns: a 2 x 2 grid whose panels are the single-episode pictures (the
    fourth blank), one frame per step."""
    import imageio.v2 as imageio

    env = envs.make("pointmass2d")
    q0 = env.physics_state(env.reset(jax.random.PRNGKey(3)))
    episodes = jnp.stack([jnp.stack([q0, q0.at[0].add(0.1 * i)]) for i in range(3)])
    titles = ["a", "b", "c"]
    path = envs.write_animation(env, episodes, str(tmp_path / "grid.gif"), titles=titles)
    frames = imageio.mimread(path)
    single = envs.render(env, episodes[1], title="b")
    h, w = single.shape[1:3]
    assert len(frames) == 2 and frames[1].shape[:2] == (2 * h, 2 * w)
    top_right = np.asarray(frames[1])[:h, w:, :3].astype(float)  # episode 1 (GIF palette: a few pixels off)
    off = lambda panel: np.mean(np.any(panel != single[1], axis=-1))
    assert off(top_right) < 0.01
    assert off(np.asarray(frames[1])[:h, :w, :3]) > 2 * off(top_right)  # top left (episode 0) differs more
    assert np.all(np.asarray(frames[1])[h:, w:, :3] == 255)  # bottom right: blank


def test_pick_episodes_mixes_successes_and_failures():
    from apg_jax.envs.render import pick_episodes

    assert pick_episodes([0, 1, 0, 1, 1, 0]) == [1, 3, 0, 2]
    assert pick_episodes([1, 1, 1, 0]) == [0, 1, 2, 3]  # one failure: three successes fill the rest
    assert pick_episodes([0, 0, 0, 0, 0]) == [0, 1, 2, 3]
    assert pick_episodes([1, 0], count=4) == [0, 1]
