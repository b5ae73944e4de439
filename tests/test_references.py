"""Reference solutions behind the protocol's thresholds (pointmass1d's optimum: tests/test_learning.py)."""
import jax
import numpy as np

from apg_jax.envs import make
from apg_jax.envs.batch import reset_batch
from apg_jax.references import pointmass2d_scripted_rollout


def test_pointmass2d_waypoint_controller_passes_the_gaps_every_time():
    env = make("pointmass2d")
    q0 = reset_batch(env, jax.random.PRNGKey(11), 4096).pipeline_state
    qs, rewards, success = (np.asarray(a) for a in jax.jit(lambda q: pointmass2d_scripted_rollout(env, q))(q0))
    assert success.mean() == 1.0
    assert qs[..., 6].max() <= env.params.max_penetration  # never deeper than 1 cm into anything
    # it goes between the obstacles (|y| < 0.45 when crossing x = 0.025, the gaps' centre line), not around
    crossing = np.argmax(qs[..., 0] >= 0.025, axis=0)
    y_cross = qs[crossing, np.arange(qs.shape[1]), 1]
    assert np.all(np.abs(y_cross) < 0.45) and np.all(np.abs(y_cross) > 0.1)
