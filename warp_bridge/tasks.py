"""Warp kernels of the tasks' ``physics_step``, one thread per environment, float32.

Constants are not repeated here: each factory reads them from the JAX task's ``Params`` and bakes them
into its kernels as compile-time constants, so both implementations use the same numbers (the parity
tests in ``tests/test_warp_bridge.py`` check that they also compute the same thing). Every kernel writes
fresh output arrays (no in-place updates), as ``wp.Tape`` replay requires.
"""

import numpy as np
import warp as wp

wp.config.quiet = True
wp.init()


@wp.func
def soft_depth(depth: float, width: float):
    """``width * softplus(depth / width)``, evaluated without overflow."""
    z = depth / width
    return width * (wp.max(z, 0.0) + wp.log(1.0 + wp.exp(-wp.abs(z))))


@wp.func
def contact_gate(depth: float, width: float):
    """``sigmoid(depth / width)``; the branch keeps ``exp`` (and its adjoint) finite."""
    z = depth / width
    if z >= 0.0:
        return 1.0 / (1.0 + wp.exp(-z))
    e = wp.exp(z)
    return e / (1.0 + e)


class WarpTask:
    """A task's step as Warp launches: ``launch(q, u) -> (q_next, reward)`` on Warp arrays ``[N, ...]``."""

    state_dim: int
    action_size: int

    def launch(self, q, u):
        raise NotImplementedError


class PointMass1DWarp(WarpTask):
    state_dim, action_size = 3, 1

    def __init__(self, env):
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

    def launch(self, q, u):
        n = q.shape[0]
        q_next = wp.empty((n, 3), dtype=float, device=q.device, requires_grad=q.requires_grad or u.requires_grad)
        reward = wp.empty(n, dtype=float, device=q.device, requires_grad=q_next.requires_grad)
        wp.launch(self.kernel, dim=n, inputs=[q, u], outputs=[q_next, reward], device=q.device)
        return q_next, reward


class PointMass2DWarp(WarpTask):
    """Substep state ``s = (x, y, vx, vy, fx, fy, penetration sum, max depth)``: the contact force is
    evaluated after each position update and used by the next substep, as in the JAX task."""

    state_dim, action_size = 7, 2

    def __init__(self, env):
        params = env.params
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
                    dist = wp.sqrt(wp.dot(delta, delta) + 1.0e-18)
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


class SubstepWarpTask(WarpTask):
    """A task stepped by one ``substep_kernel(s, u) -> s_next`` launch per physics substep on the full
    state, then ``reward_kernel(s) -> reward``."""

    substeps: int
    substep_kernel: wp.Kernel
    reward_kernel: wp.Kernel

    def launch(self, q, u):
        n, dev = q.shape[0], q.device
        grad = q.requires_grad or u.requires_grad
        s = q
        for _ in range(self.substeps):
            s_next = wp.empty((n, self.state_dim), dtype=float, device=dev, requires_grad=grad)
            wp.launch(self.substep_kernel, dim=n, inputs=[s, u], outputs=[s_next], device=dev)
            s = s_next
        reward = wp.empty(n, dtype=float, device=dev, requires_grad=grad)
        wp.launch(self.reward_kernel, dim=n, inputs=[s], outputs=[reward], device=dev)
        return s, reward


class TBlockWarp(SubstepWarpTask):
    """One kernel launch per physics substep (50 per control step), then the reward. The contact normal
    is the analytic gradient of the same smooth signed distance the JAX task differentiates with
    ``jax.grad``; Warp's adjoint then differentiates that expression once more, as JAX does."""

    state_dim, action_size = 10, 2

    def __init__(self, env):
        from apg_jax.envs.tblock import BOXES, VERTICES

        p = env.params
        boxes = wp.constant(wp.types.matrix(shape=(2, 4), dtype=float)(*[float(v) for v in BOXES.ravel()]))
        verts = wp.constant(wp.types.matrix(shape=(8, 2), dtype=float)(*[float(v) for v in VERTICES.ravel()]))
        com_local = wp.constant(wp.vec2(float(env.com[0]), float(env.com[1])))
        L, pr = float(p.half_width), float(p.pusher_radius)
        kp, kd, kw = float(p.pusher_kp), float(p.pusher_kd), float(p.pusher_wall_stiffness)
        k, c, cw = float(p.contact_stiffness), float(p.contact_damping), float(p.contact_width)
        mu, v_eps = float(p.friction), float(p.friction_speed)
        sw, uw = float(p.sdf_width), float(p.union_width)
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
            normal = rot(theta, g / wp.sqrt(wp.dot(g, g) + 1.0e-12))
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
            gap = soft_depth(local_distance(rot(-s[i, 6], pos - origin))[0] - pr, 0.005)
            speed2 = s[i, 2] * s[i, 2] + s[i, 3] * s[i, 3]
            reward[i] = -(w_key * keypoint / 8.0 + w_reach * gap + w_effort * speed2)

        self.substep_kernel, self.reward_kernel, self.substeps = substep, reward_kernel, int(p.substeps)


