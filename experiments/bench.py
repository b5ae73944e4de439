"""Throughput of APG and PPO updates per task on the current device, against a bare fused loop.

    python -m experiments.bench                      # all tasks, 256 envs x 128 steps
    python -m experiments.bench --tasks pointmass2d --num-envs 4096 --seeds 8

The bare loop is the task's rollout through ``lax.scan`` plus ``value_and_grad`` of its return through an
MLP of the same size as the actor, nothing else: the ceiling an APG update can approach. Each figure is
the median of ``--repeats`` timed calls after a warm-up (compilation excluded)."""
from __future__ import annotations

import argparse
import os
import sys
import time


def timed(fn, arg, repeats: int) -> float:
    import jax

    jax.block_until_ready(fn(arg))  # compile and warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(arg))
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def bare_loop(env, hidden_sizes, num_envs: int, steps: int, iterations: int):
    """jitted ``keys [S, 2] -> loss``: ``iterations`` x (rollout + value_and_grad + SGD) per seed."""
    import jax
    import jax.numpy as jnp

    from apg_jax.envs.batch import reset_batch
    from apg_jax.networks import MLP

    mlp = MLP(tuple(hidden_sizes), env.action_size)

    def one_seed(key):
        params = mlp.init(key, jnp.zeros(env.observation_size))
        state = reset_batch(env, key, num_envs)

        def ret(p):
            def body(s, _):
                s = jax.vmap(env.step)(s, jnp.tanh(mlp.apply(p, s.obs)))
                return s, s.reward

            return jnp.mean(jnp.sum(jax.lax.scan(body, state, None, length=steps)[1], axis=0))

        def it(p, _):
            value, grads = jax.value_and_grad(ret)(p)
            return jax.tree.map(lambda a, g: a + 1e-4 * g, p, grads), value

        return jax.lax.scan(it, params, None, length=iterations)[1][-1]

    return jax.jit(jax.vmap(one_seed))


def learner_loop(trainer, iterations: int):
    """jitted ``states -> metrics``: ``iterations`` learner updates per seed (no evaluation)."""
    import jax

    def run(learner):
        return jax.lax.scan(lambda s, _: trainer.update(s), learner, None, length=iterations)[1]

    return jax.jit(jax.vmap(run))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="all", help="comma-separated task names or 'all'")
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--steps", type=int, default=128, help="segment length K / PPO rollout length")
    p.add_argument("--seeds", type=int, default=1, help="seeds batched with vmap")
    p.add_argument("--iterations", type=int, default=10, help="updates per timed call")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default=None, choices=["cpu", "gpu", "cuda"])
    args = p.parse_args(argv)
    if args.device:
        os.environ["JAX_PLATFORMS"] = "cuda" if args.device in ("gpu", "cuda") else "cpu"
    import jax

    from apg_jax import default_config, envs, make_trainer
    from apg_jax.training import seed_keys

    tasks = envs.task_names() if args.tasks == "all" else args.tasks.split(",")
    print(f"device: {jax.devices()[0]}  envs: {args.num_envs}  steps: {args.steps}  seeds: {args.seeds}")
    print(f"{'task':<12} {'method':<16} {'env-steps/s':>14} {'updates/s':>10} {'vs bare':>8}")
    keys = seed_keys(0, args.seeds)
    for task in tasks:
        env = envs.make(task)
        k = min(args.steps, env.episode_length)
        per_call = args.seeds * args.num_envs * k * args.iterations
        base = default_config(task, "apg")
        bare = timed(bare_loop(env, base.hidden_sizes, args.num_envs, k, args.iterations), keys, args.repeats)
        print(f"{task:<12} {'bare fused loop':<16} {per_call / bare:>14.3e} {args.iterations / bare:>10.1f} "
              f"{1.0:>8.2f}", flush=True)
        variants = [("apg mc", dict(algo="apg", segment_length=k, bootstrap="mc")),
                    ("apg critic", dict(algo="apg", segment_length=k, bootstrap="critic")),
                    ("ppo", dict(algo="ppo", rollout_length=k))]
        for label, changes in variants:
            config = default_config(task, changes.pop("algo"), num_envs=args.num_envs, **changes)
            trainer = make_trainer(config)
            learners = jax.jit(jax.vmap(trainer.init))(keys).learner
            seconds = timed(learner_loop(trainer, args.iterations), learners, args.repeats)
            print(f"{task:<12} {label:<16} {per_call / seconds:>14.3e} {args.iterations / seconds:>10.1f} "
                  f"{bare / seconds:>8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
