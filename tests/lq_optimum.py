"""Exact optimal return of ``pointmass1d`` from given initial states, computed from the task's constants.

The task is a linear system with a convex quadratic cost and box-bounded controls, so the optimal
open-loop action sequence (which is also the optimal closed-loop return for a deterministic system) is
the solution of a convex QP; it is solved here with accelerated projected gradient (FISTA) in float64."""
import jax
import jax.numpy as jnp
import numpy as np


def optimal_returns(params, q0: np.ndarray, iterations: int = 20000) -> np.ndarray:
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
