"""Throughput of rollout + gradient through the Warp bridge against the JAX path, same task, device and size.

    python -m experiments.bench_bridge                        # all tasks, 256 envs x 32 steps, CPU
    python -m experiments.bench_bridge --device cuda --num-envs 4096

Both sides compute the gradient of a K-step rollout's summed reward with respect to the initial states
and all actions; the figure is env-steps/s (N * K per call), the median of ``--repeats`` timed calls
after a warm-up (compilation excluded).
"""
from __future__ import annotations

import argparse
import statistics
import time


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.bench_bridge", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="all")
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--device", default="cpu", help="cpu or cuda (both sides)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    import os

    os.environ.setdefault("JAX_PLATFORMS", "cuda" if args.device.startswith("cuda") else "cpu")
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    import warp_bridge
    from apg_jax import envs

    tasks = envs.task_names() if args.tasks == "all" else args.tasks.split(",")
    n, k = args.num_envs, args.steps
    print(f"device: {args.device}  envs: {n}  steps: {k}  (env-steps/s of rollout + gradient)")
    print(f"{'task':12s} {'jax':>12s} {'warp bridge':>12s} {'jax / bridge':>13s}")
    for task in tasks:
        env, sim = envs.make(task), warp_bridge.make(task, device=args.device)
        q0 = jax.vmap(lambda key: env.physics_state(env.reset(key)))(jax.random.split(jax.random.PRNGKey(0), n))
        us = jax.random.uniform(jax.random.PRNGKey(1), (k, n, env.action_size), minval=-1.0, maxval=1.0)

        def total(q, a):
            return jnp.sum(jax.lax.scan(lambda s, u: jax.vmap(env.physics_step)(s, u), q, a)[1])

        grad = jax.jit(jax.grad(total, argnums=(0, 1)))
        t_jax = timed(lambda: jax.block_until_ready(grad(q0, us)), args.repeats)
        q_t = torch.tensor(np.asarray(q0), device=args.device, requires_grad=True)
        u_t = torch.tensor(np.asarray(us), device=args.device, requires_grad=True)

        def bridge():
            q_t.grad = u_t.grad = None
            sim.rollout(q_t, u_t)[1].sum().backward()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()

        t_warp = timed(bridge, args.repeats)
        print(f"{task:12s} {n * k / t_jax:12.3e} {n * k / t_warp:12.3e} {t_warp / t_jax:13.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
