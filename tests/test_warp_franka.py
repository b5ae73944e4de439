"""Each ``wp.func`` of the franka Warp kernel against its twin in ``apg_jax.envs.franka`` (float32 both)."""
import jax
import jax.numpy as jnp
import numpy as np
import warp as wp

import warp_bridge
from apg_jax.envs import franka as F
from gradcheck import relative_error
from warp_bridge.tasks.franka import vec7

N = 64
# name -> (width of the output row, tolerance): about 10x the relative error measured in float32 (the
# rotations and axes came out bit-identical; their bound is float32 rounding of the chain)
OUTPUTS = {"flange": (3, 3e-7), "forward_kinematics": (3, 3e-7), "origins": (21, 3e-7), "rotations": (63, 1e-7),
           "axes": (21, 1e-7), "coms": (21, 3e-7), "inertias": (63, 5e-7), "mass_matrix": (49, 1e-6),
           "gravity_torque": (7, 7e-7), "newton_euler": (7, 8e-7), "joint_target": (7, 8e-7),
           "control_torque": (7, 1.5e-6), "passive_torque": (7, 8e-7), "joint_acceleration": (7, 4e-6),
           "cholesky_solve": (7, 1e-6)}


def evaluate_warp_funcs(task, qpos, qvel, qacc, u):
    """Every func of ``task.funcs`` on ``N`` states; returns ``{name: [N, width]}``."""
    f = task.funcs
    link_frames, link_inertials, mass_matrix = f.link_frames, f.link_inertials, f.mass_matrix
    gravity_torque, newton_euler, joint_target = f.gravity_torque, f.newton_euler, f.joint_target
    control_torque, passive_torque, joint_acceleration = f.control_torque, f.passive_torque, f.joint_acceleration
    cholesky_solve, forward_kinematics = f.cholesky_solve, f.forward_kinematics

    @wp.func
    def load(a: wp.array2d(dtype=float), i: int):
        v = vec7()
        for j in range(7):
            v[j] = a[i, j]
        return v

    @wp.kernel(module="unique")
    def check(qpos: wp.array2d(dtype=float), qvel: wp.array2d(dtype=float), qacc: wp.array2d(dtype=float),
              u: wp.array2d(dtype=float), flange: wp.array2d(dtype=float), fk_out: wp.array2d(dtype=float), origins_out: wp.array2d(dtype=float),
              rotations: wp.array2d(dtype=float), axes_out: wp.array2d(dtype=float), coms_out: wp.array2d(dtype=float),
              inertias_out: wp.array2d(dtype=float), mm_out: wp.array2d(dtype=float), g_out: wp.array2d(dtype=float),
              ne_out: wp.array2d(dtype=float), target_out: wp.array2d(dtype=float), ctrl_out: wp.array2d(dtype=float),
              passive_out: wp.array2d(dtype=float), qdd_out: wp.array2d(dtype=float), solve_out: wp.array2d(dtype=float)):
        i = wp.tid()
        q = load(qpos, i)
        qd = load(qvel, i)
        rots, origins, fl = link_frames(q)
        axes, origins2, coms, inertias = link_inertials(q)
        mm = mass_matrix(axes, origins2, coms, inertias)
        g = gravity_torque(axes, origins2, coms)
        ne = newton_euler(axes, origins2, coms, inertias, qd, load(qacc, i))
        target = joint_target(load(u, i))
        ctrl = control_torque(q, qd, target, g)
        passive = passive_torque(q, qd)
        qdd = joint_acceleration(q, qd, target)
        solve = cholesky_solve(mm, qd)
        fk = forward_kinematics(q)
        for r in range(3):
            flange[i, r] = fl[r]
            fk_out[i, r] = fk[r]
        for j in range(7):
            for r in range(3):
                origins_out[i, 3 * j + r] = origins[j, r]
                axes_out[i, 3 * j + r] = axes[j, r]
                coms_out[i, 3 * j + r] = coms[j, r]
                for c in range(3):
                    rotations[i, 9 * j + 3 * r + c] = rots[3 * j + r, c]
                    inertias_out[i, 9 * j + 3 * r + c] = inertias[3 * j + r, c]
            for c in range(7):
                mm_out[i, 7 * j + c] = mm[j, c]
            g_out[i, j] = g[j]
            ne_out[i, j] = ne[j]
            target_out[i, j] = target[j]
            ctrl_out[i, j] = ctrl[j]
            passive_out[i, j] = passive[j]
            qdd_out[i, j] = qdd[j]
            solve_out[i, j] = solve[j]

    inputs = [wp.array(np.asarray(x, np.float32), dtype=float) for x in (qpos, qvel, qacc, u)]
    outputs = {name: wp.zeros((N, width), dtype=float) for name, (width, _) in OUTPUTS.items()}
    wp.launch(check, dim=N, inputs=inputs, outputs=list(outputs.values()))
    return {name: out.numpy() for name, out in outputs.items()}


def jax_twins(env, qpos, qvel, qacc, u):
    """The same quantities from ``apg_jax.envs.franka``, per state."""
    def one(q, qd, qa, a):
        rotations, origins, flange = F.link_frames(q)
        inertials = F._link_inertials(q)
        axes, _, coms, inertias, _ = inertials
        gravity = F._gravity_torque(inertials, env.params.gravity)
        target = env.joint_target(a)
        return {"flange": flange, "forward_kinematics": F.forward_kinematics(q), "origins": origins.ravel(), "rotations": rotations.ravel(), "axes": axes.ravel(),
                "coms": coms.ravel(), "inertias": inertias.ravel(), "mass_matrix": F.mass_matrix(q).ravel(),
                "gravity_torque": gravity, "newton_euler": F.inverse_dynamics(q, qd, qa, env.params.gravity),
                "joint_target": target, "control_torque": env.control_torque(q, qd, target, gravity),
                "passive_torque": env.passive_torque(q, qd),
                "joint_acceleration": env.joint_acceleration(q, qd, target=target),
                "cholesky_solve": F.cholesky_solve(F.mass_matrix(q), qd)}

    return {k: np.asarray(v) for k, v in jax.vmap(one)(qpos, qvel, qacc, u).items()}


def test_every_franka_func_matches_its_jax_twin():
    sim = warp_bridge.make("franka")
    env = sim.env
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    low, high = jnp.asarray(F.JOINT_LOWER, jnp.float32), jnp.asarray(F.JOINT_UPPER, jnp.float32)
    qpos = jax.random.uniform(keys[0], (N, 7), minval=low - 0.05, maxval=high + 0.05)  # limit springs too
    qvel = jax.random.uniform(keys[1], (N, 7), minval=-2.0, maxval=2.0)
    qacc = jax.random.uniform(keys[2], (N, 7), minval=-5.0, maxval=5.0)
    u = jax.random.uniform(keys[3], (N, 7), minval=-1.2, maxval=1.2)
    ours, ref = evaluate_warp_funcs(sim.task, qpos, qvel, qacc, u), jax_twins(env, qpos, qvel, qacc, u)
    errors = {name: relative_error(ours[name], ref[name]) for name in OUTPUTS}
    print({k: f"{v:.1e}" for k, v in errors.items()})
    assert {name: err for name, err in errors.items() if err >= OUTPUTS[name][1]} == {}
    assert np.abs(ref["passive_torque"]).max() > 10.0  # some states press a limit spring
