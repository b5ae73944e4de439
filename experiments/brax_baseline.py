"""Brax's own trainers (PPO, APG) on our tasks through brax's registry: a checked baseline in one command.

    python -m experiments.brax_baseline --task pointmass1d --algo ppo --seeds 2
    python -m experiments.brax_baseline --task franka --algo apg --env-steps 1e6 --out runs/brax-franka-apg

The task is built by ``brax.envs.get_environment("apg_<task>")`` and trained by
``brax.training.agents.{ppo,apg}.train`` (brax 0.14.2 with the JAX shim of ``experiments.brax_compat``),
with our tuned configuration mapped onto brax's arguments (same env-step budget, number of environments,
rollout / segment length, minibatches and epochs, learning rate, discount, GAE lambda, clipping, network
sizes with tanh, observation normalisation, gradient clipping). What stays brax's: its handling of
time-limit truncation in PPO (brax masks truncated steps out of GAE through ``info["truncation"]``;
its ``bootstrap_on_timeout`` needs a task-specific ``info["time_out"]`` that our tasks, which keep no
clock, do not set), its networks' parameterisation (tanh-Normal policy with a state-dependent
scale), its initialisation and its optimizer details; the fields of ours it has no argument for
(``NOT_MAPPED``: our curriculum, learning-rate schedule, initial std, separate critic learning rate,
Adam betas, a shorter training horizon) are printed as a note when they differ from ``TrainConfig``'s
defaults. The run directory has our format (``apg_jax.rundir``: ``config.json``, ``metrics.csv``,
``summary.json``, ``learning_curves.png``) plus ``brax_settings.json`` and ``seeds_done.json``. Seeds
train one after another; brax's trainers keep no checkpoint, so the same command after an interruption
keeps the finished seeds (listed in ``seeds_done.json``, their rows in ``metrics.csv``) and retrains the
unfinished one from its start.
Evaluation return and success are from our evaluator (deterministic policy, the seed's fixed evaluation
starts) after every brax evaluation for PPO; brax's APG trainer hands out no
parameters before the end, so its intermediate rows carry brax's own evaluation return (deterministic,
128 fresh starts, full horizon) and success only at the last row, from our evaluator.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time

from experiments.cli import parse_overrides, select_platform


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m experiments.brax_baseline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="pointmass1d")
    p.add_argument("--algo", default="ppo", choices=["ppo", "apg"])
    p.add_argument("--seeds", type=int, default=1, help="seeds, trained one after another")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--env-steps", type=float, default=None, help="budget (default: our tuned config's)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override one of our TrainConfig fields before the mapping")
    p.add_argument("--out", default=None, help="run directory (default: runs/brax-<task>-<algo>-seed<S>x<N>)")
    p.add_argument("--device", default=None, choices=["cpu", "gpu", "cuda"])
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


#: our TrainConfig fields brax's trainers have no argument for, and what brax does instead
NOT_MAPPED = {
    "curriculum": "resets always from the task's full distribution",
    "lr_schedule": "a constant learning rate (brax's schedules: none or adaptive-KL)",
    "init_log_std": "its own initial policy scale (a network output of its tanh-Normal policy)",
    "critic_learning_rate": "one learning rate for policy and value",
    "adam_betas": "Adam's default betas",
    "train_episode_length": "training episodes of the task's horizon",
}


def unmapped(config) -> dict:
    """``{field: (our value, what brax does instead)}`` for the fields of ``config`` that differ from
    ``TrainConfig``'s defaults and that brax ignores (``NOT_MAPPED``)."""
    from apg_jax.config import TrainConfig

    default = TrainConfig()
    return {name: (getattr(config, name), instead) for name, instead in NOT_MAPPED.items()
            if getattr(config, name) != getattr(default, name)}


