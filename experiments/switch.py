"""Switching hybrid: train with one algorithm, then continue every seed from its own policy with another.

    python -m experiments.switch --task tblock --seeds 3 --out runs/tblock-switch
    python -m experiments.switch --task pointmass2d --first-env-steps 1e6 --then-env-steps 5e5

Stage 1 (``--first``, default ppo) is a plain run at that algorithm's defaults; stage 2 (``--then``,
default apg) starts each seed from stage 1's policy of the same seed (``init_policy_seed="paired"``) with
the ``finetune`` preset (no curriculum, learning rate 1e-4 decayed linearly), its critic and optimizer
fresh. Budgets default to ``SWITCH_BUDGETS`` (the T-block's measured recipe) or else each algorithm's own
default. Writes ``OUT/1-<first>/`` and ``OUT/2-<then>/`` (ordinary run directories: every tool reads
them) and ``OUT/metrics.csv``, both stages as one learning curve (stage 2's env steps, gradient steps and
wall-clock counted on from stage 1's end; a ``stage`` column). Re-running the command resumes.
"""
from __future__ import annotations

import argparse
import os
import sys

from experiments.cli import parse_overrides, select_platform

#: per task, (stage 1, stage 2) env-step budgets when not given: the T-block's from results/tblock-finetune
SWITCH_BUDGETS = {"tblock": (30_000_000, 2_000_000)}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m experiments.switch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="tblock", help="task name (default: tblock)")
    p.add_argument("--first", default="ppo", help="stage 1 algorithm (default: ppo)")
    p.add_argument("--then", default="apg", help="stage 2 algorithm (default: apg)")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds trained together (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default: 0)")
    p.add_argument("--first-env-steps", type=float, default=None, help="stage 1 budget in env steps")
    p.add_argument("--then-env-steps", type=float, default=None, help="stage 2 budget in env steps")
    p.add_argument("--first-set", action="append", default=[], metavar="NAME=VALUE",
                   help="set a TrainConfig field of stage 1 (repeatable)")
    p.add_argument("--then-set", action="append", default=[], metavar="NAME=VALUE",
                   help="set a TrainConfig field of stage 2 (repeatable), e.g. --then-set learning_rate=3e-4")
    p.add_argument("--out", default=None, help="output directory (default: runs/<task>-<first>-then-<then>-...)")
    p.add_argument("--device", default=None, choices=["cpu", "gpu", "cuda"], help="JAX platform")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-artifacts", action="store_true", help="skip stage 2's plot and animation")
    return p.parse_args(argv)


def stage_configs(args: argparse.Namespace, out: str):
    """``(stage 1 config, stage 2 config)``; stage 2 starts from ``OUT/1-<first>`` (``ConfigError`` for a bad
    field or value, before anything runs)."""
    from apg_jax.config import default_config

    first_budget, then_budget = SWITCH_BUDGETS.get(args.task, (None, None))
    first = {"seed": args.seed, **parse_overrides(args.first_set)}
    if args.first_env_steps or first_budget:
        first["env_steps"] = int(args.first_env_steps or first_budget)
    then = {"seed": args.seed, "init_policy": stage_dir(out, 1, args.first), "init_policy_seed": "paired",
            **parse_overrides(args.then_set)}
    if args.then_env_steps or then_budget:
        then["env_steps"] = int(args.then_env_steps or then_budget)
    return (default_config(args.task, args.first, **first),
            default_config(args.task, args.then, preset="finetune", **then))


def stage_dir(out: str, stage: int, algo: str) -> str:
    return os.path.join(out, f"{stage}-{algo}")


def joined_rows(first_rows: list[dict], then_rows: list[dict]) -> list[dict]:
    """Both stages' metric rows as one curve: stage 2's evaluations after its first (which repeats stage
    1's last policy) with env steps, gradient steps, wall-clock and chunk counted on from stage 1's end,
    per seed; a ``stage`` column (1, 2)."""
    counted = ("env_steps", "grad_steps", "actor_grad_steps", "critic_grad_steps", "wall_time_s", "chunk")
    end = {}
    for row in first_rows:
        if row["chunk"] >= end.get(row["seed"], {"chunk": -1})["chunk"]:
            end[row["seed"]] = row
    joined = [{**row, "stage": 1} for row in first_rows]
    for row in then_rows:
        if row["chunk"] > 0:
            joined.append({**row, **{k: row[k] + end[row["seed"]][k] for k in counted}, "stage": 2})
    return joined


def main(argv=None) -> int:
    args = parse_args(argv)
    select_platform(args.device)
    from apg_jax import rundir
    from apg_jax.config import ConfigError
    from experiments.runner import run_experiment

    out = args.out or os.path.join("runs", f"{args.task}-{args.first}-then-{args.then}-seed{args.seed}x{args.seeds}")
    try:
        first, then = stage_configs(args, out)
        from apg_jax.training import make_trainer

        make_trainer(first)  # both configs checked before stage 1 trains (stage 2's source does not exist yet)
        make_trainer(then.replace(init_policy=None, init_policy_seed=None))
        one = run_experiment(first, args.seeds, stage_dir(out, 1, args.first), progress=not args.no_progress,
                             artifacts=False)
        two = run_experiment(then, args.seeds, stage_dir(out, 2, args.then), progress=not args.no_progress,
                             artifacts=not args.no_artifacts)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rundir.write_metrics(out, joined_rows(one.rows, two.rows))
    print(f"outputs in {os.path.abspath(out)}: 1-{args.first}/, 2-{args.then}/, metrics.csv (both stages)")
    print(f"stage 1 ({args.first}): return {one.final_return:.4f}, success {one.final_success:.3f} "
          f"(train {one.wall_time_s:.1f} s)")
    print(f"stage 2 ({args.then}): return {two.final_return:.4f}, success {two.final_success:.3f} "
          f"(train {two.wall_time_s:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
