"""Warp twin of ``apg_jax.envs.tblock``."""
import torch
import warp as wp

from warp_bridge.tasks.common import SubstepWarpTask, contact_gate, soft_depth

class TBlockWarp(SubstepWarpTask):
    """One kernel launch per physics substep (50 per control step), then the reward. The contact normal
    is the analytic gradient of the same smooth signed distance the JAX task differentiates with
    ``jax.grad``; Warp's adjoint then differentiates that expression once more, as JAX does."""

    state_dim, action_size = 10, 2

    def __init__(self, env):
        super().__init__(env)
        from apg_jax.envs.tblock import BOXES, NORMAL_EPS, VERTICES

        p = env.params
        boxes = wp.constant(wp.types.matrix(shape=(2, 4), dtype=float)(*[float(v) for v in BOXES.ravel()]))
        verts = wp.constant(wp.types.matrix(shape=(8, 2), dtype=float)(*[float(v) for v in VERTICES.ravel()]))
        com_local = wp.constant(wp.vec2(float(env.com[0]), float(env.com[1])))
        L, pr = float(p.half_width), float(p.pusher_radius)
        kp, kd, kw = float(p.pusher_kp), float(p.pusher_kd), float(p.pusher_wall_stiffness)
        k, c, cw = float(p.contact_stiffness), float(p.contact_damping), float(p.contact_width)
        mu, v_eps = float(p.friction), float(p.friction_speed)
        sw, uw, gap_w = float(p.sdf_width), float(p.union_width), float(p.gap_smoothing)
        normal_eps = float(NORMAL_EPS)
        b_t = float(p.trans_resistance)
        b_r = float(p.trans_resistance * env.inertia / p.block_mass)
        h = float(p.dt) / int(p.substeps)
        reach = L - pr
        w_key, w_reach, w_effort, d_eps = (float(p.keypoint_weight), float(p.reach_weight), float(p.effort_cost),
                                           float(p.distance_eps))

        @wp.func
        def rot(theta: float, v: wp.vec2):
            cs = wp.cos(theta)
            sn = wp.sin(theta)
            return wp.vec2(cs * v[0] - sn * v[1], sn * v[0] + cs * v[1])

        @wp.func
        def box_distance(x: wp.vec2, j: int):
            """(distance, d distance / dx) to box j, smoothed as in the JAX task."""
            dx = x[0] - boxes[j, 0]
            dy = x[1] - boxes[j, 1]
            qx = wp.abs(dx) - boxes[j, 2]
            qy = wp.abs(dy) - boxes[j, 3]
            ox = soft_depth(qx, sw)
            oy = soft_depth(qy, sw)
            root = wp.sqrt(ox * ox + oy * oy + sw * sw)
            gx = ox / root * contact_gate(qx, sw) * wp.sign(dx)
            gy = oy / root * contact_gate(qy, sw) * wp.sign(dy)
            return wp.vec3(root - sw, gx, gy)

        @wp.func
        def local_distance(x: wp.vec2):
            """(smooth distance to the T, its gradient) for ``x`` in the block frame."""
            a = box_distance(x, 0)
            b = box_distance(x, 1)
            za = -a[0] / uw
            zb = -b[0] / uw
            m = wp.max(za, zb)
            ea = wp.exp(za - m)
            eb = wp.exp(zb - m)
            d = -uw * (m + wp.log(ea + eb))
            wa = ea / (ea + eb)
            wb = eb / (ea + eb)
            return wp.vec3(d, wa * a[1] + wb * b[1], wa * a[2] + wb * b[2])

        @wp.func
        def cross2(a: wp.vec2, b: wp.vec2):
            return a[0] * b[1] - a[1] * b[0]

        @wp.func
        def wall_push(x: wp.vec2, margin: float, stiffness: float):
            """Smoothed spring force of the four walls on a disc of radius ``margin`` at ``x``."""
            fx = -stiffness * soft_depth(x[0] - (L - margin), cw) + stiffness * soft_depth(-(L - margin) - x[0], cw)
            fy = -stiffness * soft_depth(x[1] - (L - margin), cw) + stiffness * soft_depth(-(L - margin) - x[1], cw)
            return wp.vec2(fx, fy)

        @wp.kernel(module="unique")  # own module: other tasks or constants do not force a rebuild
        def substep(s: wp.array2d(dtype=float), u: wp.array2d(dtype=float), s_next: wp.array2d(dtype=float)):
            i = wp.tid()
            pos = wp.vec2(s[i, 0], s[i, 1])
            vel = wp.vec2(s[i, 2], s[i, 3])
            origin = wp.vec2(s[i, 4], s[i, 5])
            theta = s[i, 6]
            target = reach * wp.vec2(wp.clamp(u[i, 0], -1.0, 1.0), wp.clamp(u[i, 1], -1.0, 1.0))
            com = origin + rot(theta, com_local)
            sdf = local_distance(rot(-theta, pos - origin))
            g = wp.vec2(sdf[1], sdf[2])
            normal = rot(theta, g / wp.sqrt(wp.dot(g, g) + normal_eps))
            pen = pr - sdf[0]
            spring = k * soft_depth(pen, cw)
            gate = contact_gate(pen, cw)
            point = pos - normal * sdf[0]
            wall_force = wp.vec2(0.0, 0.0)
            wall_torque = float(0.0)
            for j in range(wp.static(8)):
                vert = origin + rot(theta, wp.vec2(verts[j, 0], verts[j, 1]))
                f = wall_push(vert, 0.0, k)
                wall_force = wall_force + f
                wall_torque = wall_torque + cross2(vert - com, f)
            tangent = wp.vec2(-normal[1], normal[0])
            f_n = spring + c * (-wp.dot(vel, normal)) * gate
            f_t = mu * f_n * wp.tanh(wp.dot(vel, tangent) / v_eps)
            on_block = -f_n * normal + f_t * tangent
            torque = cross2(point - com, on_block) + wall_torque
            v_com = (on_block + wall_force) / b_t
            omega = torque / b_r
            arm = rot(theta, com_local)
            v_origin = v_com - omega * wp.vec2(-arm[1], arm[0])
            acc = kp * (target - pos) - kd * vel + wall_push(pos, pr, kw)
            vel = vel + h * acc
            pos = pos + h * vel
            s_next[i, 0] = pos[0]
            s_next[i, 1] = pos[1]
            s_next[i, 2] = vel[0]
            s_next[i, 3] = vel[1]
            s_next[i, 4] = origin[0] + h * v_origin[0]
            s_next[i, 5] = origin[1] + h * v_origin[1]
            s_next[i, 6] = theta + h * omega
            for j in range(7, 10):
                s_next[i, j] = s[i, j]

        @wp.kernel(module="unique")  # own module: other tasks or constants do not force a rebuild
        def reward_kernel(s: wp.array2d(dtype=float), reward: wp.array(dtype=float)):
            i = wp.tid()
            origin = wp.vec2(s[i, 4], s[i, 5])
            goal = wp.vec2(s[i, 7], s[i, 8])
            keypoint = float(0.0)
            for j in range(wp.static(8)):
                v = wp.vec2(verts[j, 0], verts[j, 1])
                diff = origin + rot(s[i, 6], v) - goal - rot(s[i, 9], v)
                keypoint = keypoint + wp.sqrt(wp.dot(diff, diff) + d_eps * d_eps) - d_eps
            pos = wp.vec2(s[i, 0], s[i, 1])
            gap = soft_depth(local_distance(rot(-s[i, 6], pos - origin))[0] - pr, gap_w)
            speed2 = s[i, 2] * s[i, 2] + s[i, 3] * s[i, 3]
            reward[i] = -(w_key * keypoint / 8.0 + w_reach * gap + w_effort * speed2)

        self.substep_kernel, self.reward_kernel, self.substeps = substep, reward_kernel, int(p.substeps)

    def observe(self, q: torch.Tensor) -> torch.Tensor:
        """As ``apg_jax.envs.tblock.TBlock.observe``."""
        err = q[:, 6] - q[:, 9]
        trig = lambda a: torch.stack([torch.cos(a), torch.sin(a)], 1)
        return torch.cat([q[:, 0:4], q[:, 4:6], trig(q[:, 6]), q[:, 4:6] - q[:, 7:9], trig(err),
                          q[:, 0:2] - q[:, 4:6]], 1)
