"""Warp twin of ``apg_jax.envs.pointmass1d``."""
import torch
import warp as wp

from warp_bridge.tasks.common import WarpTask

class PointMass1DWarp(WarpTask):
    state_dim, action_size = 3, 1

    def __init__(self, env):
        super().__init__(env)
        params = env.params
        dt, force, mass, effort = float(params.dt), float(params.force_scale), float(params.mass), float(params.effort_cost)

        @wp.kernel(module="unique")  # own module: other tasks or constants do not force a rebuild
        def step(q: wp.array2d(dtype=float), u: wp.array2d(dtype=float), q_next: wp.array2d(dtype=float),
                 reward: wp.array(dtype=float)):
            i = wp.tid()
            a = wp.clamp(u[i, 0], -1.0, 1.0)
            v = q[i, 1] + dt * force * a / mass
            x = q[i, 0] + dt * v
            q_next[i, 0] = x
            q_next[i, 1] = v
            q_next[i, 2] = q[i, 2]
            d = x - q[i, 2]
            reward[i] = -(d * d + effort * a * a)

        self.kernel = step

    def observe(self, q: torch.Tensor) -> torch.Tensor:
        """``(x, v, x_goal)``: the physics state itself."""
        return q

    def launch(self, q, u):
        n = q.shape[0]
        q_next = wp.empty((n, 3), dtype=float, device=q.device, requires_grad=q.requires_grad or u.requires_grad)
        reward = wp.empty(n, dtype=float, device=q.device, requires_grad=q_next.requires_grad)
        wp.launch(self.kernel, dim=n, inputs=[q, u], outputs=[q_next, reward], device=q.device)
        return q_next, reward
