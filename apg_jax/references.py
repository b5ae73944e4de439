"""Reference solutions of the tasks, fixed independently of any learner: the thresholds of the evidence
protocol (``experiments.protocol``) come from them.

- ``pointmass1d``: the exact optimal return from a given initial state. The task is a linear system with
  a convex quadratic cost and box-bounded controls, so the optimal open-loop action sequence (also the
  optimal closed-loop return of a deterministic system) solves a convex QP; it is solved with
  accelerated projected gradient (FISTA) in float64.
- ``pointmass2d``: a scripted waypoint controller that passes the obstacles through the gap between the
  middle disc and the upper or lower one (whichever path is shorter), with a saturated PD law.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def pointmass1d_optimal_returns(params, q0: np.ndarray, iterations: int = 20000) -> np.ndarray:
    """Optimal undiscounted returns ``[N]`` from initial states ``q0 [N, 3]`` of ``pointmass1d``."""
    with jax.enable_x64(True):
        dt, force, mass, horizon = params.dt, params.force_scale, params.mass, params.episode_length
        b = dt * force / mass
        # x_{t+1} = x0 + (t+1) dt v0 + dt * sum_{s<=t} v-increments: x_{t+1} = x0 + (t+1) dt v0 + M u
        t = np.arange(horizon)
        M = dt * b * np.maximum(t[:, None] - t[None, :] + 1, 0) * (t[:, None] >= t[None, :])
        M = jnp.asarray(M)
        lipschitz = 2 * float(np.linalg.norm(np.asarray(M), 2) ** 2) + 2 * params.effort_cost

        def cost(u, x0, v0, goal):
            x = x0 + (t + 1) * dt * v0 + M @ u
            return jnp.sum((x - goal) ** 2) + params.effort_cost * jnp.sum(u**2)

        def solve(q):
            grad = jax.grad(cost)

            def body(_, carry):
                u, y, s = carry
                u_next = jnp.clip(y - grad(y, *q) / lipschitz, -1.0, 1.0)
                s_next = (1 + jnp.sqrt(1 + 4 * s**2)) / 2
                return u_next, u_next + (s - 1) / s_next * (u_next - u), s_next

            zero = jnp.zeros(horizon)
            u, _, _ = jax.lax.fori_loop(0, iterations, body, (zero, zero, jnp.ones(())))
            return -cost(u, *q)

        return np.asarray(jax.jit(jax.vmap(solve))(jnp.asarray(q0, jnp.float64)))


def _gap_waypoints(obstacles: np.ndarray, body_radius: float, lead: float) -> np.ndarray:
    """``[G, 2, 2]``: for each gap between the middle obstacle and another, a point ``lead`` m before and
    one ``lead`` m after its centre, along the crossing direction (+x); the middle obstacle is the one
    nearest to y = 0."""
    middle = int(np.argmin(np.abs(obstacles[:, 1])))
    points = []
    for i, (cx, cy, r) in enumerate(obstacles):
        if i == middle:
            continue
        mx, my, mr = obstacles[middle]
        axis = np.array([mx - cx, my - cy]) / np.hypot(mx - cx, my - cy)
        gap = np.hypot(mx - cx, my - cy) - r - mr
        if gap <= 2 * body_radius:
            continue
        centre = np.array([cx, cy]) + axis * (r + gap / 2)
        across = np.array([abs(axis[1]), -np.sign(axis[1]) * axis[0]])  # perpendicular, pointing to +x
        across = across if across[0] > 0 else -across
        points.append([centre - lead * across, centre + lead * across])
    return np.array(points)


def pointmass2d_waypoint_policy(env, gain: float = 8.0, damping: float = 4.0, lead: float = 0.25,
                                reach: float = 0.05):
    """A scripted controller of ``pointmass2d``: ``policy(q [7]) -> u [2]``, memoryless. Route: start ->
    gap entry -> gap exit -> goal, through the gap with the shortest such path; the current waypoint is
    the first not yet passed (passed: within ``reach`` m of it, or beyond it in x); PD law
    ``u = clip(gain (w - p) - damping v, -1, 1)``. On 4,096 reset-distribution starts it succeeds in
    every episode with no penetration over 1 cm (``tests/test_references.py``)."""
    p = env.params
    gaps = jnp.asarray(_gap_waypoints(np.asarray(p.obstacles, float), p.body_radius, lead))

    def policy(q):
        pos, vel, goal = q[0:2], q[2:4], q[4:6]
        length = (jnp.linalg.norm(gaps[:, 0] - pos, axis=-1) + jnp.linalg.norm(gaps[:, 1] - gaps[:, 0], axis=-1)
                  + jnp.linalg.norm(goal - gaps[:, 1], axis=-1))
        entry, exit_ = gaps[jnp.argmin(length)]
        passed_entry = (pos[0] >= entry[0] - reach) | (jnp.linalg.norm(pos - entry) < reach)
        passed_exit = (pos[0] >= exit_[0] - reach) | (jnp.linalg.norm(pos - exit_) < reach)
        target = jnp.where(passed_exit, goal, jnp.where(passed_entry, exit_, entry))
        return jnp.clip(gain * (target - pos) - damping * vel, -1.0, 1.0)

    return policy


def pointmass2d_scripted_rollout(env, q0):
    """One full episode of ``pointmass2d_waypoint_policy`` from ``q0 [N, 7]``: ``(q [T, N, 7] after each
    step, rewards [T, N], episode success [N])``."""
    from apg_jax.evaluation import episode_success

    policy = pointmass2d_waypoint_policy(env)

    def body(q, _):
        q_next, reward = jax.vmap(env.physics_step)(q, jax.vmap(policy)(q))
        return q_next, (q_next, reward, jax.vmap(env.success)(q_next))

    _, (qs, rewards, success) = jax.lax.scan(body, q0, None, length=env.episode_length)
    return qs, rewards, episode_success(env, success)
