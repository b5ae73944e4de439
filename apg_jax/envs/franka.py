"""Task ``franka``: a 7-DOF Franka Research 3 arm reaches random targets with its flange.

Sources (see ``../shared/reference/fr3.md`` in the development tree):
- kinematics: Franka's modified Denavit-Hartenberg table of the FR3 (robot documentation), flange
  0.107 m after joint 7;
- joint position limits: FCI documentation since 2025-10 and the public FR3 description (the wider set;
  the older 2022-2025 FCI set is not used); velocity and torque limits: FCI documentation (FR3 values);
- link masses, centres of mass, inertias, joint damping (0.21 N m s/rad) and rotor armature: the public
  FR3 description ``frankaemika/franka_description`` (Apache-2.0) as converted to MJCF in
  ``google-deepmind/mujoco_menagerie`` (``franka_fr3``). Its dry friction is non-smooth and omitted.
The same numbers are encoded independently in ``assets/fr3.xml``; ``tests/test_franka.py`` checks kinematics,
``mj_fullM`` and ``qfrc_bias`` of that file in MuJoCo against the functions here.

Frames: base frame z up, metres, radians. Link frame i follows frame i-1 by
``Rot_x(alpha) Trans_x(a) Trans_z(d) Rot_z(q_i)``; every joint turns about its frame's z axis.

Dynamics (pure JAX, all functions unbatched):
- ``forward_kinematics(joint_pos) -> (3,)``: flange position;
- ``mass_matrix(joint_pos) -> (7, 7)``: joint-space inertia including rotor armature (MuJoCo's ``qM``),
  assembled from link Jacobians ``sum_i m_i Jv_i^T Jv_i + Jw_i^T I_i Jw_i``;
- ``bias_forces(joint_pos, joint_vel) -> (7,)``: Coriolis, centrifugal and gravity torques (MuJoCo's
  ``qfrc_bias``) by recursive Newton-Euler with zero joint acceleration;
- forward dynamics ``qdd = M^-1 (tau - bias - damping qd + limit torques)`` with an unrolled Cholesky
  solve (no LAPACK call, so it batches on every backend); semi-implicit Euler, 8 substeps of 5 ms per
  control step (25 Hz).

Control: the action ``u in [-1, 1]^7`` is an absolute joint position target, mapped affinely onto the
joint ranges shrunk by 0.1 rad on each side. A PD controller with gravity compensation tracks it:
``tau = kd (v_des - qd) + g(q)``, ``v_des = v_max tanh(kp / kd (target - q) / v_max)`` (for small errors
exactly ``kp (target - q) - kd qd``; the tanh keeps the commanded speed within the FR3 velocity limits),
then smoothly saturated at the FR3 torque limits, ``tau_max tanh(tau / tau_max)``. Gains (N m/rad,
N m s/rad) give about 17-20 rad/s closed-loop bandwidth at the ready pose, critically damped. Joint
position limits are enforced by smooth one-sided springs (300 N m/rad, softplus width 0.02 rad).

Physics state ``q = (joint_pos [7], joint_vel [7], target [3])``. Reset: joints at the ready pose
``(0, 0, 0, -pi/2, 0, pi/2, -pi/4)`` plus ``U(-0.1, 0.1)`` rad noise, at rest; target
``U([0.3, 0.6] x [-0.3, 0.3] x [0.2, 0.6])`` m (in front of the robot, well inside its reach).
Observation (23): joint positions, joint velocities, flange position, target, target - flange.
Reward per step: ``-(|target - flange| + 0.002 |qd|^2)`` (distance smoothed as ``sqrt(d^2 + 1 mm^2) -
1 mm``). Success: flange within 2 cm of the target at the final step. Horizon 100 steps (4 s).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from apg_jax.envs.base import DiffEnv
from apg_jax.envs.smooth import soft_depth
from apg_jax.fullprecision import einsum, matmul

NUM_JOINTS = 7
#: modified DH rows ``(a, d, alpha)`` of joints 1-7, then the flange (m, rad)
DH = np.array([
    [0.0, 0.333, 0.0],
    [0.0, 0.0, -np.pi / 2],
    [0.0, 0.316, np.pi / 2],
    [0.0825, 0.0, np.pi / 2],
    [-0.0825, 0.384, -np.pi / 2],
    [0.0, 0.0, np.pi / 2],
    [0.088, 0.0, np.pi / 2],
    [0.0, 0.107, 0.0],
])
JOINT_LOWER = np.array([-2.9007, -1.8361, -2.9007, -3.0770, -2.8763, 0.4398, -3.0508])  #: rad
JOINT_UPPER = np.array([2.9007, 1.8361, 2.9007, -0.1169, 2.8763, 4.6216, 3.0508])  #: rad
VELOCITY_LIMIT = np.array([2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26])  #: rad/s
TORQUE_LIMIT = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])  #: N m
READY_POSE = np.array([0.0, 0.0, 0.0, -np.pi / 2, 0.0, np.pi / 2, -np.pi / 4])  #: rad

LINK_MASS = np.array([2.92747, 2.93554, 2.2449, 2.6156, 2.32712, 1.81704, 0.627143])  #: kg
#: centre of mass of each link in its own frame (m)
LINK_COM = np.array([
    [4.128e-07, -0.0181251, -0.0386036],
    [0.00318289, -0.0743222, 0.00881461],
    [0.0407016, -0.00482006, -0.0289731],
    [-0.0459101, 0.0630493, -0.00851879],
    [-0.00160396, 0.0292536, -0.0972966],
    [0.0597131, -0.0410295, -0.0101693],
    [0.00452258, 0.00862619, -0.0161633],
])
#: principal moments of inertia about the centre of mass (kg m^2) and the principal axes (quaternion w x y z)
LINK_PRINCIPAL_INERTIA = np.array([
    [0.0239286, 0.0227246, 0.00610634],
    [0.0629567, 0.0411924, 0.0246371],
    [0.0267409, 0.0189869, 0.0171587],
    [0.05139, 0.0372717, 0.0160047],
    [0.0579335, 0.0449144, 0.0130634],
    [0.0175039, 0.0161123, 0.00193529],
    [0.000223836, 0.000223642, 5.64132e-07],
])
LINK_INERTIA_QUAT = np.array([
    [0.998098, -0.0605364, 0.00380499, 0.0110109],
    [0.502599, 0.584437, -0.465998, 0.434366],
    [0.921025, -0.244161, 0.155272, 0.260745],
    [0.438018, 0.803311, 0.00937812, 0.403414],
    [0.919031, 0.125604, 0.0751531, -0.366003],
    [0.621301, 0.552665, 0.510011, 0.220081],
    [0.727579, 0.0978688, -0.24906, 0.63168],
])
ARMATURE = np.array([0.195, 0.195, 0.195, 0.195, 0.074, 0.074, 0.074])  #: kg m^2, rotor inertia


def quat_to_matrix(quat) -> np.ndarray:
    w, x, y, z = np.asarray(quat, float) / np.linalg.norm(quat)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


#: inertia tensor of each link about its centre of mass, in the link frame ``[7, 3, 3]`` (kg m^2)
LINK_INERTIA = np.stack([quat_to_matrix(q) @ np.diag(d) @ quat_to_matrix(q).T
                         for q, d in zip(LINK_INERTIA_QUAT, LINK_PRINCIPAL_INERTIA)])


def _fixed_transform(a, d, alpha):
    """``Rot_x(alpha) Trans_x(a) Trans_z(d)`` as (rotation [3, 3], translation [3]) in numpy."""
    ca, sa = np.cos(alpha), np.sin(alpha)
    rot = np.array([[1.0, 0.0, 0.0], [0.0, ca, -sa], [0.0, sa, ca]])
    return rot, np.array([a, 0.0, 0.0]) + rot @ np.array([0.0, 0.0, d])


FIXED = [_fixed_transform(*row) for row in DH]


def _rot_z(angle):
    c, s = jnp.cos(angle), jnp.sin(angle)
    zero, one = jnp.zeros_like(c), jnp.ones_like(c)
    return jnp.stack([jnp.stack([c, -s, zero]), jnp.stack([s, c, zero]), jnp.stack([zero, zero, one])])


def link_frames(joint_pos):
    """World rotations ``[7, 3, 3]`` and origins ``[7, 3]`` of links 1-7 (m), and the flange position ``[3]``."""
    dtype = joint_pos.dtype
    rot, pos = jnp.eye(3, dtype=dtype), jnp.zeros(3, dtype)
    rotations, origins = [], []
    for i in range(NUM_JOINTS):
        fixed_rot, fixed_pos = FIXED[i]
        pos = pos + matmul(rot, jnp.asarray(fixed_pos, dtype))
        rot = matmul(matmul(rot, jnp.asarray(fixed_rot, dtype)), _rot_z(joint_pos[i]))
        rotations.append(rot)
        origins.append(pos)
    flange = pos + matmul(rot, jnp.asarray(FIXED[NUM_JOINTS][1], dtype))
    return jnp.stack(rotations), jnp.stack(origins), flange


def forward_kinematics(joint_pos):
    """Flange position ``[3]`` (m, base frame) for joint positions ``[7]`` (rad)."""
    return link_frames(joint_pos)[2]


def _link_inertials(joint_pos, mass_scale=1.0):
    """``(axes, origins, coms [7, 3], inertias [7, 3, 3], masses [7])`` of the links in the base frame,
    masses and inertias ``mass_scale`` times the model's."""
    rotations, origins, _ = link_frames(joint_pos)
    dtype = joint_pos.dtype
    coms = origins + einsum("lij,lj->li", rotations, jnp.asarray(LINK_COM, dtype))
    inertias = mass_scale * matmul(matmul(rotations, jnp.asarray(LINK_INERTIA, dtype)), jnp.swapaxes(rotations, 1, 2))
    return rotations[:, :, 2], origins, coms, inertias, mass_scale * jnp.asarray(LINK_MASS, dtype)