class FrankaWarp(SubstepWarpTask):
    """One kernel launch per substep: kinematics, composite inertia, gravity compensation, Newton-Euler
    bias forces, the controller, an unrolled Cholesky solve and the semi-implicit Euler update, per thread
    (local matrices hold the per-link quantities; Warp differentiates their component assignments)."""

    state_dim, action_size = 17, 7

    def __init__(self, env):
        from apg_jax.envs import franka as F

        p = env.params
        mat73 = wp.types.matrix(shape=(7, 3), dtype=float)
        mat213 = wp.types.matrix(shape=(21, 3), dtype=float)
        mat77 = wp.types.matrix(shape=(7, 7), dtype=float)
        vec7 = wp.types.vector(length=7, dtype=float)
        flat = lambda a: [float(v) for v in np.asarray(a).ravel()]
        fixed_rot = wp.constant(mat213(*flat([r for r, _ in F.FIXED[:7]])))
        fixed_pos = wp.constant(mat73(*flat([t for _, t in F.FIXED[:7]])))
        flange_offset = wp.constant(wp.vec3(*flat(F.FIXED[7][1])))
        com_local = wp.constant(mat73(*flat(F.LINK_COM)))
        inertia_local = wp.constant(mat213(*flat(F.LINK_INERTIA)))
        mass = wp.constant(vec7(*flat(F.LINK_MASS)))
        armature = wp.constant(vec7(*flat(F.ARMATURE)))
        lower = wp.constant(vec7(*flat(F.JOINT_LOWER)))
        upper = wp.constant(vec7(*flat(F.JOINT_UPPER)))
        v_max = wp.constant(vec7(*flat(F.VELOCITY_LIMIT)))
        t_max = wp.constant(vec7(*flat(F.TORQUE_LIMIT)))
        kp = wp.constant(vec7(*flat(p.kp)))
        kd = wp.constant(vec7(*flat(p.kd)))
        margin, gravity, damping = float(p.target_margin), float(p.gravity), float(p.joint_damping)
        k_lim, w_lim = float(p.limit_stiffness), float(p.limit_width)
        h = float(p.dt) / int(p.substeps)
        v_cost, d_eps = float(p.velocity_cost), float(p.distance_eps)

        @wp.func
        def block3(m: mat213, j: int):
            return wp.mat33(m[3 * j, 0], m[3 * j, 1], m[3 * j, 2], m[3 * j + 1, 0], m[3 * j + 1, 1], m[3 * j + 1, 2],
                            m[3 * j + 2, 0], m[3 * j + 2, 1], m[3 * j + 2, 2])

        @wp.func
        def row(m: mat73, j: int):
            return wp.vec3(m[j, 0], m[j, 1], m[j, 2])

        @wp.func
        def rot_z(angle: float):
            c = wp.cos(angle)
            s = wp.sin(angle)
            return wp.mat33(c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)

        @wp.func
        def flange(s: wp.array2d(dtype=float), i: int):
            rot = wp.identity(n=3, dtype=float)
            pos = wp.vec3(0.0, 0.0, 0.0)
            for j in range(wp.static(7)):
                pos = pos + rot * row(fixed_pos, j)
                rot = rot * block3(fixed_rot, j) * rot_z(s[i, j])
            return pos + rot * flange_offset

        @wp.kernel(module="unique")  # own module: other tasks or constants do not force a rebuild
        def substep(s: wp.array2d(dtype=float), u: wp.array2d(dtype=float), s_next: wp.array2d(dtype=float)):
            i = wp.tid()
            axes = mat73()
            origins = mat73()
            coms = mat73()
            rots = mat213()
            rot = wp.identity(n=3, dtype=float)
            pos = wp.vec3(0.0, 0.0, 0.0)
            for j in range(wp.static(7)):  # kinematics
                pos = pos + rot * row(fixed_pos, j)
                rot = rot * block3(fixed_rot, j) * rot_z(s[i, j])
                com = pos + rot * row(com_local, j)
                for r in range(3):
                    axes[j, r] = rot[r, 2]
                    origins[j, r] = pos[r]
                    coms[j, r] = com[r]
                    for c in range(3):
                        rots[3 * j + r, c] = rot[r, c]
            mm = mat77()
            gcomp = vec7()
            for a in range(wp.static(7)):  # composite inertia and gravity torque from link Jacobians
                za = row(axes, a)
                for b in range(wp.static(a + 1)):
                    zb = row(axes, b)
                    total = float(0.0)
                    for l in range(wp.static(a), 7):
                        R = block3(rots, l)
                        inertia = R * block3(inertia_local, l) * wp.transpose(R)
                        cl = row(coms, l)
                        ja = wp.cross(za, cl - row(origins, a))
                        jb = wp.cross(zb, cl - row(origins, b))
                        total = total + mass[l] * wp.dot(ja, jb) + wp.dot(za, inertia * zb)
                    # every component is written exactly once: Warp's adjoint of an overwritten
                    # local-matrix component would count the earlier write's gradient too
                    if wp.static(a == b):
                        mm[a, a] = total + armature[a]
                    else:
                        mm[a, b] = total
                        mm[b, a] = total
                g = float(0.0)
                for l in range(wp.static(a), 7):
                    g = g + mass[l] * wp.cross(za, row(coms, l) - row(origins, a))[2]
                gcomp[a] = gravity * g
            # Newton-Euler bias forces at zero joint acceleration
            forces = mat73()
            torques = mat73()
            omega = wp.vec3(0.0, 0.0, 0.0)
            alpha = wp.vec3(0.0, 0.0, 0.0)
            acc = wp.vec3(0.0, 0.0, gravity)
            prev = wp.vec3(0.0, 0.0, 0.0)
            for j in range(wp.static(7)):
                offset = row(origins, j) - prev
                acc = acc + wp.cross(alpha, offset) + wp.cross(omega, wp.cross(omega, offset))
                spin = row(axes, j) * s[i, 7 + j]
                alpha = alpha + wp.cross(omega, spin)
                omega = omega + spin
                arm = row(coms, j) - row(origins, j)
                acc_com = acc + wp.cross(alpha, arm) + wp.cross(omega, wp.cross(omega, arm))
                R = block3(rots, j)
                inertia = R * block3(inertia_local, j) * wp.transpose(R)
                f = mass[j] * acc_com
                n = inertia * alpha + wp.cross(omega, inertia * omega)
                for r in range(3):
                    forces[j, r] = f[r]
                    torques[j, r] = n[r]
                prev = row(origins, j)
            bias = vec7()
            force = wp.vec3(0.0, 0.0, 0.0)
            moment = wp.vec3(0.0, 0.0, 0.0)
            for jj in range(wp.static(7)):
                j = 6 - jj
                nxt = row(origins, j)
                if wp.static(jj > 0):
                    nxt = row(origins, j + 1)
                moment = (row(torques, j) + wp.cross(row(coms, j) - row(origins, j), row(forces, j))
                          + wp.cross(nxt - row(origins, j), force) + moment)
                force = row(forces, j) + force
                bias[j] = wp.dot(row(axes, j), moment)
            rhs = vec7()
            for j in range(wp.static(7)):  # controller, passive torques
                qj = s[i, j]
                vj = s[i, 7 + j]
                target = lower[j] + margin + 0.5 * (wp.clamp(u[i, j], -1.0, 1.0) + 1.0) * (upper[j] - lower[j] - 2.0 * margin)
                v_des = v_max[j] * wp.tanh(kp[j] / kd[j] * (target - qj) / v_max[j])
                tau = t_max[j] * wp.tanh((kd[j] * (v_des - vj) + gcomp[j]) / t_max[j])
                passive = -damping * vj + k_lim * (soft_depth(lower[j] - qj, w_lim) - soft_depth(qj - upper[j], w_lim))
                rhs[j] = tau + passive - bias[j]
            chol = mat77()
            for j in range(wp.static(7)):  # Cholesky factor
                d = mm[j, j]
                for k in range(wp.static(j)):
                    d = d - chol[j, k] * chol[j, k]
                chol[j, j] = wp.sqrt(d)
                for r in range(wp.static(j + 1), 7):
                    v = mm[r, j]
                    for k in range(wp.static(j)):
                        v = v - chol[r, k] * chol[j, k]
                    chol[r, j] = v / chol[j, j]
            y = vec7()
            for r in range(wp.static(7)):
                v = rhs[r]
                for k in range(wp.static(r)):
                    v = v - chol[r, k] * y[k]
                y[r] = v / chol[r, r]
            qdd = vec7()
            for rr in range(wp.static(7)):
                r = 6 - rr
                v = y[r]
                for k in range(wp.static(7 - rr), 7):
                    v = v - chol[k, r] * qdd[k]
                qdd[r] = v / chol[r, r]
            for j in range(wp.static(7)):
                vel = s[i, 7 + j] + h * qdd[j]
                s_next[i, 7 + j] = vel
                s_next[i, j] = s[i, j] + h * vel
            for j in range(14, 17):
                s_next[i, j] = s[i, j]

        @wp.kernel(module="unique")  # own module: other tasks or constants do not force a rebuild
        def reward_kernel(s: wp.array2d(dtype=float), reward: wp.array(dtype=float)):
            i = wp.tid()
            diff = wp.vec3(s[i, 14], s[i, 15], s[i, 16]) - flange(s, i)
            speed2 = float(0.0)
            for j in range(7):
                speed2 = speed2 + s[i, 7 + j] * s[i, 7 + j]
            reward[i] = -(wp.sqrt(wp.dot(diff, diff) + d_eps * d_eps) - d_eps + v_cost * speed2)

        self.substep_kernel, self.reward_kernel, self.substeps = substep, reward_kernel, int(p.substeps)


FACTORIES = {"pointmass1d": PointMass1DWarp, "pointmass2d": PointMass2DWarp, "tblock": TBlockWarp,
             "franka": FrankaWarp}
