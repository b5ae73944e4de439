"""Warp twin of ``apg_jax.envs.pointmass2d``."""
import torch
import warp as wp

from warp_bridge.tasks.common import WarpTask, contact_gate, soft_depth

class PointMass2DWarp(WarpTask):
    """Substep state ``s = (x, y, vx, vy, fx, fy, penetration sum, max depth)``: the contact force is
    evaluated after each position update and used by the next substep, as in the JAX task."""

    state_dim, action_size = 7, 2

    def __init__(self, env):
        super().__init__(env)
        from apg_jax.envs.smooth import NORM_EPS

        params = env.params
        norm_eps2 = float(NORM_EPS) ** 2
        obstacles = tuple(tuple(float(v) for v in o) for o in params.obstacles)
        n_obs = len(obstacles)
        obs = wp.constant(wp.types.matrix(shape=(n_obs, 3), dtype=float)(*[v for o in obstacles for v in o]))
        radius, half = float(params.body_radius), float(params.arena_half_width)
        k, c, w = float(params.contact_stiffness), float(params.contact_damping), float(params.contact_width)
        h = float(params.dt) / int(params.substeps)
        substeps, force, mass, damping = int(params.substeps), float(params.force_scale), float(params.mass), float(params.damping)
        eps, effort, pen_cost = float(params.distance_eps), float(params.effort_cost), float(params.penetration_cost)

        @wp.func
        def contact(pos: wp.vec2, vel: wp.vec2):
            """(fx, fy, smoothed penetration sum, deepest penetration) of all obstacles and walls."""
            f = wp.vec2(0.0, 0.0)
            pen = float(0.0)
            deepest = float(-1.0e30)
            for j in range(wp.static(n_obs + 4)):
                if wp.static(j < n_obs):
                    delta = pos - wp.vec2(obs[j, 0], obs[j, 1])
                    dist = wp.sqrt(wp.dot(delta, delta) + norm_eps2)
                    depth = obs[j, 2] + radius - dist
                    normal = delta / dist
                else:
                    normal = wp.vec2(0.0, 0.0)
                    if wp.static(j == n_obs):
                        normal = wp.vec2(-1.0, 0.0)
                    if wp.static(j == n_obs + 1):
                        normal = wp.vec2(1.0, 0.0)
                    if wp.static(j == n_obs + 2):
                        normal = wp.vec2(0.0, -1.0)
                    if wp.static(j == n_obs + 3):
                        normal = wp.vec2(0.0, 1.0)
                    depth = radius - (half + wp.dot(normal, pos))
                magnitude = k * soft_depth(depth, w) - c * wp.dot(normal, vel) * contact_gate(depth, w)
                f = f + magnitude * normal
                pen = pen + soft_depth(depth, w)
                deepest = wp.max(deepest, depth)
            return wp.vec4(f[0], f[1], pen, deepest)

        @wp.kernel(module="unique")  # own module: other tasks or constants do not force a rebuild
        def begin(q: wp.array2d(dtype=float), s: wp.array2d(dtype=float)):
            i = wp.tid()
            pos = wp.vec2(q[i, 0], q[i, 1])
            vel = wp.vec2(q[i, 2], q[i, 3])
            out = contact(pos, vel)
            for j in range(4):
                s[i, j] = q[i, j]
            s[i, 4] = out[0]
            s[i, 5] = out[1]
            s[i, 6] = 0.0
            s[i, 7] = q[i, 6]

        @wp.kernel(module="unique")  # own module: other tasks or constants do not force a rebuild
        def substep(s: wp.array2d(dtype=float), u: wp.array2d(dtype=float), s_next: wp.array2d(dtype=float)):
            i = wp.tid()
            drive = force * wp.vec2(wp.clamp(u[i, 0], -1.0, 1.0), wp.clamp(u[i, 1], -1.0, 1.0))
            vel = wp.vec2(s[i, 2], s[i, 3])
            vel = vel + h * (drive + wp.vec2(s[i, 4], s[i, 5]) - damping * vel) / mass
            pos = wp.vec2(s[i, 0], s[i, 1]) + h * vel
            out = contact(pos, vel)
            s_next[i, 0] = pos[0]
            s_next[i, 1] = pos[1]
            s_next[i, 2] = vel[0]
            s_next[i, 3] = vel[1]
            s_next[i, 4] = out[0]
            s_next[i, 5] = out[1]
            s_next[i, 6] = s[i, 6] + out[2]
            s_next[i, 7] = wp.max(s[i, 7], out[3])

        @wp.kernel(module="unique")  # own module: other tasks or constants do not force a rebuild
        def finish(s: wp.array2d(dtype=float), q: wp.array2d(dtype=float), u: wp.array2d(dtype=float),
                   q_next: wp.array2d(dtype=float), reward: wp.array(dtype=float)):
            i = wp.tid()
            for j in range(4):
                q_next[i, j] = s[i, j]
            q_next[i, 4] = q[i, 4]
            q_next[i, 5] = q[i, 5]
            q_next[i, 6] = s[i, 7]
            dx = s[i, 0] - q[i, 4]
            dy = s[i, 1] - q[i, 5]
            dist = wp.sqrt(dx * dx + dy * dy + eps * eps) - eps
            a0 = wp.clamp(u[i, 0], -1.0, 1.0)
            a1 = wp.clamp(u[i, 1], -1.0, 1.0)
            reward[i] = -(dist + effort * (a0 * a0 + a1 * a1) + pen_cost * s[i, 6] / float(substeps))

        self.kernels = (begin, substep, finish)
        self.substeps = substeps

    def observe(self, q: torch.Tensor) -> torch.Tensor:
        """``(x, y, vx, vy, gx, gy, gx - x, gy - y)``."""
        return torch.cat([q[:, 0:6], q[:, 4:6] - q[:, 0:2]], 1)

    def launch(self, q, u):
        begin, substep, finish = self.kernels
        n, dev = q.shape[0], q.device
        grad = q.requires_grad or u.requires_grad
        s = wp.empty((n, 8), dtype=float, device=dev, requires_grad=grad)
        wp.launch(begin, dim=n, inputs=[q], outputs=[s], device=dev)
        for _ in range(self.substeps):
            s_next = wp.empty((n, 8), dtype=float, device=dev, requires_grad=grad)
            wp.launch(substep, dim=n, inputs=[s, u], outputs=[s_next], device=dev)
            s = s_next
        q_next = wp.empty((n, 7), dtype=float, device=dev, requires_grad=grad)
        reward = wp.empty(n, dtype=float, device=dev, requires_grad=grad)
        wp.launch(finish, dim=n, inputs=[s, q, u], outputs=[q_next, reward], device=dev)
        return q_next, reward