def _linear_jacobians(axes, origins, coms):
    """Linear Jacobians of the links' centres of mass ``[7 links, 7 joints, 3]``."""
    mask = jnp.tril(jnp.ones((NUM_JOINTS, NUM_JOINTS), axes.dtype))[..., None]  # joint j moves link l >= j
    return jnp.cross(axes[None, :, :], coms[:, None, :] - origins[None, :, :]) * mask


def _mass_matrix(inertials):
    """``M [7, 7]`` from the link inertials: ``sum_l m_l Jv_l^T Jv_l`` (one product of the stacked linear
    Jacobians) plus the rotational part ``z_a . (sum_{l >= max(a, b)} I_l) z_b`` (composite link inertias),
    plus the rotor armature."""
    axes, origins, coms, inertias, masses = inertials
    dtype = axes.dtype
    linear = _linear_jacobians(axes, origins, coms)
    weighted = jnp.sqrt(masses)[:, None, None] * linear  # [link, joint, 3]
    flat = jnp.swapaxes(weighted, 0, 1).reshape(NUM_JOINTS, -1)
    composite = jnp.cumsum(inertias[::-1], axis=0)[::-1]  # inertia of links l >= i, [7, 3, 3]
    spun = einsum("bij,bj->bi", composite, axes)  # column b of the rotational part, before z_a .
    upper = jnp.triu(matmul(axes, spun.T))  # [a, b] = z_a . composite_b z_b for a <= b
    rotational = upper + jnp.triu(upper, 1).T
    return matmul(flat, flat.T) + rotational + jnp.diag(jnp.asarray(ARMATURE, dtype))


