"""Task ``tblock``: a circular pusher pushes a T-shaped block onto a goal pose (Push-T style).

Frame: top view, metres, workspace ``[-0.256, 0.256]^2`` (Push-T's 512 px at 1 mm per px), no gravity in
the plane. The block's local frame has its origin at the middle of the bar's top edge, as in Push-T: bar
``x in [-2s, 2s], y in [-s, 0]``, stem ``x in [-s/2, s/2], y in [-4s, -s]`` with unit ``s = 0.03 m``
(the T hangs below its origin; Push-T's pixel frame has y pointing down).

Physics state ``q = (px, py, pvx, pvy, bx, by, btheta, gx, gy, gtheta)``: pusher position and velocity
[m, m/s], the block's reference-origin position [m] and angle [rad], and the goal pose of that origin.

Model (defaults of ``TBlockParams``):
- Block: uniform density, mass 0.1 kg; the centre of mass is where it really is,
  ``y_c = -(0.0036 * 0.015 + 0.0027 * 0.075) / 0.0063 = -0.04071 m`` below the origin (1.357 s); moment of
  inertia about it ``I = 1.932e-4 kg m^2`` (``block_mass_properties``, from the two rectangles).
- Quasi-static sliding on the table (Push-T wipes the block's velocity every step; this is its smooth
  version): viscous friction per unit area under uniform pressure, so the block's twist is proportional
  to the wrench about its centre of mass, ``v = F / b_t``, ``omega = tau / b_r`` with ``b_t = 1 N s/m`` and
  ``b_r = b_t I / m`` (the polar radius of gyration, 0.044 m, follows from the shape). The block
  dissipates all the work the pusher does on it and stops as soon as it is no longer pushed.
- Pusher: disc of radius 0.5 s = 0.015 m, kinematic like Push-T's: it tracks the action target through
  ``a = 100 (target - p) - 20 v`` (critically damped, omega = 10 rad/s) and is not pushed back by the block.
  The action ``u in [-1, 1]^2`` maps to the target ``u * (0.256 - 0.015)`` m.
- Contact pusher-block: signed distance ``d`` from the pusher centre to the T, made smooth
  (softplus-smoothed box distances outside and softplus-smoothed depths inside, width 0.5 mm, joined by a
  smooth minimum of width 1 mm; the depth inside keeps the normal defined if a fast pusher's centre ever
  enters the T, so it cannot pass through), penetration
  ``pen = r - d``. Normal force ``f_n = k w softplus(pen / w) - c v_n sigmoid(pen / w)`` with
  ``k = 200 N/m``, ``c = 0.2 N s/m``, ``w = 0.5 mm``, ``v_n = v . n``; tangential friction ``mu f_n tanh(v_t / v_eps)``,
  ``mu = 0.3``, ``v_eps = 0.05 m/s``, with ``v`` the pusher's velocity (normal and tangential parts). The
  block's own velocity is left out: fed back through an explicit substep, a stiff friction law would
  oscillate, and in quasi-static pushing the block is slower than the pusher anyway. ``v_eps`` bounds how
  fast the friction direction turns with the contact normal: with 0.01 m/s, 10-step rollout gradients
  reached 1e9 in rare sliding contacts (the tangent rotates with the block, feeding torque back into the
  angle), with 0.05 m/s the largest of 1024 contact rollouts was below 1e3.
  Force and torque act at the contact point (the closest point of the T to the pusher centre).
- Walls: the 8 vertices of the T are pushed back into the workspace by smoothed springs of 1000 N/m; the
  pusher's rim by a smoothed spring of 1e4 1/s^2 (an acceleration: the pusher is kinematic).
- Control at 10 Hz with 10 substeps of 10 ms. Each substep moves the pusher first (semi-implicit Euler),
  then the block by linearly implicit Euler along the contact normals: its twist solves
  ``(diag(b_t, b_t, b_r) + h K) twist = wrench`` with ``K = sum k_i J_i^T J_i`` over the springs in contact
  (``J_i``: the rate of approach along normal ``i`` per twist), which is stable at any substep (the contact's
  time constant is about 1 ms) and leaves the quasi-static equilibrium as it is; friction takes the normal
  force at the end of the substep, the spring force over ``1 + h k m_n`` (``m_n``: the block's mobility
  along the normal). Against the explicit scheme of 50 substeps of 2 ms it replaced (3 s of random pushes
  from 512 resets, 89 mm of block travel on average), the block's pose differs by 6 mm and 4 degrees on
  average (the converged explicit scheme differs by 5 mm and 3 degrees from itself with a 5x stiffer
  contact: the difference is of the order of the contact model's own softness).
- Reward per step: ``-(10 * mean keypoint distance + 0.1 * gap + 0.01 |v_pusher|^2)``: keypoints are the 8
  vertices of the T, matched with the goal's (distances smoothed as ``sqrt(d^2 + 1 mm^2) - 1 mm``); ``gap``
  is the softplus-smoothed distance between the pusher's rim and the T, so the gradient leads the pusher
  to the block before any contact. Two optional terms, off by default (measured without benefit, stop 46):
  ``reach_margin`` leaves gaps below it unpenalised; ``precision_weight * log(1 + keypoint / precision_scale)``
  pays for the last millimetres.
- ``coverage``: area of the block inside the goal T / the T's area, by a midpoint grid of 2 mm cells over
  the goal T (1575 points). Exact for poses whose cells fall wholly in or out; otherwise the error is at
  most the share of goal cells cut by the block's boundary (about 2 % of the area for a 2 mm grid). The
  points are counted row by row (an interval of indices per row and box), not one by one: the same count
  for the cost of 60 rows (testing every point, vmapped over the 300 steps of an evaluation episode,
  made the evaluation 6x slower than the episode's physics).
  Success at a step: coverage >= 0.95; an episode succeeds if any step does (as in Push-T).
- Reset: block origin ``U([-0.15, 0.15]^2)``, angle ``U(-pi, pi)``; pusher ``U([-0.2, 0.2]^2)`` not
  touching the block (the first of 16 draws that clears it by 1 cm); pusher at rest. Goal: origin at the
  workspace centre, angle pi/4 (configurable). Horizon 300 steps (30 s). Training resets may follow a
  curriculum (``sample_training_q``: the block's offset from the goal scaled by a difficulty in [0, 1]);
  ``start_bands`` name the evaluation sets of the T-block issue (``near``: within 3 cm and 30 degrees,
  ``middle``: 3-8 cm and 30-90 degrees).
- Observation (16 values, ``observe``): the pusher, its velocity and the goal in the block's frame, the block
  in the goal's frame, angles as cos and sin, and world positions for the walls.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from apg_jax.envs.base import DiffEnv
from apg_jax.envs.smooth import contact_gate, soft_depth, soft_depth_reaching
from apg_jax.fullprecision import dot, matmul

S = 0.03  #: m, the Push-T unit length (30 px)
# The two rectangles of the T in the block frame: (centre x, centre y, half width, half height) [m].
BOXES = np.array([[0.0, -0.5 * S, 2.0 * S, 0.5 * S], [0.0, -2.5 * S, 0.5 * S, 1.5 * S]])
# The T's outline, counter-clockwise [m]; also the reward's keypoints and the wall contacts.
VERTICES = S * np.array([[-2, 0], [-2, -1], [-0.5, -1], [-0.5, -4], [0.5, -4], [0.5, -1], [2, -1], [2, 0]],
                        dtype=float)[::-1]
NORMAL_EPS = 1e-12  #: m^2, keeps the contact normal finite where the distance gradient vanishes


def block_mass_properties(mass: float):
    """Centre of mass ``[2]`` (block frame, m) and moment of inertia about it (kg m^2)."""
    areas = 4 * BOXES[:, 2] * BOXES[:, 3]
    masses = mass * areas / areas.sum()
    com = (masses[:, None] * BOXES[:, :2]).sum(0) / mass
    widths, heights = 2 * BOXES[:, 2], 2 * BOXES[:, 3]
    inertia = np.sum(masses * (widths**2 + heights**2) / 12 + masses * np.sum((BOXES[:, :2] - com) ** 2, 1))
    return com, float(inertia)


def coverage_rows(cell: float) -> np.ndarray:
    """The rows of a ``cell``-metre midpoint grid over the T (block frame): ``[R, 3]`` with each row's
    ``y`` [m], first midpoint ``x`` [m] and number of midpoints (the grid of ``coverage``)."""
    rows = []
    for cx, cy, hw, hh in BOXES:
        count = len(np.arange(cx - hw + cell / 2, cx + hw, cell))
        rows += [(y, cx - hw + cell / 2, count) for y in np.arange(cy - hh + cell / 2, cy + hh, cell)]
    return np.array(rows)


def rotation(theta):
    c, s = jnp.cos(theta), jnp.sin(theta)
    return jnp.array([[c, -s], [s, c]])


def cross2(a, b):
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def solve_symmetric3(a00, a11, a22, a01, a02, a12, b):
    """``a^-1 b`` for the symmetric ``a [3, 3]`` given by its six entries and ``b [3]``: the adjugate over
    the determinant, scalar arithmetic that XLA fuses (a batched LU of 3 x 3 matrices, and its gradient,
    cost several times the whole substep on a CPU)."""
    c00 = a11 * a22 - a12 * a12
    c01 = a02 * a12 - a01 * a22
    c02 = a01 * a12 - a02 * a11
    c11 = a00 * a22 - a02 * a02
    c12 = a01 * a02 - a00 * a12
    c22 = a00 * a11 - a01 * a01
    det = a00 * c00 + a01 * c01 + a02 * c02
    return jnp.stack([c00 * b[0] + c01 * b[1] + c02 * b[2], c01 * b[0] + c11 * b[1] + c12 * b[2],
                      c02 * b[0] + c12 * b[1] + c22 * b[2]]) / det


@dataclasses.dataclass(frozen=True)
class TBlockParams:
    half_width: float = 0.256  #: m, walls at |x|, |y| = half_width
    pusher_radius: float = 0.015  #: m
    pusher_kp: float = 100.0  #: 1/s^2, PD stiffness of the pusher (per unit mass)
    pusher_kd: float = 20.0  #: 1/s, PD damping of the pusher
    block_mass: float = 0.1  #: kg
    trans_resistance: float = 1.0  #: N s/m, b_t: block velocity = force / b_t
    contact_stiffness: float = 200.0  #: N/m, pusher on block
    wall_stiffness: float = 1000.0  #: N/m, walls on the block's vertices
    contact_damping: float = 0.2  #: N s/m
    pusher_wall_stiffness: float = 1e4  #: 1/s^2, wall spring on the pusher (acceleration per m)
    contact_width: float = 0.0005  #: m, softplus smoothing of penetration
    contact_gradient_reach: float = 0.0  #: m; > 0: the pusher-block spring's *gradient* out of contact decays
    #: over this distance instead of contact_width (``soft_depth_reaching``): a biased surrogate that tells the
    #: analytic gradient where a push would act before the pusher touches; forces unchanged. 0: exact
    friction: float = 0.3  #: pusher-block friction coefficient
    friction_speed: float = 0.05  #: m/s, tanh smoothing of the friction direction
    sdf_width: float = 0.0005  #: m, smoothing of the box distances
    union_width: float = 0.001  #: m, smooth minimum joining bar and stem
    dt: float = 0.1  #: s per control step
    substeps: int = 10
    goal: tuple = (0.0, 0.0, np.pi / 4)  #: goal pose of the block origin (x, y, theta)
    block_range: float = 0.15  #: m, block origin ~ U([-r, r]^2) at reset
    pusher_range: float = 0.2  #: m, pusher ~ U([-r, r]^2) at reset
    keypoint_weight: float = 10.0  #: reward per m of mean keypoint distance
    reach_weight: float = 0.1  #: reward per m of pusher-to-block gap (1.0 held the pusher against the
    #: block where it had stopped: final coverage 0.29 against 0.40 at 0.1, APG, 5 M steps)
    gap_smoothing: float = 0.005  #: m, softplus width of that gap (a touching pusher is not rewarded more)
    reach_margin: float = 0.0  #: m, gaps up to this are not penalised: the reach term pulls a distant pusher
    #: towards the block without holding it against it
    effort_cost: float = 0.01  #: reward per (m/s)^2 of pusher speed
    precision_weight: float = 0.0  #: reward per unit of log(1 + keypoint distance / precision_scale): pays
    #: for the last millimetres (slope precision_weight / precision_scale at the goal)
    precision_scale: float = 0.002  #: m
    distance_eps: float = 0.001  #: m, smoothing of keypoint distances
    coverage_cell: float = 0.002  #: m, grid of the coverage metric
    success_coverage: float = 0.95
    episode_length: int = 300


class TBlock(DiffEnv):
    name = "tblock"
    Params = TBlockParams
    state_dim = 10
    randomizable = ("friction", "trans_resistance")
    action_size = 2
    success_mode = "any"
    has_curriculum = True
    #: named start bands (``sample_band``): (block-origin distance [m], angle offset [rad]) from the goal
    start_bands = {"near": ((0.0, 0.03), (0.0, np.pi / 6)), "middle": ((0.03, 0.08), (np.pi / 6, np.pi / 2))}

    def __init__(self, **overrides):
        super().__init__(**overrides)
        self.com, self.inertia = block_mass_properties(self.params.block_mass)  # block frame m, kg m^2
        self.coverage_grid = coverage_rows(self.params.coverage_cell)

    def validate_params(self):
        super().validate_params()
        p = self.params
        if p.substeps < 1 or len(p.goal) != 3:
            raise ValueError("substeps must be >= 1 and goal must be (x, y, theta)")
        if p.precision_scale <= 0:
            raise ValueError(f"precision_scale must be > 0 m, got {p.precision_scale}")
        if p.reach_margin < 0:
            raise ValueError(f"reach_margin must be >= 0 m (0: every gap is penalised), got {p.reach_margin}")
        if p.contact_gradient_reach < 0:
            raise ValueError(f"contact_gradient_reach must be >= 0 m (0: the exact gradient), got "
                             f"{p.contact_gradient_reach}")
        h = p.dt / p.substeps
        # the contact springs are implicit along their normals; the pusher's PD and wall springs are not
        # (semi-implicit Euler of x'' = -w^2 x - c x' is stable for h w < 2 and h c < 2)
        omega = np.sqrt(max(p.pusher_kp, p.pusher_wall_stiffness))
        if h * omega >= 2.0 or h * p.pusher_kd >= 2.0:
            raise ValueError(f"the pusher is unstable at {p.substeps} substeps (h sqrt(k) = {h * omega:.2f}, "
                             f"h kd = {h * p.pusher_kd:.2f}, both must be < 2): raise substeps")

    # ----- geometry --------------------------------------------------------------------------------
    def local_distance(self, x):
        """Smooth signed distance [m] from ``x [2]`` (block frame) to the T, negative inside: per box the
        smoothed distance to its outside plus its smoothed depth inside, joined by a smooth minimum."""
        return self.local_distance_and_gradient(x)[0]

    def local_distance_and_gradient(self, x):
        """``local_distance(x)`` and its gradient ``[2]`` in closed form (the Warp kernel's formula). The
        contact normal is this gradient; differentiating a closed form in the backward pass costs far less
        than differentiating ``jax.grad``'s own backward pass a second time."""
        p = self.params
        w = p.sdf_width
        boxes = jnp.asarray(BOXES, x.dtype)
        offset = x[None, :] - boxes[:, :2]  # [2 boxes, 2]
        q = jnp.abs(offset) - boxes[:, 2:]
        outside = soft_depth(q, w)
        root = jnp.sqrt(jnp.sum(outside**2, axis=-1) + w**2)
        smooth_max = w * jax.nn.logsumexp(q / w, axis=-1)  # of q's two components, per box
        d = root - w - soft_depth(-smooth_max, w)
        # d d / d q: the outside part, and the depth's weight on the smooth max's softmax
        dd_dq = (outside / root[:, None] * contact_gate(q, w)
                 + contact_gate(-smooth_max, w)[:, None] * jax.nn.softmax(q / w, axis=-1))
        grads = dd_dq * jnp.sign(offset)  # [2 boxes, 2]
        weights = jax.nn.softmax(-d / p.union_width)
        return -p.union_width * jax.nn.logsumexp(-d / p.union_width), matmul(weights, grads)

    def world_to_block(self, pose, x):
        return matmul(rotation(pose[2]).T, x - pose[:2])

    def vertices(self, pose):
        """World positions ``[8, 2]`` of the T's vertices for block-origin pose ``(x, y, theta)``."""
        return pose[:2] + matmul(jnp.asarray(VERTICES, pose.dtype), rotation(pose[2]).T)

    def episode_metrics(self, qs):
        """``max_coverage`` (over the steps taken) and ``final_coverage`` of an episode ``qs [T + 1, 10]``."""
        cover = jax.vmap(self.coverage)(qs[1:])
        return {"max_coverage": jnp.max(cover), "final_coverage": cover[-1]}

    def coverage(self, q):
        """Share of the goal T covered by the block (grid estimate, see module docstring). Counted row by
        row: along a grid row the block-frame coordinates are linear in ``x``, so the midpoints inside each
        box of the block form one interval of indices (the same count as testing every point, at the cost
        of the rows; 0 for a non-finite state)."""
        rows = jnp.asarray(self.coverage_grid, q.dtype)
        y, x0, count = rows[:, 0], rows[:, 1], rows[:, 2]
        cos, sin = jnp.cos(q[9] - q[6]), jnp.sin(q[9] - q[6])
        shift = matmul(q[7:9] - q[4:6], rotation(q[6]))  # goal origin in the block frame
        # a goal point (x, y) lies at block-frame (cos x - sin y, sin x + cos y) + shift
        lo = jnp.full((len(BOXES), y.shape[0]), -jnp.inf, q.dtype)
        hi = jnp.full_like(lo, jnp.inf)
        for slope, offset, axis in ((cos, -sin * y + shift[0], 0), (sin, cos * y + shift[1], 1)):
            centre, half = (jnp.asarray(BOXES[:, k][:, None], q.dtype) for k in (axis, axis + 2))
            # |slope x + offset - centre| <= half, as an interval of x per (box, row)
            sloped = jnp.abs(slope) > 1e-9
            safe = jnp.where(sloped, slope, 1.0)
            ends = ((centre - half - offset) / safe, (centre + half - offset) / safe)
            everywhere = jnp.where(jnp.abs(offset - centre) <= half, jnp.inf, -jnp.inf)  # a zero slope: all or none
            lo = jnp.maximum(lo, jnp.where(sloped, jnp.minimum(*ends), -everywhere))
            hi = jnp.minimum(hi, jnp.where(sloped, jnp.maximum(*ends), everywhere))
        cell = self.params.coverage_cell
        first = jnp.maximum(jnp.ceil((lo - x0) / cell), 0.0)
        last = jnp.minimum(jnp.floor((hi - x0) / cell), count - 1)
        covered = jnp.sum(jnp.maximum(last - first + 1.0, 0.0))  # the two boxes touch only on an edge
        return jnp.where(jnp.isfinite(covered), covered / jnp.sum(count), 0.0)

    # ----- dynamics --------------------------------------------------------------------------------
    def wall_depth(self, x, margin):
        """Wall penetration [m] ``[..., 4]`` (walls +x, +y, -x, -y) of discs of radius ``margin`` at ``x``."""
        L = self.params.half_width
        return jnp.concatenate([x - (L - margin), -(L - margin) - x], axis=-1)

    def mobility(self, arm, direction):
        """Velocity [m/s] along ``direction [2]`` of the block point at ``arm [2]`` from its centre of mass,
        per newton pushing there along that direction: ``1 / b_t + (arm x direction)^2 / b_r``."""
        p = self.params
        return (1.0 + p.block_mass * cross2(arm, direction) ** 2 / self.inertia) / p.trans_resistance

    def block_twist(self, wrench, contact, walls):
        """The block's twist ``[3]`` (centre-of-mass velocity, angular velocity) under ``wrench [3]`` (force,
        torque about the centre of mass), linearly implicit along the contact normals: it solves
        ``(diag(b_t, b_t, b_r) + h K) twist = wrench`` with ``K = sum_i k_i J_i^T J_i`` the stiffness of the
        springs in contact (``J_i``: rate of approach along normal ``i`` per twist), which is stable at any
        substep and leaves the quasi-static equilibrium (zero wrench) unchanged.

        ``contact = (k gate, J [3])`` of the pusher; ``walls = (k gate_x [8], k gate_y [8], arms [8, 2])``
        of the vertices against the x and y walls (``J = (1, 0, -arm_y)`` and ``(0, 1, arm_x)``)."""
        p = self.params
        h = p.dt / p.substeps
        k_c, jac = contact
        k_x, k_y, arms = walls
        rx, ry = arms[:, 0], arms[:, 1]
        b_r = p.trans_resistance * self.inertia / p.block_mass
        a00 = p.trans_resistance + h * (k_c * jac[0] ** 2 + jnp.sum(k_x))
        a11 = p.trans_resistance + h * (k_c * jac[1] ** 2 + jnp.sum(k_y))
        a22 = b_r + h * (k_c * jac[2] ** 2 + jnp.sum(k_x * ry**2 + k_y * rx**2))
        a01 = h * k_c * jac[0] * jac[1]
        a02 = h * (k_c * jac[0] * jac[2] - jnp.sum(k_x * ry))
        a12 = h * (k_c * jac[1] * jac[2] + jnp.sum(k_y * rx))
        return solve_symmetric3(a00, a11, a22, a01, a02, a12, wrench)

    def substep(self, state, target):
        p = self.params
        h = p.dt / p.substeps
        pos, vel, pose = state[0:2], state[2:4], state[4:7]

        # pusher first: kinematic PD tracking (semi-implicit Euler), walls keep its centre inside; the
        # contact below sees where it has moved to, so the block yields within the same substep
        wall_dirs = jnp.array([[-1.0, 0.0], [0.0, -1.0], [1.0, 0.0], [0.0, 1.0]], pose.dtype)
        pusher_wall = self.wall_depth(pos, p.pusher_radius)
        wall_push = p.pusher_wall_stiffness * matmul(soft_depth(pusher_wall, p.contact_width), wall_dirs)
        acc = p.pusher_kp * (target - pos) - p.pusher_kd * vel + wall_push
        vel = vel + h * acc
        pos = pos + h * vel

        R = rotation(pose[2])
        com = pose[:2] + matmul(R, jnp.asarray(self.com, pose.dtype))
        # pusher - block contact
        local = self.world_to_block(pose, pos)
        dist, grad_local = self.local_distance_and_gradient(local)
        normal = matmul(R, grad_local / jnp.sqrt(jnp.sum(grad_local**2) + NORMAL_EPS))  # block -> pusher
        pen = p.pusher_radius - dist
        spring = p.contact_stiffness * (soft_depth_reaching(pen, p.contact_width, p.contact_gradient_reach)
                                        if p.contact_gradient_reach > 0 else soft_depth(pen, p.contact_width))
        gate = contact_gate(pen, p.contact_width)
        point = pos - normal * dist  # closest point of the T
        # wall contacts of the block's vertices
        verts = self.vertices(pose)
        wall_raw = self.wall_depth(verts, 0.0)  # [8, 4]: +x, +y, -x, -y
        wall_f = p.wall_stiffness * soft_depth(wall_raw, p.contact_width)  # [8, 4]
        wall_forces = matmul(wall_f, wall_dirs)  # [8, 2]
        wall_force = jnp.sum(wall_forces, 0)
        wall_torque = jnp.sum(cross2(verts - com, wall_forces))

        # damping and friction from the pusher's velocity (the block, quasi-static, moves slower). Friction
        # is proportional to the normal force at the end of the substep, the spring's force over 1 + h k m_n
        # (m_n: the block's mobility along the normal): the implicit solve below makes that the normal force
        # that moves the block, while the spring force at the start of the substep runs ahead of it by the
        # pusher's advance in the substep
        tangent = jnp.array([-normal[1], normal[0]])
        damping = p.contact_damping * (-dot(vel, normal)) * gate
        yielding = 1.0 + h * p.contact_stiffness * gate * self.mobility(point - com, normal)
        f_t = p.friction * (spring / yielding + damping) * jnp.tanh(dot(vel, tangent) / p.friction_speed)
        on_block = -(spring + damping) * normal + f_t * tangent
        torque = cross2(point - com, on_block) + wall_torque
        wrench = jnp.concatenate([on_block + wall_force, torque[None]])
        # the springs' stiffness (k times the gate, the derivative of the smoothed depth) along each normal
        wall_gates = p.wall_stiffness * contact_gate(wall_raw, p.contact_width)  # [8, 4]
        contact = (p.contact_stiffness * gate, jnp.concatenate([normal, cross2(point - com, normal)[None]]))
        walls = (wall_gates[:, 0] + wall_gates[:, 2], wall_gates[:, 1] + wall_gates[:, 3], verts - com)
        twist = self.block_twist(wrench, contact, walls)
        v_origin = twist[:2] - twist[2] * jnp.array([-(com - pose[:2])[1], (com - pose[:2])[0]])
        pose = pose + h * jnp.concatenate([v_origin, twist[2:]])
        return jnp.concatenate([pos, vel, pose, state[7:10]])

    def physics_step(self, q, u):
        p = self.params
        u = jnp.clip(u, -1.0, 1.0)
        target = u * (p.half_width - p.pusher_radius)
        q_next = jax.lax.fori_loop(0, p.substeps, lambda _, s: self.substep(s, target), q)
        return q_next, self.reward(q_next)

    def reward(self, q):
        p = self.params
        diff = self.vertices(q[4:7]) - self.vertices(q[7:10])
        keypoint = jnp.mean(jnp.sqrt(jnp.sum(diff**2, -1) + p.distance_eps**2) - p.distance_eps)
        gap_raw = self.local_distance(self.world_to_block(q[4:7], q[0:2])) - p.pusher_radius - p.reach_margin
        gap = soft_depth(gap_raw, p.gap_smoothing)
        return -(p.keypoint_weight * keypoint + p.precision_weight * jnp.log1p(keypoint / p.precision_scale)
                 + p.reach_weight * gap + p.effort_cost * jnp.sum(q[2:4] ** 2))

    # ----- task ------------------------------------------------------------------------------------
    def sample_initial_q(self, key):
        p = self.params
        k_pos, k_angle, k_pusher = jax.random.split(key, 3)
        origin = jax.random.uniform(k_pos, (2,), minval=-p.block_range, maxval=p.block_range)
        angle = jax.random.uniform(k_angle, (), minval=-jnp.pi, maxval=jnp.pi)
        return self.place_pusher(k_pusher, jnp.concatenate([origin, angle[None]]))

    def sample_training_q(self, key, difficulty):
        """A reset drawn as ``sample_initial_q``, with the block's offset from the goal (position and wrapped
        angle) scaled by ``difficulty`` in [0, 1] (floored at 0.05: never the solved state)."""
        q = self.sample_initial_q(key)
        goal = q[7:10]
        scale = jnp.clip(difficulty, 0.05, 1.0)
        angle_error = jnp.arctan2(jnp.sin(q[6] - goal[2]), jnp.cos(q[6] - goal[2]))
        pose = jnp.concatenate([goal[:2] + scale * (q[4:6] - goal[:2]), (goal[2] + scale * angle_error)[None]])
        return self.place_pusher(jax.random.fold_in(key, 1), pose.astype(q.dtype))

    def sample_band(self, key, distance, angle):
        """A reset with the block's origin at a distance in ``distance = (lo, hi)`` [m] from the goal's (uniform
        direction, uniform distance) and its angle ``angle = (lo, hi)`` [rad] from the goal's (either sign)."""
        p = self.params
        k_dir, k_dist, k_angle, k_sign, k_pusher = jax.random.split(key, 5)
        goal = jnp.asarray(p.goal)  # default float dtype (float64 under x64)
        heading = jax.random.uniform(k_dir, (), minval=-jnp.pi, maxval=jnp.pi)
        radius = jax.random.uniform(k_dist, (), minval=distance[0], maxval=distance[1])
        offset = jax.random.uniform(k_angle, (), minval=angle[0], maxval=angle[1])
        offset = jnp.where(jax.random.bernoulli(k_sign), offset, -offset)
        origin = goal[:2] + radius * jnp.stack([jnp.cos(heading), jnp.sin(heading)])
        return self.place_pusher(k_pusher, jnp.concatenate([origin, (goal[2] + offset)[None]]))

    def place_pusher(self, key, pose):
        """``q`` with the block at ``pose`` and the pusher at rest at the first of 16 uniform draws in
        ``[-pusher_range, pusher_range]^2`` that clears the block by 1 cm (else the clearest draw)."""
        p = self.params
        candidates = jax.random.uniform(key, (16, 2), minval=-p.pusher_range, maxval=p.pusher_range)
        clearance = jax.vmap(lambda x: self.local_distance(self.world_to_block(pose, x)))(candidates)
        clear = clearance > p.pusher_radius + 0.01
        pusher = candidates[jnp.where(jnp.any(clear), jnp.argmax(clear), jnp.argmax(clearance))]
        goal = jnp.asarray(p.goal, pose.dtype)
        return jnp.concatenate([pusher, jnp.zeros(2, pose.dtype), pose, goal])

    def observe(self, q):
        """16 values, mostly in the block's frame: the pusher's position and velocity there (2 + 2), the goal's
        origin there and the cos, sin of the angle from block to goal (2 + 2), the block's origin in the goal's
        frame (2), and for the walls the block's world origin, cos, sin of its angle, and the pusher's world
        position (2 + 2 + 2)."""
        pusher, vel, pose, goal = q[0:2], q[2:4], q[4:7], q[7:10]
        to_block, to_goal = rotation(pose[2]).T, rotation(goal[2]).T
        trig = lambda a: jnp.stack([jnp.cos(a), jnp.sin(a)])
        return jnp.concatenate([matmul(to_block, pusher - pose[:2]), matmul(to_block, vel), matmul(to_block, goal[:2] - pose[:2]),
                                trig(goal[2] - pose[2]), matmul(to_goal, pose[:2] - goal[:2]), pose[:2], trig(pose[2]),
                                pusher])

    def success(self, q):
        return (self.coverage(q) >= self.params.success_coverage).astype(q.dtype)

    def draw(self, ax, q):
        import matplotlib.patches as patches

        from apg_jax.envs.render import draw_square_arena

        p = self.params
        draw_square_arena(ax, p.half_width)
        goal_outline = np.asarray(self.vertices(jnp.asarray(q[7:10])))
        block_outline = np.asarray(self.vertices(jnp.asarray(q[4:7])))
        ax.add_patch(patches.Polygon(goal_outline, closed=True, fill=False, ec="tab:green", lw=2))
        ax.add_patch(patches.Polygon(block_outline, closed=True, color="tab:gray", alpha=0.85))
        ax.add_patch(patches.Circle((q[0], q[1]), p.pusher_radius, color="tab:blue"))
        ax.set_title(f"coverage {float(self.coverage(jnp.asarray(q))):.2f}", fontsize=8)
