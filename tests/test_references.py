"""Reference solutions behind the protocol's thresholds (pointmass1d's optimum: tests/test_learning.py)."""
import jax
import numpy as np

from apg_jax.envs import make
from apg_jax.envs.batch import reset_batch
from apg_jax.evaluation import episode_success
from apg_jax.references import pointmass2d_waypoint_policy


def scripted_rollout(env, q0):
    policy = pointmass2d_waypoint_policy(env)

    def body(q, _):
        q_next, reward = jax.vmap(env.physics_step)(q, jax.vmap(policy)(q))
        return q_next, (q_next, reward, jax.vmap(env.success)(q_next))

    _, (qs, rewards, success) = jax.jit(lambda q: jax.lax.scan(body, q, None, length=env.episode_length))(q0)
    return np.asarray(qs), np.asarray(rewards), np.asarray(episode_success(env, success))


def test_pointmass2d_waypoint_controller_passes_the_gaps_every_time():
    env = make("pointmass2d")
    q0 = reset_batch(env, jax.random.PRNGKey(11), 4096).pipeline_state
    qs, rewards, success = scripted_rollout(env, q0)
    assert success.mean() == 1.0
    assert qs[..., 6].max() <= env.params.max_penetration  # never deeper than 1 cm into anything
    # it goes between the obstacles (|y| < 0.45 when crossing x = 0.025, the gaps' centre line), not around
    crossing = np.argmax(qs[..., 0] >= 0.025, axis=0)
    y_cross = qs[crossing, np.arange(qs.shape[1]), 1]
    assert np.all(np.abs(y_cross) < 0.45) and np.all(np.abs(y_cross) > 0.1)