def mass_matrix(joint_pos):
    """Joint-space inertia ``[7, 7]`` (kg m^2) including rotor armature."""
    return _mass_matrix(_link_inertials(joint_pos))


def _gravity_torque(inertials, gravity):
    """Joint torques ``[7]`` (N m) that hold the links against gravity: ``z_a . ((c_a - o_a) x m_a g)``
    summed over the links ``l >= a`` (``-sum_l m_l Jv_l^T g``), from the links' composite mass and first
    moment."""
    axes, origins, coms, _, masses = inertials
    mass = jnp.cumsum(masses[::-1])[::-1]
    moment = jnp.cumsum((masses[:, None] * coms)[::-1], axis=0)[::-1]
    arm = moment - mass[:, None] * origins  # sum_{l >= a} m_l (c_l - o_a)
    return gravity * jnp.cross(axes, arm)[:, 2]


def inverse_dynamics(joint_pos, joint_vel, joint_acc, gravity=9.81):
    """Joint torques ``[7]`` (N m) for the given motion: recursive Newton-Euler in the base frame, rotor
    armature excluded. Gravity acts along -z with ``gravity`` m/s^2."""
    return _newton_euler(_link_inertials(joint_pos), joint_vel, joint_acc, gravity)


def _shift_down(x):
    """``x [7, ...]`` moved one link outwards: row ``i`` holds ``x[i - 1]``, row 0 zeros (the base)."""
    return jnp.concatenate([jnp.zeros_like(x[:1]), x[:-1]])


