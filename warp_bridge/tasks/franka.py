"""Warp twin of ``apg_jax.envs.franka``."""
from types import SimpleNamespace

import numpy as np
import torch
import warp as wp

from warp_bridge.tasks.common import SubstepWarpTask, soft_depth


mat73 = wp.types.matrix(shape=(7, 3), dtype=float)  #: one 3-vector per link (rows)
mat213 = wp.types.matrix(shape=(21, 3), dtype=float)  #: one 3x3 matrix per link (rows 3l..3l+2)
mat77 = wp.types.matrix(shape=(7, 7), dtype=float)
vec7 = wp.types.vector(length=7, dtype=float)


@wp.func
def block3(m: mat213, j: int):
    """The 3x3 matrix of link ``j`` in a ``mat213``."""
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
def cholesky_solve(matrix: mat77, rhs: vec7):
    """``cholesky_solve``: ``matrix x = rhs`` for a symmetric positive-definite ``matrix``."""
    chol = mat77()
    for j in range(wp.static(7)):
        d = matrix[j, j]
        for k in range(wp.static(j)):
            d = d - chol[j, k] * chol[j, k]
        chol[j, j] = wp.sqrt(d)
        for r in range(wp.static(j + 1), 7):
            v = matrix[r, j]
            for k in range(wp.static(j)):
                v = v - chol[r, k] * chol[j, k]
            chol[r, j] = v / chol[j, j]
    y = vec7()
    for r in range(wp.static(7)):
        v = rhs[r]
        for k in range(wp.static(r)):
            v = v - chol[r, k] * y[k]
        y[r] = v / chol[r, r]
    x = vec7()
    for rr in range(wp.static(7)):
        r = 6 - rr
        v = y[r]
        for k in range(wp.static(7 - rr), 7):
            v = v - chol[k, r] * x[k]
        x[r] = v / chol[r, r]
    return x


