"""Warp twin of ``apg_jax.envs.tblock``."""
import torch
import warp as wp

from warp_bridge.tasks.common import SubstepWarpTask, contact_gate, soft_depth

class TBlockWarp(SubstepWarpTask):
    """One kernel launch per physics substep, then the reward. The contact normal
    is the analytic gradient of the same smooth signed distance the JAX task differentiates with
    ``jax.grad``; Warp's adjoint then differentiates that expression once more, as JAX does."""

    state_dim, action_size = 10, 2
    jax_only = {"contact_gradient_reach": 0.0}  # the kernels differentiate the exact contact

    def __init__(self, env):
        super().__init__(env)
        from apg_jax.envs.tblock import BOXES, NORMAL_EPS, VERTICES

        p = env.params
        boxes = wp.constant(wp.types.matrix(shape=(2, 4), dtype=float)(*[float(v) for v in BOXES.ravel()]))
        verts = wp.constant(wp.types.matrix(shape=(8, 2), dtype=float)(*[float(v) for v in VERTICES.ravel()]))
        com_local = wp.constant(wp.vec2(float(env.com[0]), float(env.com[1])))
        L, pr, margin = float(p.half_width), float(p.pusher_radius), float(p.reach_margin)
        kp, kd, kw = float(p.pusher_kp), float(p.pusher_kd), float(p.pusher_wall_stiffness)
        k, c, cw = float(p.contact_stiffness), float(p.contact_damping), float(p.contact_width)
        k_wall = float(p.wall_stiffness)
        mu, v_eps = float(p.friction), float(p.friction_speed)
        sw, uw, gap_w = float(p.sdf_width), float(p.union_width), float(p.gap_smoothing)
        normal_eps = float(NORMAL_EPS)
        b_t = float(p.trans_resistance)
        b_r = float(p.trans_resistance * env.inertia / p.block_mass)
        h = float(p.dt) / int(p.substeps)
        reach = L - pr
        w_key, w_reach, w_effort, d_eps = (float(p.keypoint_weight), float(p.reach_weight), float(p.effort_cost),
                                           float(p.distance_eps))
        w_precision, precision_scale = float(p.precision_weight), float(p.precision_scale)

        @wp.func
        def rot(theta: float, v: wp.vec2):
            cs = wp.cos(theta)
            sn = wp.sin(theta)
            return wp.vec2(cs * v[0] - sn * v[1], sn * v[0] + cs * v[1])

        @wp.func
        def box_distance(x: wp.vec2, j: int):
            """(signed distance, d distance / dx) to box j, smoothed as in the JAX task."""
            dx = x[0] - boxes[j, 0]
            dy = x[1] - boxes[j, 1]
            qx = wp.abs(dx) - boxes[j, 2]
            qy = wp.abs(dy) - boxes[j, 3]
            ox = soft_depth(qx, sw)
            oy = soft_depth(qy, sw)
            root = wp.sqrt(ox * ox + oy * oy + sw * sw)
            # depth inside: soft_depth(-m) with m = sw logsumexp(q / sw), a smooth max(qx, qy)
            top = wp.max(qx, qy)
            ex = wp.exp((qx - top) / sw)
            ey = wp.exp((qy - top) / sw)
            m = top + sw * wp.log(ex + ey)
            depth_gate = contact_gate(-m, sw)
            gx = (ox / root * contact_gate(qx, sw) + depth_gate * ex / (ex + ey)) * wp.sign(dx)
            gy = (oy / root * contact_gate(qy, sw) + depth_gate * ey / (ex + ey)) * wp.sign(dy)
            return wp.vec3(root - sw - soft_depth(-m, sw), gx, gy)

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

        @wp.func
        def solve_symmetric3(a00: float, a11: float, a22: float, a01: float, a02: float, a12: float,
                             b: wp.vec3):
            """As ``apg_jax.envs.tblock.solve_symmetric3``: adjugate over determinant."""
            c00 = a11 * a22 - a12 * a12
            c01 = a02 * a12 - a01 * a22
            c02 = a01 * a12 - a02 * a11
            c11 = a00 * a22 - a02 * a02
            c12 = a01 * a02 - a00 * a12
            c22 = a00 * a11 - a01 * a01
            det = a00 * c00 + a01 * c01 + a02 * c02
            return wp.vec3(c00 * b[0] + c01 * b[1] + c02 * b[2], c01 * b[0] + c11 * b[1] + c12 * b[2],
                           c02 * b[0] + c12 * b[1] + c22 * b[2]) / det

        @wp.func
        def jacobian(arm: wp.vec2, n: wp.vec2):
            """Rate of approach along ``n`` of the block point at ``arm`` per (v_com, omega)."""
            return wp.vec3(n[0], n[1], cross2(arm, n))

        @wp.kernel(module="unique")  # own module: other tasks or constants do not force a rebuild
        def substep(s: wp.array2d(dtype=float), u: wp.array2d(dtype=float), s_next: wp.array2d(dtype=float)):
            i = wp.tid()
            pos = wp.vec2(s[i, 0], s[i, 1])
            vel = wp.vec2(s[i, 2], s[i, 3])
            origin = wp.vec2(s[i, 4], s[i, 5])
            theta = s[i, 6]
            target = reach * wp.vec2(wp.clamp(u[i, 0], -1.0, 1.0), wp.clamp(u[i, 1], -1.0, 1.0))
            # the pusher moves first; the contact sees its new position
            acc = kp * (target - pos) - kd * vel + wall_push(pos, pr, kw)
            vel = vel + h * acc
            pos = pos + h * vel
            com = origin + rot(theta, com_local)
            sdf = local_distance(rot(-theta, pos - origin))
            g = wp.vec2(sdf[1], sdf[2])
            normal = rot(theta, g / wp.sqrt(wp.dot(g, g) + normal_eps))
            pen = pr - sdf[0]
            spring = k * soft_depth(pen, cw)
            gate = contact_gate(pen, cw)
            point = pos - normal * sdf[0]
            jac = jacobian(point - com, normal)
            # the six entries of diag(b_t, b_t, b_r) + h K, summed as in the JAX task's block_twist
            k_c = k * gate
            wall_force = wp.vec2(0.0, 0.0)
            wall_torque = float(0.0)
            sx = float(0.0)
            sy = float(0.0)
            sxry2 = float(0.0)
            syrx2 = float(0.0)
            sxry = float(0.0)
            syrx = float(0.0)
            for j in range(wp.static(8)):
                vert = origin + rot(theta, wp.vec2(verts[j, 0], verts[j, 1]))
                f = wall_push(vert, 0.0, k_wall)
                wall_force = wall_force + f
                arm_v = vert - com
                wall_torque = wall_torque + cross2(arm_v, f)
                gx = k_wall * (contact_gate(vert[0] - L, cw) + contact_gate(-L - vert[0], cw))
                gy = k_wall * (contact_gate(vert[1] - L, cw) + contact_gate(-L - vert[1], cw))
                sx = sx + gx
                sy = sy + gy
                sxry2 = sxry2 + gx * arm_v[1] * arm_v[1]
                syrx2 = syrx2 + gy * arm_v[0] * arm_v[0]
                sxry = sxry + gx * arm_v[1]
                syrx = syrx + gy * arm_v[0]
            a00 = b_t + h * (k_c * jac[0] * jac[0] + sx)
            a11 = b_t + h * (k_c * jac[1] * jac[1] + sy)
            a22 = b_r + h * (k_c * jac[2] * jac[2] + sxry2 + syrx2)
            a01 = h * k_c * jac[0] * jac[1]
            a02 = h * (k_c * jac[0] * jac[2] - sxry)
            a12 = h * (k_c * jac[1] * jac[2] + syrx)
            tangent = wp.vec2(-normal[1], normal[0])
            damping = c * (-wp.dot(vel, normal)) * gate
            yielding = 1.0 + h * k * gate * (1.0 / b_t + cross2(point - com, normal) * cross2(point - com, normal) / b_r)
            f_t = mu * (spring / yielding + damping) * wp.tanh(wp.dot(vel, tangent) / v_eps)
            on_block = -(spring + damping) * normal + f_t * tangent
            torque = cross2(point - com, on_block) + wall_torque
            force = on_block + wall_force
            twist = solve_symmetric3(a00, a11, a22, a01, a02, a12, wp.vec3(force[0], force[1], torque))
            arm = rot(theta, com_local)
            v_origin = wp.vec2(twist[0], twist[1]) - twist[2] * wp.vec2(-arm[1], arm[0])
            s_next[i, 0] = pos[0]
            s_next[i, 1] = pos[1]
            s_next[i, 2] = vel[0]
            s_next[i, 3] = vel[1]
            s_next[i, 4] = origin[0] + h * v_origin[0]
            s_next[i, 5] = origin[1] + h * v_origin[1]
            s_next[i, 6] = theta + h * twist[2]
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
            gap = soft_depth(local_distance(rot(-s[i, 6], pos - origin))[0] - pr - margin, gap_w)
            speed2 = s[i, 2] * s[i, 2] + s[i, 3] * s[i, 3]
            keypoint = keypoint / 8.0
            reward[i] = -(w_key * keypoint + w_precision * wp.log(1.0 + keypoint / precision_scale)
                          + w_reach * gap + w_effort * speed2)

        self.substep_kernel, self.reward_kernel, self.substeps = substep, reward_kernel, int(p.substeps)

    def observe(self, q: torch.Tensor) -> torch.Tensor:
        """As ``apg_jax.envs.tblock.TBlock.observe``."""
        pusher, vel, origin, theta, goal, goal_theta = q[:, 0:2], q[:, 2:4], q[:, 4:6], q[:, 6], q[:, 7:9], q[:, 9]

        def into(angle, v):  # v [N, 2] rotated by -angle [N]
            c, s = torch.cos(angle), torch.sin(angle)
            return torch.stack([c * v[:, 0] + s * v[:, 1], -s * v[:, 0] + c * v[:, 1]], 1)

        trig = lambda a: torch.stack([torch.cos(a), torch.sin(a)], 1)
        return torch.cat([into(theta, pusher - origin), into(theta, vel), into(theta, goal - origin),
                          trig(goal_theta - theta), into(goal_theta, origin - goal), origin, trig(theta), pusher], 1)
