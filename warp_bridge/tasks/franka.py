"""Warp twin of ``apg_jax.envs.franka``."""
import numpy as np
import torch
import warp as wp

from warp_bridge.tasks.common import SubstepWarpTask, soft_depth

class FrankaWarp(SubstepWarpTask):
    """One kernel launch per substep: kinematics, composite inertia, gravity compensation, Newton-Euler
    bias forces, the controller, an unrolled Cholesky solve and the semi-implicit Euler update, per thread
    (local matrices hold the per-link quantities; Warp differentiates their component assignments)."""

    state_dim, action_size = 17, 7

    def __init__(self, env):
        super().__init__(env)
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

    def observe(self, q: torch.Tensor) -> torch.Tensor:
        """``(joint pos [7], joint vel [7], flange [3], target [3], target - flange [3])``."""
        flange = flange_position(q[:, :7])
        return torch.cat([q[:, :14], flange, q[:, 14:17], q[:, 14:17] - flange], 1)


def flange_position(joint_pos: torch.Tensor) -> torch.Tensor:
    """Flange positions ``[N, 3]`` from the FR3 DH chain, in torch (``apg_jax.envs.franka.forward_kinematics``)."""
    from apg_jax.envs.franka import FIXED

    n = joint_pos.shape[0]
    like = dict(dtype=joint_pos.dtype, device=joint_pos.device)
    rot = torch.eye(3, **like).expand(n, 3, 3)
    pos = torch.zeros(n, 3, **like)
    for i, (fixed_rot, fixed_pos) in enumerate(FIXED):
        pos = pos + rot @ torch.tensor(fixed_pos, **like)
        if i == len(FIXED) - 1:
            break
        c, s = torch.cos(joint_pos[:, i]), torch.sin(joint_pos[:, i])
        zero, one = torch.zeros_like(c), torch.ones_like(c)
        rz = torch.stack([torch.stack([c, -s, zero], -1), torch.stack([s, c, zero], -1),
                          torch.stack([zero, zero, one], -1)], -2)
        rot = rot @ torch.tensor(fixed_rot, **like) @ rz
    return pos
