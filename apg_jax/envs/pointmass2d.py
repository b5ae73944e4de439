"""Task ``pointmass2d``: a 2-D point mass navigates past circular obstacles to a goal in a walled arena.

Physics state ``q = (x, y, vx, vy, gx, gy, max_pen)`` [m, m, m/s, m/s, m, m, m]: position, velocity,
goal and the deepest penetration (into an obstacle or a wall) seen so far in the episode.
Action ``u`` in [-1, 1]^2 is a force.

Constants (defaults of ``PointMass2DParams``; all configurable through ``envs.make``):
- arena: square with walls at ``|x|, |y| = 1.0`` m; the mass is a disc of radius 0.05 m, 1 kg;
- force ``F = 2 u`` N, linear damping ``-1.0 v`` N (terminal speed 2 m/s at full force);
- control step 0.05 s made of 4 semi-implicit Euler substeps of 0.0125 s;
- obstacles (default, between start and goal regions): discs at (-0.1, 0.55), (0.15, 0.0),
  (-0.1, -0.55) m, radius 0.2 m, leaving 0.1 m+ gaps for the 0.05 m disc;
- contact with obstacles and walls: normal spring-damper on a smoothed penetration depth (so a body
  pressed with force F rests where k w softplus(d / w) = F: 3.0 mm short of the surface at 2 N),
  ``f_n = k * w softplus(d / w) - c (v . n) sigmoid(d / w)`` with ``k = 5000`` N/m, ``c = 50`` N s/m,
  smoothing width ``w = 0.002`` m, where ``d`` is the penetration depth (positive inside);
- reward per step: ``-(|p' - g|_s + 0.01 |u|^2 + 100 * mean_substeps(sum_contacts w softplus(d / w)))``
  where ``|.|_s = sqrt(|.|^2 + 0.01^2) - 0.01`` is a smoothed distance in m;
- reset: start ``p ~ U([-0.9, -0.6] x [-0.8, 0.8])``, goal ``g ~ U([0.6, 0.9] x [-0.8, 0.8])``, v = 0;
- observation ``(x, y, vx, vy, gx, gy, gx - x, gy - y)``;
- success at a step: ``|p' - g| < 0.1`` m and ``max_pen <= 0.01`` m (no penetration deeper than 1 cm
  during the episode); an episode succeeds if its last step does. Horizon 200 steps (10 s).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from apg_jax.envs.base import DiffEnv
from apg_jax.envs.smooth import contact_gate, safe_norm, soft_depth
from apg_jax.fullprecision import matmul

DEFAULT_OBSTACLES = ((-0.1, 0.55, 0.2), (0.15, 0.0, 0.2), (-0.1, -0.55, 0.2))


@dataclasses.dataclass(frozen=True)
class PointMass2DParams:
    arena_half_width: float = 1.0  #: m, walls at |x| = |y| = arena_half_width
    body_radius: float = 0.05  #: m
    mass: float = 1.0  #: kg
    force_scale: float = 2.0  #: N per unit action
    damping: float = 1.0  #: N s/m, linear drag
    dt: float = 0.05  #: s per control step
    substeps: int = 4  #: semi-implicit Euler substeps per control step
    contact_stiffness: float = 5000.0  #: N/m
    contact_damping: float = 50.0  #: N s/m
    contact_width: float = 0.002  #: m, softplus smoothing of the penetration depth
    obstacles: tuple = DEFAULT_OBSTACLES  #: ((cx, cy, radius), ...) in m
    start_low: tuple = (-0.9, -0.8)  #: m, lower corner of the start region
    start_high: tuple = (-0.6, 0.8)  #: m
    goal_low: tuple = (0.6, -0.8)  #: m, lower corner of the goal region
    goal_high: tuple = (0.9, 0.8)  #: m
    effort_cost: float = 0.01  #: reward weight of |u|^2
    penetration_cost: float = 100.0  #: reward weight per m of smoothed penetration
    distance_eps: float = 0.01  #: m, smoothing of the goal distance
    success_radius: float = 0.1  #: m
    max_penetration: float = 0.01  #: m, deepest allowed penetration for success
    episode_length: int = 200  #: control steps


class PointMass2D(DiffEnv):
    name = "pointmass2d"
    Params = PointMass2DParams
    state_dim = 7
    randomizable = ("mass", "damping")
    action_size = 2

    def validate_params(self):
        super().validate_params()
        obstacles = np.asarray(self.params.obstacles, dtype=float)
        if obstacles.ndim != 2 or obstacles.shape[1] != 3 or np.any(obstacles[:, 2] <= 0):
            raise ValueError(
                "obstacles must be a sequence of (cx, cy, radius) with radius > 0, got "
                f"{self.params.obstacles}"
            )
        if self.params.substeps < 1:
            raise ValueError(f"substeps must be >= 1, got {self.params.substeps}")

    # ----- contact ---------------------------------------------------------------------------------
    def penetrations(self, pos):
        """Penetration depths [m] of the disc into every obstacle and wall (positive inside), with the
        unit normals pushing it out: ``(depth [n_contacts], normal [n_contacts, 2])``."""
        p = self.params
        obstacles = jnp.asarray(p.obstacles, dtype=pos.dtype)
        delta = pos[None, :] - obstacles[:, :2]
        dist = safe_norm(delta)
        obstacle_depth = obstacles[:, 2] + p.body_radius - dist
        obstacle_normal = delta / dist[:, None]
        # walls: +x, -x, +y, -y; the normal points back into the arena
        wall_normal = jnp.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]], dtype=pos.dtype)
        wall_depth = p.body_radius - (p.arena_half_width + matmul(wall_normal, pos))
        return (jnp.concatenate([obstacle_depth, wall_depth]),
                jnp.concatenate([obstacle_normal, wall_normal]))

    def contact_force(self, pos, vel):
        """Total contact force [N] on the disc and its smoothed penetration sum [m]."""
        p = self.params
        depth, normal = self.penetrations(pos)
        normal_speed = matmul(normal, vel)
        magnitude = (p.contact_stiffness * soft_depth(depth, p.contact_width)
                     - p.contact_damping * normal_speed * contact_gate(depth, p.contact_width))
        force = jnp.sum(magnitude[:, None] * normal, axis=0)
        return force, jnp.sum(soft_depth(depth, p.contact_width)), jnp.max(depth)

    # ----- task ------------------------------------------------------------------------------------
    def sample_initial_q(self, key):
        p = self.params
        k_start, k_goal = jax.random.split(key)
        start = jax.random.uniform(k_start, (2,), minval=jnp.asarray(p.start_low),
                                   maxval=jnp.asarray(p.start_high))
        goal = jax.random.uniform(k_goal, (2,), minval=jnp.asarray(p.goal_low),
                                  maxval=jnp.asarray(p.goal_high))
        depth, _ = self.penetrations(start)
        zero = jnp.zeros((2,), start.dtype)
        return jnp.concatenate([start, zero, goal, jnp.maximum(jnp.max(depth), 0.0)[None]])

    def physics_step(self, q, u):
        p = self.params
        u = jnp.clip(u, -1.0, 1.0)
        h = p.dt / p.substeps
        drive = p.force_scale * u

        def substep(_, carry):
            pos, vel, contact, pen_sum, max_depth = carry
            vel = vel + h * (drive + contact - p.damping * vel) / p.mass
            pos = pos + h * vel
            contact, pen, depth = self.contact_force(pos, vel)
            return pos, vel, contact, pen_sum + pen, jnp.maximum(max_depth, depth)

        pos, vel = q[0:2], q[2:4]
        contact, _, _ = self.contact_force(pos, vel)
        init = (pos, vel, contact, jnp.zeros((), q.dtype), q[6])
        pos, vel, _, pen_sum, max_depth = jax.lax.fori_loop(0, p.substeps, substep, init)
        dist = jnp.sqrt(jnp.sum((pos - q[4:6]) ** 2) + p.distance_eps**2) - p.distance_eps
        mean_pen = pen_sum / p.substeps
        reward = -(dist + p.effort_cost * jnp.sum(u**2) + p.penetration_cost * mean_pen)
        return jnp.concatenate([pos, vel, q[4:6], max_depth[None]]), reward

    def observe(self, q):
        return jnp.concatenate([q[0:6], q[4:6] - q[0:2]])

    def success(self, q):
        p = self.params
        near = jnp.sqrt(jnp.sum((q[0:2] - q[4:6]) ** 2)) < p.success_radius
        return (near & (q[6] <= p.max_penetration)).astype(q.dtype)

    def draw(self, ax, q):
        import matplotlib.patches as patches

        from apg_jax.envs.render import draw_square_arena

        p = self.params
        draw_square_arena(ax, p.arena_half_width)
        for cx, cy, r in p.obstacles:
            ax.add_patch(patches.Circle((cx, cy), r, color="0.5"))
        ax.add_patch(patches.Circle((q[4], q[5]), p.success_radius, color="tab:green", alpha=0.4))
        ax.add_patch(patches.Circle((q[0], q[1]), p.body_radius, color="tab:blue"))
        ax.set_xlabel("x [m]")
        ax.set_ylabel("y [m]")