def brax_settings(config, horizon: int) -> dict:
    """brax ``train`` keyword arguments equivalent to our ``config`` (networks excepted)."""
    if config.algo == "ppo":
        unrolls = config.num_envs  # one rollout of every environment per update, as ours
        return dict(num_timesteps=config.env_steps, episode_length=horizon, num_envs=config.num_envs,
                    unroll_length=config.rollout_length, batch_size=unrolls // config.num_minibatches,
                    num_minibatches=config.num_minibatches, num_updates_per_batch=config.ppo_epochs,
                    learning_rate=config.learning_rate, entropy_cost=config.ent_coef, discounting=config.gamma,
                    gae_lambda=config.gae_lambda, clipping_epsilon=config.clip_eps,
                    reward_scaling=config.reward_scale, normalize_observations=True,
                    max_grad_norm=config.max_grad_norm, normalize_advantage=config.normalize_advantages,
                    num_evals=config.num_evals + 1,
                    num_eval_envs=config.num_eval_envs, deterministic_eval=True)
    k = config.segment_length or horizon
    return dict(episode_length=horizon, policy_updates=max(config.env_steps // (config.num_envs * k), 1),
                horizon_length=k, num_envs=config.num_envs, num_evals=config.num_evals + 1,
                num_eval_envs=config.num_eval_envs, learning_rate=config.learning_rate,
                max_gradient_norm=config.max_grad_norm, normalize_observations=True, deterministic_eval=True)


def train_seed(config, seed: int, on_eval) -> None:
    """Train one seed with brax; ``on_eval(env_steps, wall_s, values, final)`` after every evaluation."""
    import jax

    from apg_jax import envs
    from apg_jax.evaluation import evaluate
    from apg_jax.training import evaluation_key
    from experiments import brax_compat

    brax_compat.install()
    from brax import envs as brax_envs

    envs.register_brax()
    env = envs.make(config.task)
    brax_env = brax_envs.get_environment(f"apg_{config.task}")
    settings = brax_settings(config, env.episode_length)
    eval_key = evaluation_key(config, jax.random.PRNGKey(seed))  # our trainer's evaluation starts
    act_key = jax.random.PRNGKey(0)  # unused by deterministic policies
    clock = {"start": time.perf_counter(), "eval": 0.0}

    def our_evaluation(make_policy, params) -> dict:
        start = time.perf_counter()
        policy = make_policy(params, deterministic=True)
        out = jax.jit(lambda: evaluate(env, lambda obs: policy(obs, act_key)[0], eval_key, config.num_eval_envs))()
        clock["eval"] += time.perf_counter() - start
        return {k: float(v) for k, v in out.items()}

    def wall() -> float:
        return time.perf_counter() - clock["start"] - clock["eval"]

    if config.algo == "ppo":
        from brax.training.agents.ppo import networks as ppo_networks
        from brax.training.agents.ppo import train as ppo

        factory = functools.partial(ppo_networks.make_ppo_networks, policy_hidden_layer_sizes=config.hidden_sizes,
                                    value_hidden_layer_sizes=config.hidden_sizes, activation=jax.nn.tanh)
        ppo.train(environment=brax_env, seed=seed, network_factory=factory,
                  policy_params_fn=lambda step, make_policy, params: on_eval(
                      int(step), wall(), our_evaluation(make_policy, params), False), **settings)
        return
    from brax.training.agents.apg import networks as apg_networks
    from brax.training.agents.apg import train as apg

    factory = functools.partial(apg_networks.make_apg_networks, hidden_layer_sizes=config.hidden_sizes,
                                activation=jax.nn.tanh)
    # brax's APG reports its evaluation epoch (0, 1, ...), each of round(updates / (evals - 1)) updates
    epochs = max(settings["num_evals"] - 1, 1)
    steps_per_epoch = round(settings["policy_updates"] / epochs) * settings["num_envs"] * settings["horizon_length"]
    progress = lambda epoch, metrics: on_eval(int(epoch) * steps_per_epoch, wall(), {
        "eval_return": float(metrics["eval/episode_reward"]), "eval_success": float("nan")}, False)
    make_policy, params, _ = apg.train(environment=brax_env, seed=seed, network_factory=factory,
                                       progress_fn=progress, **settings)
    on_eval(epochs * steps_per_epoch, wall(), our_evaluation(make_policy, params), True)


SEEDS_DONE = "seeds_done.json"


def finished_seeds(out_dir: str) -> tuple[list[int], list[dict]]:
    """Seeds an earlier (interrupted) run of ``out_dir`` finished, and their ``metrics.csv`` rows."""
    from apg_jax import rundir

    path = os.path.join(out_dir, SEEDS_DONE)
    if not os.path.exists(path):
        return [], []
    with open(path) as f:
        done = [int(s) for s in json.load(f)["seeds"]]
    return done, [r for r in rundir.read_metrics(out_dir) if r["seed"] in done]


def run_baseline(config, num_seeds: int, out_dir: str, progress: bool = True) -> list[dict]:
    """Train seeds ``config.seed ...`` one after another (skipping those ``out_dir`` already finished);
    returns every seed's ``metrics.csv`` rows."""
    from apg_jax import rundir
    from apg_jax.envs import make
    from apg_jax.plots import plot_learning_curves

    horizon = make(config.task).episode_length
    settings = brax_settings(config, horizon)
    rundir.prepare(config, num_seeds, out_dir)
    rundir.write_atomic(os.path.join(out_dir, "brax_settings.json"), json.dumps(settings, indent=2).encode())
    if config.algo == "ppo":
        per_update = config.num_envs * config.rollout_length
        grads_per_update = config.ppo_epochs * config.num_minibatches
    else:
        per_update, grads_per_update = settings["num_envs"] * settings["horizon_length"], 1
    done, rows = finished_seeds(out_dir)
    for seed in range(config.seed, config.seed + num_seeds):
        if seed in done:
            continue
        mine: list[dict] = []

        def on_eval(env_steps, wall, values, final):
            if final and mine and mine[-1]["env_steps"] == env_steps:
                mine.pop()  # the last brax evaluation, replaced by ours at the same step
            updates = env_steps // per_update
            counts = {"env_steps": env_steps, "actor_grad_steps": updates * grads_per_update,
                      "critic_grad_steps": updates * grads_per_update if config.algo == "ppo" else 0}
            mine.append(rundir.metric_row(config, seed, len(mine), counts, wall, values))
            rundir.write_metrics(out_dir, rows + mine)
            if progress:
                print(f"brax-{config.algo}/{config.task} seed {seed} steps {env_steps:,} return "
                      f"{values['eval_return']:.3f} success {values['eval_success']:.2f} ({wall:.1f} s)", flush=True)

        train_seed(config, seed, on_eval)
        rows += mine
        done.append(seed)
        rundir.write_atomic(os.path.join(out_dir, SEEDS_DONE), json.dumps({"seeds": done}).encode())
    final_return, final_success = rundir.final_numbers(rows)
    last = [r for r in rows if r["chunk"] == max(r["chunk"] for r in rows)]
    rundir.write_summary(out_dir, {"trainer": f"brax {config.algo}", "final_eval_return": final_return,
                                   "final_eval_success": final_success, "env_steps": last[0]["env_steps"],
                                   "train_wall_time_s": float(sum(r["wall_time_s"] for r in last)),
                                   "num_seeds": num_seeds})
    plot_learning_curves(rows, os.path.join(out_dir, rundir.CURVES), f"brax {config.algo} on {config.task}")
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    select_platform(args.device)
    from apg_jax.config import ConfigError, default_config, validate
    from apg_jax.envs import make

    try:
        overrides = {**parse_overrides(args.set), "seed": args.seed}
        if args.env_steps is not None:
            overrides["env_steps"] = int(args.env_steps)
        config = default_config(args.task, args.algo, **overrides)
        try:
            horizon = make(args.task).episode_length
        except ValueError as err:
            raise ConfigError(str(err)) from None
        validate(config, horizon)
        if args.seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
        out = args.out or os.path.join("runs", f"brax-{args.task}-{args.algo}-seed{args.seed}x{args.seeds}")
        for name, (value, instead) in unmapped(config).items():
            print(f"note: brax ignores {name}={value} ({instead})", file=sys.stderr)
        rows = run_baseline(config, args.seeds, out, progress=not args.no_progress)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from apg_jax import rundir

    final_return, final_success = rundir.final_numbers(rows)
    print(f"outputs in {os.path.abspath(out)}; final evaluation over {args.seeds} seed(s): return "
          f"{final_return:.4f}, success {final_success:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