def _newton_euler(inertials, joint_vel, joint_acc, gravity):
    """Recursive Newton-Euler with the recursions written as prefix sums over the links, so the whole
    chain is a few array operations on ``[7, 3]`` arrays (and so is its gradient):
    - outwards: ``omega_i = sum_{j<=i} z_j qd_j``; ``alpha_i = sum_{j<=i} z_j qdd_j + omega_{j-1} x z_j qd_j``;
      the origin acceleration ``a_i = g + sum_{j<=i} alpha_{j-1} x d_j + omega_{j-1} x (omega_{j-1} x d_j)``
      with ``d_j = o_j - o_{j-1}``; per link ``f_l = m_l a_com,l`` and ``n_l = I_l alpha_l + omega_l x I_l omega_l``;
    - inwards: the moment about ``o_i`` of the links ``l >= i`` is
      ``sum_{l>=i} n_l + c_l x f_l  -  o_i x sum_{l>=i} f_l``, and ``tau_i = z_i . moment_i``."""
    axes, origins, coms, inertias, masses = inertials
    dtype = axes.dtype
    spin = axes * joint_vel[:, None]
    omega = jnp.cumsum(spin, axis=0)
    omega_prev = _shift_down(omega)
    alpha = jnp.cumsum(axes * joint_acc[:, None] + jnp.cross(omega_prev, spin), axis=0)
    offset = origins - _shift_down(origins)
    alpha_prev = _shift_down(alpha)
    base = jnp.array([0.0, 0.0, gravity], dtype)  # the base accelerates upwards instead of gravity
    acc = base + jnp.cumsum(jnp.cross(alpha_prev, offset) + jnp.cross(omega_prev, jnp.cross(omega_prev, offset)),
                            axis=0)
    arm = coms - origins
    acc_com = acc + jnp.cross(alpha, arm) + jnp.cross(omega, jnp.cross(omega, arm))
    forces = masses[:, None] * acc_com
    torques = einsum("lij,lj->li", inertias, alpha) + jnp.cross(omega, einsum("lij,lj->li", inertias, omega))
    outer_sum = lambda x: jnp.cumsum(x[::-1], axis=0)[::-1]  # sum over the links l >= i
    moment = outer_sum(torques + jnp.cross(coms, forces)) - jnp.cross(origins, outer_sum(forces))
    return jnp.sum(axes * moment, axis=-1)


def bias_forces(joint_pos, joint_vel, gravity=9.81):
    """Coriolis, centrifugal and gravity torques ``[7]`` (N m): ``inverse_dynamics`` at zero acceleration."""
    return inverse_dynamics(joint_pos, joint_vel, jnp.zeros_like(joint_vel), gravity)


def cholesky_factor(matrix):
    """Lower Cholesky factor ``[n, n]`` of a small symmetric positive-definite ``matrix``, column by column
    (reads the lower triangle only; no LAPACK call, so it batches on every backend)."""
    factor = jnp.zeros_like(matrix)
    for j in range(matrix.shape[0]):
        column = matrix[j:, j] - matmul(factor[j:, :j], factor[j, :j])
        factor = factor.at[j:, j].set(column / jnp.sqrt(column[0]))
    return factor


def factor_solve(factor, rhs):
    """Solve ``L L^T x = rhs`` with the lower factor ``L [n, n]`` (forward then backward substitution)."""
    n = factor.shape[0]
    y = jnp.zeros_like(rhs)
    for i in range(n):
        y = y.at[i].set((rhs[i] - matmul(factor[i, :i], y[:i])) / factor[i, i])
    x = jnp.zeros_like(rhs)
    for i in reversed(range(n)):
        x = x.at[i].set((y[i] - matmul(factor[i + 1:, i], x[i + 1:])) / factor[i, i])
    return x


def cholesky_solve(matrix, rhs):
    """Solve ``matrix x = rhs`` for a small symmetric positive-definite ``matrix [n, n]``."""
    return factor_solve(cholesky_factor(matrix), rhs)


@jax.custom_jvp
def _forward_dynamics(inertials, joint_vel, torque, gravity):
    """Joint accelerations ``qdd [7]`` solving ``M qdd + bias = torque`` for the link ``inertials`` (axes,
    origins, centres of mass, world inertias of ``_link_inertials``), ``joint_vel [7]``, total applied
    ``torque [7]`` (N m) and ``gravity []`` (m/s^2).

    Derivative by the implicit function theorem instead of differentiating the mass matrix and its
    factorisation: ``M qdd + bias = NE(qdd) + armature qdd`` (Newton-Euler at the solution), so
    ``dqdd = M^-1 (dtorque - dNE)`` where ``dNE`` is Newton-Euler's derivative in (inertials, velocities,
    gravity) at fixed ``qdd``: one more solve with the same factor and one Newton-Euler derivative, while
    the mass matrix is needed as a value only."""
    factor = cholesky_factor(_mass_matrix(inertials))
    return factor_solve(factor, torque - _newton_euler(inertials, joint_vel, jnp.zeros_like(joint_vel), gravity))


