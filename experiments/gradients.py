"""Gradient fidelity of segment lengths: bias, noise and cost of the K-step segment gradient.

    python -m experiments.gradients --task pointmass2d --segment-lengths 4,16,full --out runs/grad-pm2d
    python -m experiments.gradients --task franka --run runs/franka-apg --segment-lengths 4,8,16,32,full \\
        --bootstraps mc,critic --out runs/grad-franka-trained

For the policy of ``--run`` (its first seed, or ``--seed``; without ``--run``: the initial policy of the
task's APG defaults) and each (K, bootstrap), ``apg_jax.diagnostics`` differentiates whole episodes cut
every K steps. Reference: the exact-path gradient of the discounted full-horizon return (K = full, ``mc``)
averaged over ``--reference-samples`` episodes independent of the estimator's ``--samples`` episodes; its
own relative standard error is reported beside every row (where it is large, e.g. where full-horizon
gradients explode, the cosines against it are not informative and the row says so). ``critic`` rows
bootstrap with a critic fitted to the fixed policy by APG's own critic fit (``--critic-updates`` updates
with the actor frozen). Cost: wall-clock and XLA's memory estimate of one training segment's gradient (K
steps of ``--batch-size`` envs). A run without ``policy.msgpack`` is read from its last checkpoint. Writes ``OUT/gradients.csv`` (one row per (K, bootstrap)) and ``OUT/gradients.png``.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time

import numpy as np

COLUMNS = ["task", "policy", "segment_length", "bootstrap", "cosine", "relative_error", "snr",
           "seconds_per_gradient", "seconds_per_env_step", "peak_memory_mib", "mean_norm",
           "relative_standard_error", "reference_relative_standard_error", "batch_size", "samples"]


def parse_lengths(text: str, horizon: int) -> list[int]:
    lengths = []
    for item in text.split(","):
        item = item.strip()
        k = horizon if item == "full" else int(item)
        if not 1 <= k <= horizon:
            raise SystemExit(f"segment length {item} is outside 1..{horizon} (the task's horizon) or 'full'")
        lengths.append(k)
    return sorted(set(lengths))


def load_actor(args):
    """``(config, policy(params, obs) -> mean action, actor params, obs stats, label)``."""
    import jax
    import jax.numpy as jnp

    from apg_jax import default_config, envs, rundir
    from apg_jax.networks import init_params, make_networks
    from apg_jax.normalization import RunningStats, init_stats, normalize

    if args.run:
        config, num_seeds = rundir.read_config(args.run)
        arrays = policy_arrays(args.run, config, num_seeds)
        seeds = [int(s) for s in np.asarray(arrays["seeds"]).ravel()]
        seed = seeds[0] if args.seed is None else args.seed
        if seed not in seeds:
            raise SystemExit(f"seed {seed} is not in run {args.run}; it holds seeds {seeds}")
        pick = lambda tree: jax.tree.map(lambda x: jnp.asarray(x[seeds.index(seed)]), tree)
        params, stats, label = pick(arrays["actor_params"]), RunningStats(**pick(arrays["obs_stats"])), "trained"
        if config.task != args.task:
            raise SystemExit(f"run {args.run} trained task '{config.task}', not '{args.task}'")
    else:
        config = default_config(args.task, "apg")
        label = "initial"
    env = envs.make(config.task, **config.env_params)
    actor, critic = make_networks(env.action_size, config.hidden_sizes, config.activation, config.init_log_std)
    if not args.run:
        params, _ = init_params(actor, critic, jax.random.PRNGKey(args.seed or 0), env.observation_size)
        stats = init_stats(env.observation_size)
    return config, (lambda p, obs: actor.apply(p, normalize(stats, obs))[0]), params, stats, label


def policy_arrays(run_dir: str, config, num_seeds: int) -> dict:
    """The run's ``policy.msgpack``, or the actor of its last checkpoint (a run still in progress, or one
    made before finished runs kept their policy)."""
    from apg_jax import rundir

    if os.path.exists(os.path.join(run_dir, rundir.POLICY)):
        return rundir.load_policy_arrays(run_dir)
    arrays = rundir.load_checkpoint_policy(run_dir)
    if arrays is None:
        raise SystemExit(f"{run_dir} has neither {rundir.POLICY} nor a checkpoint")
    return {**arrays, "seeds": config.seed + np.arange(num_seeds)}


def fit_value(config, params, stats, updates: int):
    """A critic fitted by APG's critic fit to the fixed policy; returns ``value(obs) -> []`` in reward
    units (``reward_scale`` undone)."""
    import jax

    from apg_jax import make_trainer
    from apg_jax.networks import make_networks
    from apg_jax.normalization import normalize

    frozen = config.replace(algo="apg", bootstrap="critic", learning_rate=1e-12, critic_warmup_steps=0,
                            segment_length=min(32, config.segment_length or 32), lr_schedule="constant",
                            env_steps=updates * config.num_envs * min(32, config.segment_length or 32),
                            num_evals=1, stagger_clocks=True)
    trainer = make_trainer(frozen)
    learner = jax.jit(trainer.init)(jax.random.PRNGKey(1)).learner.replace(actor_params=params, obs_stats=stats)
    learner, _ = jax.jit(lambda s: jax.lax.scan(lambda c, _: trainer.update(c), s, None, length=updates))(learner)
    _, critic = make_networks(trainer.env.action_size, config.hidden_sizes, config.activation, config.init_log_std)
    fitted, fitted_stats, scale = learner.critic_params, learner.obs_stats, config.reward_scale
    return lambda obs: critic.apply(fitted, normalize(fitted_stats, obs)) / scale


def cost(env, policy, params, q0, k, gamma, value, repeats: int = 3) -> tuple[float, float]:
    """Seconds and memory (MiB) of one training segment's batch gradient: ``k`` steps from each state of
    ``q0 [B, S]`` (the cost of one APG update's gradient, critic fit excluded)."""
    import jax
    import jax.numpy as jnp

    from apg_jax.diagnostics import segmented_return
    from experiments.bench import peak_bytes

    grad = jax.jit(jax.grad(lambda p, q: jnp.mean(jax.vmap(
        lambda s: segmented_return(env, policy, p, s, k, gamma, value, steps=k))(q))))
    jax.block_until_ready(grad(params, q0))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(grad(params, q0))
        times.append(time.perf_counter() - t0)
    memory = peak_bytes(jax.jit(lambda q: grad(params, q)), q0) / 2**20
    return sorted(times)[len(times) // 2], memory


def plot(rows: list[dict], path: str, task: str, horizon: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for bootstrap in sorted({r["bootstrap"] for r in rows}):
        sel = [r for r in rows if r["bootstrap"] == bootstrap]
        ks = [horizon if r["segment_length"] == "full" else int(r["segment_length"]) for r in sel]
        for ax, key in zip(axes, ("cosine", "snr", "seconds_per_env_step")):
            ax.plot(ks, [float(r[key]) for r in sel], "o-", label=bootstrap)
    for ax, title in zip(axes, ("cosine to the full-horizon gradient", "SNR at the batch size",
                                "seconds per env step of a segment gradient")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("segment length K")
        ax.set_title(title, fontsize=9)
    axes[1].set_yscale("log")
    axes[2].set_ylim(bottom=0)
    axes[0].legend()
    fig.suptitle(f"{task}: gradient fidelity ({rows[0]['policy']} policy)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.gradients", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True)
    p.add_argument("--run", default=None, help="run directory whose trained policy is measured")
    p.add_argument("--seed", type=int, default=None, help="seed of --run (default: its first)")
    p.add_argument("--segment-lengths", default="4,16,full")
    p.add_argument("--bootstraps", default="mc", help="mc and/or critic")
    p.add_argument("--samples", type=int, default=512, help="episodes per estimator")
    p.add_argument("--reference-samples", type=int, default=2048)
    p.add_argument("--batch-size", type=int, default=None, help="batch of the SNR and the timing "
                   "(default: the configuration's num_envs)")
    p.add_argument("--critic-updates", type=int, default=300)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    from apg_jax import envs

    if args.task not in envs.task_names():
        raise SystemExit(f"unknown task '{args.task}'; valid tasks: {', '.join(envs.task_names())}")
    bootstraps = [b.strip() for b in args.bootstraps.split(",")]
    if set(bootstraps) - {"mc", "critic"}:
        raise SystemExit(f"--bootstraps takes mc and/or critic, got {args.bootstraps}")
    import jax

    from apg_jax.diagnostics import fidelity, per_episode_gradients
    from apg_jax.envs.batch import reset_batch

    config, policy, params, stats, label = load_actor(args)
    env = envs.make(args.task)
    horizon = env.episode_length
    lengths = parse_lengths(args.segment_lengths, horizon)
    batch = args.batch_size or config.num_envs
    starts = lambda seed, n: reset_batch(env, jax.random.PRNGKey(seed), n).pipeline_state
    print(f"{args.task}: {label} policy, reference from {args.reference_samples} full-horizon episodes", flush=True)
    reference_samples = per_episode_gradients(env, policy, params, starts(10_000, args.reference_samples), horizon,
                                              config.gamma)
    finite = np.isfinite(np.asarray(reference_samples)).all(axis=1)
    reference_samples = reference_samples[finite]
    reference = reference_samples.mean(axis=0)
    ref_se = fidelity(reference_samples, reference, batch).relative_standard_error
    print(f"  reference: |g| = {float(np.linalg.norm(reference)):.4g}, relative standard error {ref_se:.3g}"
          f" ({int((~finite).sum())} non-finite episodes dropped)", flush=True)
    value = fit_value(config, params, stats, args.critic_updates) if "critic" in bootstraps else None
    rows = []
    for bootstrap in bootstraps:
        for k in lengths:
            if bootstrap == "critic" and k == horizon:
                continue  # no cut inside the horizon: identical to mc
            v = value if bootstrap == "critic" else None
            samples = per_episode_gradients(env, policy, params, starts(20_000, args.samples), k, config.gamma, v)
            samples = samples[np.isfinite(np.asarray(samples)).all(axis=1)]
            stats_k = fidelity(samples, reference, batch)
            seconds, memory = cost(env, policy, params, starts(30_000, batch), k, config.gamma, v)
            row = {"task": args.task, "policy": label, "segment_length": "full" if k == horizon else k,
                   "bootstrap": bootstrap, **stats_k._asdict(), "seconds_per_gradient": seconds,
                   "seconds_per_env_step": seconds / (batch * k), "peak_memory_mib": memory,
                   "reference_relative_standard_error": ref_se, "batch_size": batch, "samples": int(samples.shape[0])}
            rows.append(row)
            print(f"  K={row['segment_length']!s:<5} {bootstrap:<6} cosine {stats_k.cosine:+.3f}  rel.err "
                  f"{stats_k.relative_error:.3g}  SNR {stats_k.snr:.3g}  {seconds * 1e3:.1f} ms  {memory:.1f} MiB",
                  flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gradients.csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, os.path.join(args.out, "gradients.png"), args.task, horizon)
    print(f"wrote {args.out}/gradients.csv and gradients.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
