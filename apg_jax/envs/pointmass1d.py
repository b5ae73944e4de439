"""Task ``pointmass1d``: a 1-D point mass reaches a target (a linear-quadratic problem).

Physics state ``q = (x, v, x_goal)`` [m, m/s, m]; action ``u`` in [-1, 1].

Constants (fixed so that the optimal return can be computed exactly, see ``tests/test_learning.py``):
- force ``F = 5 u`` N on a mass of 1 kg, no friction;
- control step ``dt = 0.05`` s, semi-implicit Euler: ``v' = v + dt F / m``, ``x' = x + dt v'``;
- reward ``r = -((x' - x_goal)^2 + 0.01 u^2)``; horizon 100 steps (5 s);
- reset: ``x ~ U(-1, 1)``, ``x_goal ~ U(-1, 1)``, ``v = 0``;
- observation ``(x, v, x_goal)``, unscaled;
- success at a step: ``|x' - x_goal| < 0.05`` m and ``|v'| < 0.1`` m/s; an episode succeeds if its
  last step does.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from apg_jax.envs.base import DiffEnv


@dataclasses.dataclass(frozen=True)
class PointMass1DParams:
    force_scale: float = 5.0  #: N per unit action
    mass: float = 1.0  #: kg
    dt: float = 0.05  #: s per control step
    effort_cost: float = 0.01  #: reward weight of u^2
    init_range: float = 1.0  #: m, x and x_goal ~ U(-init_range, init_range)
    success_pos_tol: float = 0.05  #: m
    success_vel_tol: float = 0.1  #: m/s
    episode_length: int = 100  #: control steps


class PointMass1D(DiffEnv):
    name = "pointmass1d"
    Params = PointMass1DParams
    state_dim = 3
    randomizable = ("mass", "force_scale")
    action_size = 1

    def sample_initial_q(self, key):
        p = self.params
        x, goal = jax.random.uniform(key, (2,), minval=-p.init_range, maxval=p.init_range)
        return jnp.stack([x, jnp.zeros_like(x), goal])

    def physics_step(self, q, u):
        p = self.params
        u = jnp.clip(u, -1.0, 1.0)
        x, v, goal = q[0], q[1], q[2]
        v_next = v + p.dt * p.force_scale * u[0] / p.mass
        x_next = x + p.dt * v_next
        reward = -((x_next - goal) ** 2 + p.effort_cost * u[0] ** 2)
        return jnp.stack([x_next, v_next, goal]), reward

    def observe(self, q):
        return q

    def success(self, q):
        p = self.params
        ok = (jnp.abs(q[0] - q[2]) < p.success_pos_tol) & (jnp.abs(q[1]) < p.success_vel_tol)
        return ok.astype(q.dtype)

    def draw(self, ax, q):
        r = self.params.init_range * 1.2
        ax.set_xlim(-r, r)
        ax.set_ylim(-0.5, 0.5)
        ax.axhline(0.0, color="0.7", lw=1)
        ax.axvline(q[2], color="tab:green", lw=2, label="goal")
        ax.plot([q[0]], [0.0], "o", color="tab:blue", ms=12, label="mass")
        ax.arrow(q[0], 0.15, 0.2 * q[1], 0.0, width=0.02, color="tab:orange", length_includes_head=True)
        ax.set_yticks([])
        ax.set_xlabel("x [m]")
