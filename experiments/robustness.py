"""Robustness to model mismatch: trained policies evaluated under scaled physical parameters.

    python -m experiments.robustness RUN_DIR [RUN_DIR ...] --scale friction=0.5,0.8,1.2,1.5 \\
        --scale trans_resistance=0.5,0.8,1.2,1.5 --episodes 128 --out results/robustness-tblock

Every seed of every run is rolled (deterministic policy, full horizon) from the same ``--episodes``
starts of the task's reset distribution (``--draw-seed``; paired across runs and conditions) under the
nominal parameters and under each parameter of ``--scale`` multiplied by each factor, one parameter at a
time (the run's own ``env_params`` are the nominal values). The parameters must be ones the task can
randomise (``randomizable``): all conditions and seeds of a run then share one compiled program
(``apg_jax.envs.randomized`` with the values in the state). Writes ``OUT/robustness.csv`` (one row per
run, seed and condition: ``return``, ``success`` and the task's episode metrics) and ``OUT/robustness.md``
(per run and condition: the mean over seeds, with the 95 % t-interval over seeds).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys

import numpy as np

from experiments.cli import select_platform


def parse_scales(pairs: list[str]) -> dict[str, list[float]]:
    """``["name=0.5,1.5", ...]`` -> ``{name: [0.5, 1.5]}``."""
    out = {}
    for pair in pairs:
        try:
            name, factors = pair.split("=", 1)
            values = [float(f) for f in factors.split(",")]
        except ValueError:
            raise SystemExit(f"--scale expects NAME=F1,F2,... (factors of the nominal value), got '{pair}'")
        if not values or min(values) <= 0:
            raise SystemExit(f"--scale {name}: factors must be positive, got {factors}")
        out[name.strip().replace("-", "_")] = values
    return out


def conditions(nominal: dict, scales: dict) -> list[tuple[str, dict]]:
    """``[(label, {name: value})]``: the nominal parameters, then each parameter scaled by each factor."""
    base = {name: float(nominal[name]) for name in scales}
    out = [("nominal", base)]
    for name, factors in scales.items():
        for factor in factors:
            out.append((f"{name} x{factor:g}", {**base, name: base[name] * factor}))
    return out


def evaluate_conditions(run_dir: str, scales: dict, episodes: int, draw_seed: int) -> list[dict]:
    """Rows ``{run, algo, randomized, seed, condition, return, success, <episode metrics>}``."""
    import dataclasses

    import jax
    import jax.numpy as jnp

    from apg_jax import envs, rundir
    from apg_jax.envs.batch import reset_batch
    from apg_jax.envs.randomized import RandomizedPhysics
    from apg_jax.evaluation import episode_success, rollout_from_states
    from apg_jax.networks import deterministic_action, make_networks
    from apg_jax.normalization import RunningStats

    config, _ = rundir.read_config(run_dir)
    env = envs.make(config.task, **config.env_params)
    todo = conditions(dataclasses.asdict(env.params), scales)
    values = np.array([[c[1][n] for n in sorted(scales)] for c in todo])  # [C, P], names sorted as the wrapper
    wrapped = RandomizedPhysics(env, {n: (values[:, i].min(), values[:, i].max())
                                      for i, n in enumerate(sorted(scales))})
    q0 = reset_batch(env, jax.random.PRNGKey(draw_seed), episodes).pipeline_state  # [N, S]
    arrays = rundir.load_policy_arrays(run_dir)
    seeds = [int(s) for s in np.asarray(arrays["seeds"]).ravel()]
    actor, _ = make_networks(env.action_size, config.hidden_sizes, config.activation, config.init_log_std)

    def one(actor_params, stats, value):
        act = lambda obs: deterministic_action(actor, actor_params, RunningStats(**stats), obs)
        start = jnp.concatenate([q0, jnp.broadcast_to(value.astype(q0.dtype), (episodes, value.shape[0]))], 1)
        qs, _, rewards, success = rollout_from_states(wrapped, act, start)
        metrics = jax.vmap(wrapped.episode_metrics, in_axes=1)(qs)
        return {"return": rewards.sum(0).mean(), "success": episode_success(env, success).mean(),
                **{k: v.mean() for k, v in metrics.items()}}

    per_condition = jax.vmap(one, in_axes=(None, None, 0))
    results = jax.device_get(jax.jit(jax.vmap(per_condition, in_axes=(0, 0, None)))(
        arrays["actor_params"], dict(arrays["obs_stats"]), jnp.asarray(values)))  # leaves [seeds, C]
    label = os.path.basename(os.path.normpath(run_dir))
    rows = []
    for s, seed in enumerate(seeds):
        for c, (condition, _) in enumerate(todo):
            rows.append({"run": label, "algo": config.algo, "randomized": ";".join(
                f"{n}={lo:g}:{hi:g}" for n, (lo, hi) in sorted(config.randomize.items())) or "no",
                "seed": seed, "condition": condition, **{k: float(v[s, c]) for k, v in results.items()}})
    return rows


def mean_interval(values) -> str:
    from scipy import stats

    values = np.asarray(values, float)
    if len(values) < 2:
        return f"{values.mean():.3f}"
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return f"{values.mean():.3f} ± {half:.3f}"


def table(rows: list[dict], metric: str) -> str:
    """Markdown: one line per run, one column per condition, mean ± 95 % t-interval over seeds."""
    runs = list(dict.fromkeys(r["run"] for r in rows))
    names = list(dict.fromkeys(r["condition"] for r in rows))
    lines = [f"| run ({metric}) | trained on | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(names)]
    for run in runs:
        mine = [r for r in rows if r["run"] == run]
        cells = [mean_interval([r[metric] for r in mine if r["condition"] == n]) for n in names]
        lines.append(f"| {run} | {mine[0]['randomized']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.robustness", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="+", help="finished run directories (policy.msgpack), one task")
    p.add_argument("--scale", action="append", required=True, metavar="NAME=F1,F2,...",
                   help="a randomisable Params field and the factors of its nominal value (repeatable)")
    p.add_argument("--episodes", type=int, default=128)
    p.add_argument("--draw-seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default=None, choices=["cpu", "gpu", "cuda"])
    args = p.parse_args(argv)
    select_platform(args.device)
    scales = parse_scales(args.scale)
    rows = []
    try:
        for run_dir in args.run_dirs:
            rows += evaluate_conditions(run_dir, scales, args.episodes, args.draw_seed)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "robustness.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    metrics = [k for k in rows[0] if k not in ("run", "algo", "randomized", "seed", "condition")]
    text = "\n\n".join(table(rows, m) for m in metrics)
    with open(os.path.join(args.out, "robustness.md"), "w") as f:
        f.write(f"# Robustness to model mismatch\n\n{args.episodes} starts (draw seed {args.draw_seed}), "
                f"mean over seeds ± 95 % t-interval.\n\n{text}\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
