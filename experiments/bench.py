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


def forward_loop(trainer, steps: int, iterations: int):
    """jitted ``states -> return``: the forward pass alone of ``iterations`` segments of ``steps`` policy
    steps per seed (mean actions, automatic resets), the denominator of the gradient-cost ratio."""
    import jax
    import jax.numpy as jnp

    from apg_jax.envs.batch import step_with_reset
    from apg_jax.normalization import normalize

    env = trainer.env

    def run(learner):
        def step(state, _):
            mean, _ = trainer.actor.apply(learner.actor_params, normalize(learner.obs_stats, state.obs))
            state, stepped = step_with_reset(env, state, mean, learner.env_state)
            return state, stepped.reward

        def segment(state, _):
            state, rewards = jax.lax.scan(step, state, None, length=steps)
            return state, jnp.sum(rewards)

        return jnp.sum(jax.lax.scan(segment, learner.env_state, None, length=iterations)[1])

    return jax.jit(jax.vmap(run))


def peak_bytes(fn, arg) -> int:
    """XLA's estimate of the memory one call of jitted ``fn(arg)`` needs: arguments, outputs and
    temporaries (buffers of the compiled program, before aliasing)."""
    stats = fn.lower(arg).compile().memory_analysis()
    return int(stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes)


def pinned_task(task: str, revision: str):
    """The task's class as its module was at git ``revision`` (for side-by-side speed comparisons)."""
    import importlib.util
    import inspect
    import pathlib
    import subprocess
    import tempfile

    from apg_jax import envs

    cls = envs.TASKS[task]
    path = pathlib.Path(inspect.getsourcefile(cls)).resolve()
    root = pathlib.Path(subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path.parent, check=True,
                                       capture_output=True, text=True).stdout.strip())
    source = subprocess.run(["git", "show", f"{revision}:{path.relative_to(root).as_posix()}"], cwd=root,
                            check=True, capture_output=True, text=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(source)
    spec = importlib.util.spec_from_file_location(f"{cls.__module__}_at_{revision}", handle.name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        os.unlink(handle.name)
    return getattr(module, cls.__name__)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="all", help="comma-separated task names or 'all'")
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--steps", type=int, default=128, help="segment length K / PPO rollout length")
    p.add_argument("--seeds", type=int, default=1, help="seeds batched with vmap")
    p.add_argument("--iterations", type=int, default=10, help="updates per timed call")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--methods", default="apg mc,apg critic,ppo",
                   help="comma-separated subset of: apg mc, apg critic, ppo")
    p.add_argument("--reference", default=None, metavar="REV",
                   help="also time 'apg mc' with each task's module as it was at git revision REV, in the "
                        "same process (side-by-side speed-up of a change to the dynamics)")
    p.add_argument("--memory", action="store_true",
                   help="also report the memory of one APG update at K = the full horizon (one seed)")
    p.add_argument("--device", default=None, choices=["cpu", "gpu", "cuda"])
    args = p.parse_args(argv)
    if args.device:
        os.environ["JAX_PLATFORMS"] = "cuda" if args.device in ("gpu", "cuda") else "cpu"
    import jax

    from apg_jax import default_config, envs, make_trainer
    from apg_jax.training import seed_keys

    tasks = envs.task_names() if args.tasks == "all" else args.tasks.split(",")
    variants = {"apg mc": dict(algo="apg", bootstrap="mc"), "apg critic": dict(algo="apg", bootstrap="critic"),
                "ppo": dict(algo="ppo")}
    methods = [m.strip() for m in args.methods.split(",")]
    unknown = sorted(set(methods) - set(variants))
    if unknown:
        p.error(f"unknown method(s) {unknown}; choose from {', '.join(variants)}")
    print(f"device: {jax.devices()[0]}  envs: {args.num_envs}  steps: {args.steps}  seeds: {args.seeds}")
    print(f"{'task':<12} {'method':<22} {'env-steps/s':>12} {'updates/s':>10} {'vs bare':>8} {'grad/fwd':>8}")
    keys = seed_keys(0, args.seeds)

    def trainer_for(task, method, k, env=None, num_envs=args.num_envs):
        changes = dict(variants[method])
        algo = changes.pop("algo")
        length = dict(segment_length=k) if algo == "apg" else dict(rollout_length=k)
        # no curriculum: a pinned reference may predate it, and every row then draws the same resets
        return make_trainer(default_config(task, algo, num_envs=num_envs, curriculum=0.0, **length, **changes),
                            env=env)

    def row(task, label, seconds, per_call, bare, forward=None):
        ratio = f"{seconds / forward:>8.2f}" if forward else f"{'':>8}"
        print(f"{task:<12} {label:<22} {per_call / seconds:>12.3e} {args.iterations / seconds:>10.1f} "
              f"{bare / seconds:>8.2f} {ratio}", flush=True)

    memory = []
    for task in tasks:
        env = envs.make(task)
        k = min(args.steps, env.episode_length)
        per_call = args.seeds * args.num_envs * k * args.iterations
        bare = timed(bare_loop(env, default_config(task, "apg").hidden_sizes, args.num_envs, k,
                               args.iterations), keys, args.repeats)
        row(task, "bare fused loop", bare, per_call, bare)
        implementations = [("", None)]
        if args.reference:
            implementations.append((f" @{args.reference[:10]}", pinned_task(task, args.reference)()))
        for suffix, task_env in implementations:
            forward = None
            for method in methods:
                trainer = trainer_for(task, method, k, task_env)
                learners = jax.jit(jax.vmap(trainer.init))(keys).learner
                if method.startswith("apg") and forward is None:
                    forward = timed(forward_loop(trainer, k, args.iterations), learners, args.repeats)
                    row(task, "forward rollout" + suffix, forward, per_call, bare)
                seconds = timed(learner_loop(trainer, args.iterations), learners, args.repeats)
                row(task, method + suffix, seconds, per_call, bare, forward if method.startswith("apg") else None)
                if suffix:
                    break  # the reference is timed on the first method only
        if args.memory:
            trainer = trainer_for(task, "apg mc", env.episode_length)
            learner = jax.jit(trainer.init)(keys[0]).learner
            memory.append((task, env.episode_length, peak_bytes(jax.jit(trainer.update), learner)))
    if memory:
        print(f"\nmemory of one APG update (mc, K = full horizon, {args.num_envs} envs, one seed)")
        for task, horizon, size in memory:
            print(f"{task:<12} K={horizon:<5} {size / 2**20:>10.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
