"""Task franka: kinematics and dynamics against MuJoCo and the DH table, energy, control, limits."""
import os

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from apg_jax import envs
from apg_jax.envs import franka as F

MJCF = os.path.join(os.path.dirname(F.__file__), "assets", "fr3.xml")


def random_joint_states(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(F.JOINT_LOWER, F.JOINT_UPPER, (n, 7)), rng.uniform(-2.0, 2.0, (n, 7))


def dh_flange(q):
    """Flange position straight from the modified DH table with 4x4 homogeneous matrices."""
    T = np.eye(4)
    for i, (a, d, alpha) in enumerate(F.DH):
        ca, sa = np.cos(alpha), np.sin(alpha)
        theta = q[i] if i < 7 else 0.0
        ct, st = np.cos(theta), np.sin(theta)
        T = T @ np.array([[ct, -st, 0, a],
                          [st * ca, ct * ca, -sa, -d * sa],
                          [st * sa, ct * sa, ca, d * ca],
                          [0, 0, 0, 1]])
    return T[:3, 3]


def test_forward_kinematics_matches_dh_table_and_reference_poses():
    with jax.enable_x64(True):
        for q in random_joint_states(20)[0]:
            np.testing.assert_allclose(F.forward_kinematics(jnp.asarray(q)), dh_flange(q), atol=1e-12)
        np.testing.assert_allclose(F.forward_kinematics(jnp.zeros(7)), [0.088, 0.0, 0.926], atol=1e-12)
        home = jnp.array([0, 0, 0, -1.57079, 0, 1.57079, -0.7853])
        np.testing.assert_allclose(F.forward_kinematics(home), [0.5545, 0.0, 0.6245], atol=1e-4)


def test_kinematics_mass_matrix_and_bias_match_mujoco():
    model = mujoco.MjModel.from_xml_path(MJCF)
    data = mujoco.MjData(model)
    full_m = np.zeros((7, 7))
    with jax.enable_x64(True):
        for q, qd in zip(*random_joint_states(25, seed=1)):
            data.qpos[:], data.qvel[:] = q, qd
            mujoco.mj_forward(model, data)
            mujoco.mj_fullM(model, data, full_m)
            flange = np.asarray(F.forward_kinematics(jnp.asarray(q)))
            mass = np.asarray(F.mass_matrix(jnp.asarray(q)))
            bias = np.asarray(F.bias_forces(jnp.asarray(q), jnp.asarray(qd)))
            # measured at most 3.1e-15 / 2.0e-15 / 1.6e-15 (float64 rounding): 10x that, so a wrong constant
            # or a missing term (any error above float64 rounding) fails
            assert np.linalg.norm(flange - data.site_xpos[0]) / np.linalg.norm(data.site_xpos[0]) < 3e-14
            assert np.linalg.norm(mass - full_m) / np.linalg.norm(full_m) < 2e-14
            assert np.linalg.norm(bias - data.qfrc_bias) / np.linalg.norm(data.qfrc_bias) < 2e-14


def test_mjcf_encodes_the_same_limits_damping_and_masses():
    model = mujoco.MjModel.from_xml_path(MJCF)
    np.testing.assert_allclose(model.jnt_range[:, 0], F.JOINT_LOWER)
    np.testing.assert_allclose(model.jnt_range[:, 1], F.JOINT_UPPER)
    np.testing.assert_allclose(model.dof_armature, F.ARMATURE)
    np.testing.assert_allclose(model.dof_damping, np.full(7, F.FrankaParams.joint_damping))
    np.testing.assert_allclose(model.body_mass[-7:], F.LINK_MASS)
    assert abs(F.LINK_MASS.sum() - 15.49) < 0.01


def test_inverse_dynamics_is_mass_matrix_times_acceleration_plus_bias():
    with jax.enable_x64(True):
        qs, qds = random_joint_states(5, seed=2)
        qdd = np.random.default_rng(3).normal(size=(5, 7))
        for q, qd, a in zip(qs, qds, qdd):
            q, qd, a = map(jnp.asarray, (q, qd, a))
            tau = F.inverse_dynamics(q, qd, a)
            rigid = F.mass_matrix(q) - jnp.diag(jnp.asarray(F.ARMATURE))
            np.testing.assert_allclose(tau, rigid @ a + F.bias_forces(q, qd), rtol=1e-10, atol=1e-10)


def test_cholesky_solve_matches_numpy():
    with jax.enable_x64(True):
        a = np.random.default_rng(4).normal(size=(7, 7))
        spd, rhs = a @ a.T + 0.1 * np.eye(7), np.arange(7.0)
        np.testing.assert_allclose(F.cholesky_solve(jnp.asarray(spd), jnp.asarray(rhs)), np.linalg.solve(spd, rhs),
                                   rtol=1e-9)


def kinetic_energy(q, qd):
    return 0.5 * qd @ F.mass_matrix(q) @ qd


def test_kinetic_energy_is_conserved_without_damping_gravity_and_control():
    with jax.enable_x64(True):
        env = envs.make("franka", gravity=0.0, joint_damping=0.0, limit_stiffness=0.0)
        q0 = jnp.asarray(F.READY_POSE)
        qd0 = jnp.array([0.6, -0.4, 0.5, 0.3, -0.8, 0.7, 1.0])
        h = 2e-4

        def body(x, _):
            q, qd = x
            qd = qd + h * env.joint_acceleration(q, qd, jnp.zeros(7))
            q = q + h * qd
            return (q, qd), kinetic_energy(q, qd)

        (q_end, _), energies = jax.jit(lambda x: jax.lax.scan(body, x, None, length=15000))((q0, qd0))
        e0 = float(kinetic_energy(q0, qd0))
        assert float(jnp.max(jnp.abs(q_end - q0))) > 0.5  # the arm really moved for 3 s
        assert float(jnp.max(jnp.abs(energies - e0))) / e0 < 2e-3
        # with joint damping the same motion loses energy
        damped = envs.make("franka", gravity=0.0, limit_stiffness=0.0)
        qd1 = qd0 + h * damped.joint_acceleration(q0, qd0, jnp.zeros(7))
        assert float(kinetic_energy(q0 + h * qd1, qd1)) < e0


def test_controller_reaches_and_holds_joint_targets_against_gravity():
    env = envs.make("franka")
    q = env.physics_state(env.reset(jax.random.PRNGKey(0)))
    u = jnp.array([0.3, -0.2, 0.1, 0.4, -0.5, 0.2, 0.6])
    step = jax.jit(env.physics_step)
    speeds = []
    for _ in range(75):  # 3 s
        q, _ = step(q, u)
        speeds.append(np.abs(np.asarray(q[7:14])))
    np.testing.assert_allclose(q[:7], env.joint_target(u), atol=2e-3)
    np.testing.assert_allclose(q[7:14], 0.0, atol=1e-3)
    assert np.all(np.max(speeds, 0) < 1.05 * F.VELOCITY_LIMIT)  # speed-limited PD


def test_targets_stay_inside_limits_and_limit_springs_push_back():
    env = envs.make("franka")
    for u in (-jnp.ones(7), jnp.ones(7), jnp.full(7, 3.0)):
        target = np.asarray(env.joint_target(u))
        assert np.all(target >= F.JOINT_LOWER) and np.all(target <= F.JOINT_UPPER)
    beyond = jnp.asarray(F.JOINT_UPPER + 0.05)
    torque = env.passive_torque(beyond, jnp.zeros(7))
    assert np.all(np.asarray(torque) < -10.0)
    inside = env.passive_torque(jnp.asarray(F.READY_POSE), jnp.zeros(7))
    assert np.all(np.abs(np.asarray(inside)) < 1e-6)


def test_reset_samples_ready_pose_and_reachable_targets():
    env = envs.make("franka")
    qs = jax.vmap(lambda k: env.physics_state(env.reset(k)))(jax.random.split(jax.random.PRNGKey(5), 256))
    qs = np.asarray(qs)
    assert np.all(np.abs(qs[:, :7] - F.READY_POSE) <= 0.1 + 1e-6) and np.all(qs[:, 7:14] == 0)
    assert np.all(qs[:, 14:] >= np.array(F.FrankaParams.target_low) - 1e-6)
    assert np.all(qs[:, 14:] <= np.array(F.FrankaParams.target_high) + 1e-6)
    shoulder = np.array([0.0, 0.0, 0.333])
    assert np.max(np.linalg.norm(qs[:, 14:] - shoulder, axis=1)) < 0.8  # FR3 reach is 0.855 m


@pytest.mark.parametrize("distance, success", [(0.01, 1.0), (0.03, 0.0)])
def test_success_is_flange_within_2cm(distance, success):
    env = envs.make("franka")
    q = jnp.concatenate([jnp.asarray(F.READY_POSE), jnp.zeros(7), jnp.zeros(3)])
    flange = F.forward_kinematics(q[:7])
    q = q.at[14:].set(flange + jnp.array([distance, 0.0, 0.0]))
    assert float(env.success(q)) == success
    assert abs(float(env.reward(q)) + distance) < 1e-3


def test_gravity_compensation_equals_bias_at_rest():
    with jax.enable_x64(True):
        for q in random_joint_states(5, seed=6)[0]:
            q = jnp.asarray(q)
            np.testing.assert_allclose(F._gravity_torque(F._link_inertials(q), 9.81), F.bias_forces(q, jnp.zeros(7)),
                                       rtol=1e-10, atol=1e-10)


def test_forward_dynamics_derivative_matches_finite_differences_in_every_input():
    """The implicit-function derivative of ``qdd = M^-1 (tau - bias)`` (no differentiation of the mass
    matrix or its factor) against central differences, for random directions in joint positions (through
    the link inertials), velocities, torques and gravity."""
    with jax.enable_x64(True):
        qs, qds = random_joint_states(3, seed=11)
        rng = np.random.default_rng(12)
        for q, qd in zip(qs, qds):
            tau = rng.uniform(-20, 20, 7)
            f = lambda q, qd, tau, g: F._forward_dynamics(F._link_inertials(q), qd, tau, g)
            primals = (jnp.asarray(q), jnp.asarray(qd), jnp.asarray(tau), jnp.asarray(9.81))
            tangents = (jnp.asarray(rng.normal(size=7)), jnp.asarray(rng.normal(size=7)),
                        jnp.asarray(rng.normal(size=7)), jnp.asarray(rng.normal()))
            _, jvp = jax.jvp(f, primals, tangents)
            eps = 1e-6
            plus = f(*[p + eps * t for p, t in zip(primals, tangents)])
            minus = f(*[p - eps * t for p, t in zip(primals, tangents)])
            fd = (plus - minus) / (2 * eps)
            np.testing.assert_allclose(jvp, fd, rtol=1e-6, atol=1e-6 * float(jnp.max(jnp.abs(fd))))
            # reverse mode (the transposed rule) agrees with forward mode
            cot = jnp.asarray(rng.normal(size=7))
            vjp = jax.vjp(f, *primals)[1](cot)
            np.testing.assert_allclose(sum(jnp.vdot(v, t) for v, t in zip(vjp, tangents)), jnp.vdot(cot, jvp),
                                       rtol=1e-10)
