"""Hand-computed checks of the 1-D point mass."""
import jax
import jax.numpy as jnp
import numpy as np

from apg_jax import envs


def test_one_step_from_known_state_gives_exact_numbers():
    env = envs.make("pointmass1d")
    with jax.enable_x64(True):
        q = jnp.array([0.2, -0.4, 0.5])
        q_next, reward = env.physics_step(q, jnp.array([0.6]))
        # F = 5 * 0.6 = 3 N; v' = -0.4 + 0.05 * 3 = -0.25; x' = 0.2 + 0.05 * (-0.25) = 0.1875
        np.testing.assert_allclose(q_next, [0.1875, -0.25, 0.5], rtol=0, atol=1e-15)
        np.testing.assert_allclose(reward, -((0.1875 - 0.5) ** 2 + 0.01 * 0.36), rtol=1e-15)


def test_observation_and_success():
    env = envs.make("pointmass1d")
    q = jnp.array([0.49, 0.05, 0.5])
    state = env.state_from_q(q)
    np.testing.assert_array_equal(state.obs, q)
    assert float(state.metrics["success"]) == 1.0
    assert float(env.success(jnp.array([0.44, 0.05, 0.5]))) == 0.0  # 6 cm away
    assert float(env.success(jnp.array([0.5, 0.2, 0.5]))) == 0.0  # too fast


def test_reset_distribution():
    env = envs.make("pointmass1d")
    q = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 4000)).pipeline_state
    assert np.all(np.abs(q[:, [0, 2]]) <= 1.0) and np.all(q[:, 1] == 0.0)
    np.testing.assert_allclose(np.var(q[:, 0]), 1 / 3, rtol=0.1)  # U(-1, 1)
    assert abs(np.corrcoef(q[:, 0], q[:, 2])[0, 1]) < 0.05