@_forward_dynamics.defjvp
def _forward_dynamics_jvp(primals, tangents):
    inertials, joint_vel, torque, gravity = primals
    d_inertials, d_joint_vel, d_torque, d_gravity = tangents
    factor = cholesky_factor(_mass_matrix(inertials))
    acc = factor_solve(factor, torque - _newton_euler(inertials, joint_vel, jnp.zeros_like(joint_vel), gravity))
    inverse_dynamics_at = lambda inr, vel, g: _newton_euler(inr, vel, jax.lax.stop_gradient(acc), g)
    _, d_inverse = jax.jvp(inverse_dynamics_at, (inertials, joint_vel, gravity),
                           (d_inertials, d_joint_vel, d_gravity))
    return acc, factor_solve(factor, d_torque - d_inverse)


@dataclasses.dataclass(frozen=True)
class FrankaParams:
    kp: tuple = (400.0, 600.0, 400.0, 300.0, 40.0, 40.0, 30.0)  #: N m/rad
    kd: tuple = (48.0, 80.0, 48.0, 36.0, 4.0, 4.0, 3.0)  #: N m s/rad
    joint_damping: float = 0.21  #: N m s/rad, every joint
    #: the links' masses and inertias relative to the model (model mismatch: the controller's gravity
    #: compensation keeps the model's)
    link_mass_scale: float = 1.0
    gravity: float = 9.81  #: m/s^2 along -z
    limit_stiffness: float = 300.0  #: N m/rad, smooth joint-limit springs
    limit_width: float = 0.02  #: rad, softplus width of the limit springs
    target_margin: float = 0.1  #: rad, joint targets stay this far inside the limits
    dt: float = 0.04  #: s per control step (25 Hz)
    substeps: int = 8
    target_low: tuple = (0.3, -0.3, 0.2)  #: m, target box in the base frame
    target_high: tuple = (0.6, 0.3, 0.6)
    reset_noise: float = 0.1  #: rad, joint noise around the ready pose at reset
    velocity_cost: float = 0.002  #: reward per (rad/s)^2
    distance_eps: float = 0.001  #: m, smoothing of the distance
    success_distance: float = 0.02  #: m
    episode_length: int = 100