class FrankaWarp(SubstepWarpTask):
    """One kernel launch per substep; the kernel is composed of ``wp.func``s that mirror the functions of
    ``apg_jax.envs.franka`` one to one (``funcs`` holds them; ``tests/test_warp_franka.py`` checks each
    against its JAX twin). Per-link quantities live in local matrices, each component written exactly
    once: Warp's adjoint of an overwritten local-matrix component would count the earlier write too."""

    state_dim, action_size = 17, 7
    jax_only = {"link_mass_scale": 1.0}  # the kernels have the model's masses

    def __init__(self, env):
        super().__init__(env)
        from apg_jax.envs import franka as F

        p = env.params
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
        def link_frames(joint_pos: vec7):
            """``link_frames``: world rotations (``mat213``) and origins (``mat73``) of links 1-7, flange."""
            rots = mat213()
            origins = mat73()
            rot = wp.identity(n=3, dtype=float)
            pos = wp.vec3(0.0, 0.0, 0.0)
            for j in range(wp.static(7)):
                pos = pos + rot * row(fixed_pos, j)
                rot = rot * block3(fixed_rot, j) * rot_z(joint_pos[j])
                for r in range(3):
                    origins[j, r] = pos[r]
                    for c in range(3):
                        rots[3 * j + r, c] = rot[r, c]
            return rots, origins, pos + rot * flange_offset

        @wp.func
        def forward_kinematics(joint_pos: vec7):
            """``forward_kinematics``: flange position (m)."""
            rots, origins, flange = link_frames(joint_pos)
            return flange

        @wp.func
        def link_inertials(joint_pos: vec7):
            """``_link_inertials``: joint axes, origins, centres of mass (``mat73``) and world inertias
            (``mat213``) of the links."""
            rots, origins, flange = link_frames(joint_pos)
            axes = mat73()
            coms = mat73()
            inertias = mat213()
            for j in range(wp.static(7)):
                rot = block3(rots, j)
                com = row(origins, j) + rot * row(com_local, j)
                inertia = rot * block3(inertia_local, j) * wp.transpose(rot)
                for r in range(3):
                    axes[j, r] = rot[r, 2]
                    coms[j, r] = com[r]
                    for c in range(3):
                        inertias[3 * j + r, c] = inertia[r, c]
            return axes, origins, coms, inertias

        @wp.func
        def jacobian_linear(axes: mat73, origins: mat73, coms: mat73, link: int, joint: int):
            """``_jacobians``' linear part: column ``joint`` at link ``link``'s centre of mass (zero for
            ``joint > link``; the angular column is the joint axis, likewise)."""
            column = wp.vec3(0.0, 0.0, 0.0)
            if joint <= link:
                column = wp.cross(row(axes, joint), row(coms, link) - row(origins, joint))
            return column

        @wp.func
        def mass_matrix(axes: mat73, origins: mat73, coms: mat73, inertias: mat213):
            """``_mass_matrix``: ``sum_l m_l Jv_l^T Jv_l + Jw_l^T I_l Jw_l`` + armature (links ``l >= a``)."""
            mm = mat77()
            for a in range(wp.static(7)):
                za = row(axes, a)
                for b in range(wp.static(a + 1)):
                    zb = row(axes, b)
                    total = float(0.0)
                    for l in range(wp.static(a), 7):
                        ja = jacobian_linear(axes, origins, coms, l, a)
                        jb = jacobian_linear(axes, origins, coms, l, b)
                        total = total + mass[l] * wp.dot(ja, jb) + wp.dot(za, block3(inertias, l) * zb)
                    if wp.static(a == b):
                        mm[a, a] = total + armature[a]
                    else:
                        mm[a, b] = total
                        mm[b, a] = total
            return mm

        @wp.func
        def gravity_torque(axes: mat73, origins: mat73, coms: mat73):
            """``_gravity_torque``: torques (N m) that hold the links against gravity."""
            tau = vec7()
            for a in range(wp.static(7)):
                g = float(0.0)
                for l in range(wp.static(a), 7):
                    g = g + mass[l] * jacobian_linear(axes, origins, coms, l, a)[2]
                tau[a] = gravity * g
            return tau

        @wp.func
        def newton_euler(axes: mat73, origins: mat73, coms: mat73, inertias: mat213, joint_vel: vec7,
                         joint_acc: vec7):
            """``_newton_euler``: joint torques (N m) for the motion, rotor armature excluded."""
            forces = mat73()
            torques = mat73()
            omega = wp.vec3(0.0, 0.0, 0.0)
            alpha = wp.vec3(0.0, 0.0, 0.0)
            acc = wp.vec3(0.0, 0.0, gravity)  # the base accelerates upwards instead of gravity
            prev = wp.vec3(0.0, 0.0, 0.0)
            for j in range(wp.static(7)):
                offset = row(origins, j) - prev
                acc = acc + wp.cross(alpha, offset) + wp.cross(omega, wp.cross(omega, offset))
                spin = row(axes, j) * joint_vel[j]
                alpha = alpha + row(axes, j) * joint_acc[j] + wp.cross(omega, spin)
                omega = omega + spin
                arm = row(coms, j) - row(origins, j)
                acc_com = acc + wp.cross(alpha, arm) + wp.cross(omega, wp.cross(omega, arm))
                inertia = block3(inertias, j)
                f = mass[j] * acc_com
                n = inertia * alpha + wp.cross(omega, inertia * omega)
                for r in range(3):
                    forces[j, r] = f[r]
                    torques[j, r] = n[r]
                prev = row(origins, j)
            tau = vec7()
            force = wp.vec3(0.0, 0.0, 0.0)
            moment = wp.vec3(0.0, 0.0, 0.0)  # wrench of the links beyond, about origin j+1
            for jj in range(wp.static(7)):
                j = 6 - jj
                nxt = row(origins, j)
                if wp.static(jj > 0):
                    nxt = row(origins, j + 1)
                moment = (row(torques, j) + wp.cross(row(coms, j) - row(origins, j), row(forces, j))
                          + wp.cross(nxt - row(origins, j), force) + moment)
                force = row(forces, j) + force
                tau[j] = wp.dot(row(axes, j), moment)
            return tau

        @wp.func
        def joint_target(u: vec7):
            """``Franka.joint_target``: joint position targets (rad) of actions in [-1, 1]."""
            target = vec7()
            for j in range(wp.static(7)):
                low = lower[j] + margin
                target[j] = low + 0.5 * (wp.clamp(u[j], -1.0, 1.0) + 1.0) * (upper[j] - margin - low)
            return target

        @wp.func
        def control_torque(joint_pos: vec7, joint_vel: vec7, target: vec7, gravity_tau: vec7):
            """``Franka.control_torque``: PD + gravity compensation, speed-limited, torque-saturated."""
            tau = vec7()
            for j in range(wp.static(7)):
                v_des = v_max[j] * wp.tanh(kp[j] / kd[j] * (target[j] - joint_pos[j]) / v_max[j])
                tau[j] = t_max[j] * wp.tanh((kd[j] * (v_des - joint_vel[j]) + gravity_tau[j]) / t_max[j])
            return tau

        @wp.func
        def passive_torque(joint_pos: vec7, joint_vel: vec7):
            """``Franka.passive_torque``: joint damping and smooth joint-limit springs (N m)."""
            tau = vec7()
            for j in range(wp.static(7)):
                below = soft_depth(lower[j] - joint_pos[j], w_lim)
                above = soft_depth(joint_pos[j] - upper[j], w_lim)
                tau[j] = -damping * joint_vel[j] + k_lim * (below - above)
            return tau

        @wp.func
        def joint_acceleration(joint_pos: vec7, joint_vel: vec7, target: vec7):
            """``Franka.joint_acceleration`` under the controller tracking ``target``."""
            axes, origins, coms, inertias = link_inertials(joint_pos)
            torque = control_torque(joint_pos, joint_vel, target, gravity_torque(axes, origins, coms))
            bias = newton_euler(axes, origins, coms, inertias, joint_vel, vec7())
            rhs = torque + passive_torque(joint_pos, joint_vel) - bias
            return cholesky_solve(mass_matrix(axes, origins, coms, inertias), rhs)

        @wp.func
        def joints(s: wp.array2d(dtype=float), i: int, first: int):
            v = vec7()
            for j in range(wp.static(7)):
                v[j] = s[i, first + j]
            return v

        @wp.kernel(module="unique")  # own module: other tasks or constants do not force a rebuild
        def substep(s: wp.array2d(dtype=float), u: wp.array2d(dtype=float), s_next: wp.array2d(dtype=float)):
            """``Franka.substep``: semi-implicit Euler."""
            i = wp.tid()
            joint_pos = joints(s, i, 0)
            joint_vel = joints(s, i, 7)
            qdd = joint_acceleration(joint_pos, joint_vel, joint_target(joints(u, i, 0)))
            for j in range(wp.static(7)):
                vel = joint_vel[j] + h * qdd[j]
                s_next[i, 7 + j] = vel
                s_next[i, j] = joint_pos[j] + h * vel
            for j in range(14, 17):
                s_next[i, j] = s[i, j]

        @wp.kernel(module="unique")  # own module: other tasks or constants do not force a rebuild
        def reward_kernel(s: wp.array2d(dtype=float), reward: wp.array(dtype=float)):
            """``Franka.reward``."""
            i = wp.tid()
            diff = wp.vec3(s[i, 14], s[i, 15], s[i, 16]) - forward_kinematics(joints(s, i, 0))
            speed2 = float(0.0)
            for j in range(7):
                speed2 = speed2 + s[i, 7 + j] * s[i, 7 + j]
            reward[i] = -(wp.sqrt(wp.dot(diff, diff) + d_eps * d_eps) - d_eps + v_cost * speed2)

        self.substep_kernel, self.reward_kernel, self.substeps = substep, reward_kernel, int(p.substeps)
        self.funcs = SimpleNamespace(
            link_frames=link_frames, forward_kinematics=forward_kinematics, link_inertials=link_inertials,
            mass_matrix=mass_matrix, gravity_torque=gravity_torque, newton_euler=newton_euler,
            joint_target=joint_target, control_torque=control_torque, passive_torque=passive_torque,
            joint_acceleration=joint_acceleration, cholesky_solve=cholesky_solve)

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
