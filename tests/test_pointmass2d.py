"""Physical checks of the 2-D navigation task: contact pushes back and never tunnels."""
import jax
import jax.numpy as jnp
import numpy as np

from apg_jax import envs
from gradcheck import fd_jacobian, relative_error


def drive(env, q, action, n_steps):
    def body(q, _):
        q, r = env.physics_step(q, action)
        return q, q

    return jax.jit(lambda q: jax.lax.scan(body, q, None, length=n_steps))(q)[1]


def resting_depth(env, force):
    """Depth [m] at which the smoothed contact spring carries ``force`` [N] (negative: just outside)."""
    k, w = env.params.contact_stiffness, env.params.contact_width
    return w * np.log(np.expm1(force / (k * w)))


def test_full_force_into_obstacle_is_pushed_back_and_never_tunnels():
    env = envs.make("pointmass2d")
    cx, cy, r = env.params.obstacles[1]
    q0 = jnp.array([cx - 0.6, cy, 0.0, 0.0, 0.8, 0.0, 0.0])
    traj = drive(env, q0, jnp.array([1.0, 0.0]), 300)
    x = np.asarray(traj[:, 0])
    assert np.all(x < cx - r), "the mass passed the obstacle's far surface"
    assert np.all(np.abs(traj[:, 1] - cy) < 1e-6), "a head-on push must not deflect"
    depth = (r + env.params.body_radius) - (cx - x)
    assert depth.max() > 0.0  # it did touch
    assert depth.max() < 0.02  # 2 cm deepest, at a 2 N push and up to 1.2 m/s
    # rests where the smoothed spring balances the 2 N push: k w softplus(d / w) = 2 N
    np.testing.assert_allclose(depth[-1], resting_depth(env, 2.0), atol=1e-5)
    # released, the mass is pushed back out of the obstacle
    released = drive(env, traj[-1], jnp.array([0.0, 0.0]), 40)
    released_depth = (r + env.params.body_radius) - (cx - np.asarray(released[:, 0]))
    assert released_depth[-1] < 0.0 and released[-1, 2] < 0.0


def test_walls_hold_at_full_force():
    env = envs.make("pointmass2d")
    q0 = jnp.array([-0.5, -0.9, 0.0, 0.0, 0.8, 0.0, 0.0])
    traj = drive(env, q0, jnp.array([-1.0, -1.0]), 200)
    L, rb = env.params.arena_half_width, env.params.body_radius
    assert np.all(traj[:, 0] > -L) and np.all(traj[:, 1] > -L)
    np.testing.assert_allclose(traj[-1, :2], -(L - rb) - resting_depth(env, 2.0), atol=1e-5)
    assert float(traj[-1, 6]) > 0.0  # the penetration record sees the wall contact


def test_reward_penalises_penetration_and_success_needs_clean_episode():
    env = envs.make("pointmass2d")
    no_penalty = envs.make("pointmass2d", penetration_cost=0.0)
    cx, cy, r = env.params.obstacles[1]
    surface = cx - r - env.params.body_radius  # x at which the disc touches the obstacle
    goal = jnp.array([surface - 0.1, cy])
    free = jnp.array([surface - 0.03, cy, 0.0, 0.0, goal[0], goal[1], 0.0])
    hitting = jnp.array([surface, cy, 1.0, 0.0, goal[0], goal[1], 0.0])  # touching, 1 m/s inwards
    penalty = lambda q: float(no_penalty.physics_step(q, jnp.zeros(2))[1] - env.physics_step(q, jnp.zeros(2))[1])
    assert penalty(free) < 1e-6
    assert penalty(hitting) > 0.25  # 100 per metre of (smoothed) depth, averaged over the substeps
    q_next, _ = env.physics_step(hitting, jnp.zeros(2))
    assert 0.005 < float(q_next[6]) < 0.01  # the record keeps the deepest penetration (about 7 mm)
    assert float(q_next[2]) < 0.0  # and the obstacle has thrown the mass back
    assert float(env.success(free.at[0].set(goal[0]))) == 1.0
    assert float(env.success(free.at[0].set(goal[0]).at[6].set(0.02))) == 0.0  # earlier 2 cm spoils it


def test_gradients_in_contact_match_finite_differences():
    with jax.enable_x64(True):
        env = envs.make("pointmass2d")
        cx, cy, r = env.params.obstacles[1]
        q = jnp.array([cx - r - 0.05 + 0.004, cy + 0.03, 0.3, 0.1, 0.8, 0.1, 0.004])
        u = jnp.array([0.5, -0.3])
        for out in (0, 1):
            jq = jax.jacfwd(lambda q_: env.physics_step(q_, u)[out])(q)
            assert relative_error(jq, fd_jacobian(lambda q_: env.physics_step(q_, u)[out], q)) < 1e-6
            ju = jax.jacfwd(lambda u_: env.physics_step(q, u_)[out])(u)
            assert relative_error(ju, fd_jacobian(lambda u_: env.physics_step(q, u_)[out], u)) < 1e-6
        # the contact actually acts on the gradient: d x' / d x differs from the free-flight value
        free = q.at[0].set(-0.8)
        assert abs(jax.jacfwd(lambda q_: env.physics_step(q_, u)[0])(q)[0, 0]
                   - jax.jacfwd(lambda q_: env.physics_step(q_, u)[0])(free)[0, 0]) > 0.1