class Franka(DiffEnv):
    name = "franka"
    Params = FrankaParams
    state_dim = 17
    randomizable = ("joint_damping", "link_mass_scale")
    action_size = NUM_JOINTS
    render_projection = "3d"

    def validate_params(self):
        super().validate_params()
        p = self.params
        if len(p.kp) != NUM_JOINTS or len(p.kd) != NUM_JOINTS or min(p.kd) <= 0:
            raise ValueError("kp and kd need 7 entries each and kd must be positive")
        if p.substeps < 1 or len(p.target_low) != 3 or len(p.target_high) != 3:
            raise ValueError("substeps must be >= 1; target_low/target_high are (x, y, z) in metres")
        if p.link_mass_scale <= 0 or p.joint_damping < 0:
            raise ValueError(f"link_mass_scale must be > 0 and joint_damping >= 0, got {p.link_mass_scale}, "
                             f"{p.joint_damping}")

    # ----- dynamics --------------------------------------------------------------------------------
    def joint_target(self, u):
        """Joint position targets ``[7]`` (rad) of actions ``u [7]`` in [-1, 1]."""
        m = self.params.target_margin
        low, high = JOINT_LOWER + m, JOINT_UPPER - m
        return jnp.asarray(low, u.dtype) + 0.5 * (jnp.clip(u, -1.0, 1.0) + 1.0) * jnp.asarray(high - low, u.dtype)

    def control_torque(self, joint_pos, joint_vel, target, gravity_torque):
        """PD with gravity compensation, speed-limited and torque-saturated (N m)."""
        p = self.params
        dtype = joint_pos.dtype
        kp, kd = jnp.asarray(p.kp, dtype), jnp.asarray(p.kd, dtype)
        v_max, t_max = jnp.asarray(VELOCITY_LIMIT, dtype), jnp.asarray(TORQUE_LIMIT, dtype)
        v_des = v_max * jnp.tanh(kp / kd * (target - joint_pos) / v_max)
        tau = kd * (v_des - joint_vel) + gravity_torque
        return t_max * jnp.tanh(tau / t_max)

    def passive_torque(self, joint_pos, joint_vel):
        """Joint damping and smooth joint-limit springs (N m)."""
        p = self.params
        dtype = joint_pos.dtype
        below = soft_depth(jnp.asarray(JOINT_LOWER, dtype) - joint_pos, p.limit_width)
        above = soft_depth(joint_pos - jnp.asarray(JOINT_UPPER, dtype), p.limit_width)
        return -p.joint_damping * joint_vel + p.limit_stiffness * (below - above)

    def joint_acceleration(self, joint_pos, joint_vel, torque=None, target=None):
        """Forward dynamics ``[7]`` (rad/s^2) under applied joint ``torque`` (N m) or, if ``target`` (rad)
        is given, under the controller tracking it; passive torques are always added. One kinematics pass
        serves the mass matrix, the gravity compensation and the Newton-Euler bias forces."""
        p = self.params
        gravity = jnp.asarray(p.gravity, joint_pos.dtype)
        inertials = _link_inertials(joint_pos, p.link_mass_scale)
        if target is not None:  # the controller compensates the model's gravity (linear in the masses)
            model_gravity = _gravity_torque(inertials, gravity) / p.link_mass_scale
            torque = self.control_torque(joint_pos, joint_vel, target, model_gravity)
        return _forward_dynamics(inertials, joint_vel, torque + self.passive_torque(joint_pos, joint_vel), gravity)

    def substep(self, joint_pos, joint_vel, target, h):
        joint_vel = joint_vel + h * self.joint_acceleration(joint_pos, joint_vel, target=target)
        return joint_pos + h * joint_vel, joint_vel

    def physics_step(self, q, u):
        p = self.params
        target = self.joint_target(u)
        h = p.dt / p.substeps

        def body(_, x):
            return jnp.concatenate(self.substep(x[:7], x[7:14], target, h))

        x = jax.lax.fori_loop(0, p.substeps, body, q[:14])
        q_next = jnp.concatenate([x, q[14:17]])
        return q_next, self.reward(q_next)

    def distance(self, q):
        return jnp.linalg.norm(forward_kinematics(q[:7]) - q[14:17])

    def reward(self, q):
        p = self.params
        diff = q[14:17] - forward_kinematics(q[:7])
        dist = jnp.sqrt(jnp.sum(diff**2) + p.distance_eps**2) - p.distance_eps
        return -(dist + p.velocity_cost * jnp.sum(q[7:14] ** 2))

    # ----- task ------------------------------------------------------------------------------------
    def sample_initial_q(self, key):
        p = self.params
        k_joint, k_target = jax.random.split(key)
        noise = jax.random.uniform(k_joint, (NUM_JOINTS,), minval=-p.reset_noise, maxval=p.reset_noise)
        joint_pos = jnp.clip(READY_POSE + noise, JOINT_LOWER, JOINT_UPPER)
        target = jax.random.uniform(k_target, (3,), minval=jnp.asarray(p.target_low),
                                    maxval=jnp.asarray(p.target_high))
        return jnp.concatenate([joint_pos, jnp.zeros(NUM_JOINTS), target]).astype(target.dtype)

    def observe(self, q):
        """``(joint pos [7], joint vel [7], flange [3], target [3], target - flange [3])``."""
        flange = forward_kinematics(q[:7])
        return jnp.concatenate([q[:14], flange, q[14:17], q[14:17] - flange])

    def success(self, q):
        return (self.distance(q) < self.params.success_distance).astype(q.dtype)

    def draw(self, ax, q):
        _, origins, flange = link_frames(jnp.asarray(q[:7]))
        points = np.concatenate([np.zeros((1, 3)), np.asarray(origins), np.asarray(flange)[None]])
        ax.plot(points[:, 0], points[:, 1], points[:, 2], "-o", color="tab:gray", lw=4, ms=4)
        ax.scatter(*np.asarray(flange), color="tab:blue", s=30)
        ax.scatter(*np.asarray(q[14:17]), color="tab:green", marker="x", s=60)
        ax.set_xlim(-0.3, 0.8)
        ax.set_ylim(-0.55, 0.55)
        ax.set_zlim(0.0, 1.1)
        ax.set_xlabel("x [m]", fontsize=7)
        ax.set_ylabel("y [m]", fontsize=7)
        ax.view_init(elev=20, azim=-60)
        ax.set_title(f"distance {float(self.distance(jnp.asarray(q))) * 100:.1f} cm", fontsize=8)
