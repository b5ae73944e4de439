"""Run a grid of configurations, each with its seeds trained together (one compiled, vmapped program).

    python -m experiments.sweep --tasks all --algos apg,ppo --seeds 5 --out runs/sweep
    python -m experiments.sweep --tasks pointmass2d --algos apg --ablation --seeds 3 --out runs/ablation
    python -m experiments.sweep --tasks pointmass1d --algos apg --segment-lengths 10,full --bootstraps mc,critic

Every configuration gets its own directory under ``--out`` in the format of ``experiments.run``
(``config.json``, ``metrics.csv``, checkpoints, ...); ``sweep.json`` lists them with their status.
Running the same command again skips finished configurations and resumes an interrupted one from its
last checkpoint. Seeds are sharded over the local devices when there are several (see ``runner``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from experiments.cli import config_name, parse_overrides, parse_ranges

ABLATION_SEGMENTS = ("4", "8", "16", "32", "64", "full")
MANIFEST = "sweep.json"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m experiments.sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="all", help="comma-separated task names or 'all'")
    p.add_argument("--algos", default="apg,ppo", help="comma-separated: apg, ppo, hybrid")
    p.add_argument("--seeds", type=int, default=5, help="seeds per configuration (trained together)")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--segment-lengths", default=None,
                   help="APG segment lengths, e.g. 4,8,full,auto (default: each task's tuned default)")
    p.add_argument("--bootstraps", default=None, help="APG bootstrap modes, e.g. mc,critic (default: tuned)")
    p.add_argument("--ablation", action="store_true",
                   help=f"APG grid segment length {','.join(ABLATION_SEGMENTS)} x bootstrap mc,critic "
                        "(lengths above a task's horizon are dropped)")
    p.add_argument("--env-steps", type=float, default=None, help="budget of every configuration")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="set a TrainConfig field")
    p.add_argument("--env-set", action="append", default=[], metavar="NAME=VALUE",
                   help="set a field of the tasks' Params (env_params) for every configuration")
    p.add_argument("--env-randomize", action="append", default=[], metavar="NAME=LOW:HIGH",
                   help="draw a field of the task's Params uniformly per training episode (domain "
                        "randomisation; repeatable; evaluation keeps the nominal value), e.g. "
                        "--env-randomize friction=0.15:0.45")
    p.add_argument("--preset", default=None, help="named APG recipe (e.g. shac) for the apg configurations")
    p.add_argument("--out", default="runs/sweep", help="sweep directory")
    p.add_argument("--max-chunks", type=int, default=None,
                   help="stop after this many evaluation chunks in total (to split a sweep over sessions)")
    p.add_argument("--artifacts", action="store_true", help="also write plots, animations and policies")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def build_grid(args) -> list:
    """The sweep's configurations, in order (``TrainConfig`` objects, validated later by the runner)."""
    from apg_jax.config import ConfigError, default_config
    from apg_jax.envs import make, task_names

    tasks = task_names() if args.tasks == "all" else [t.strip() for t in args.tasks.split(",")]
    unknown = [t for t in tasks if t not in task_names()]
    if unknown:
        raise ConfigError(f"unknown task(s) {unknown}; valid tasks: {', '.join(task_names())}")
    overrides = parse_overrides(args.set)
    overrides["seed"] = args.seed
    if args.env_set:
        overrides["env_params"] = parse_overrides(args.env_set)
    if args.env_randomize:
        overrides["randomize"] = parse_ranges(args.env_randomize)
    if args.env_steps is not None:
        overrides["env_steps"] = int(args.env_steps)
    segments = ABLATION_SEGMENTS if args.ablation else args.segment_lengths and args.segment_lengths.split(",")
    bootstraps = ("mc", "critic") if args.ablation else args.bootstraps and args.bootstraps.split(",")
    grid = []
    for task in tasks:
        horizon = make(task).episode_length
        for algo in [a.strip() for a in args.algos.split(",")]:
            preset = args.preset if algo == "apg" else None
            if algo not in ("apg", "hybrid") or not (segments or bootstraps):
                grid.append(default_config(task, algo, preset=preset, **overrides))
                continue
            base = default_config(task, algo, preset=preset, **overrides)
            for segment in segments or [base.segment_length]:
                length = None if segment in (None, "full") else segment if segment == "auto" else int(segment)
                if isinstance(length, int) and length > horizon:
                    continue
                for bootstrap in bootstraps or [base.bootstrap]:  # (default_config: auto's constant schedule)
                    grid.append(default_config(task, algo, preset=preset,
                                               **{**overrides, "segment_length": length, "bootstrap": bootstrap}))
    return grid


def write_manifest(out: str, entries: list[dict], argv: list[str]) -> None:
    path = os.path.join(out, MANIFEST)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump({"command": ["python", "-m", "experiments.sweep", *argv], "configurations": entries}, f,
                  indent=2)
    os.replace(tmp, path)


def load_manifest(out: str) -> dict:
    path = os.path.join(out, MANIFEST)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {e["name"]: e for e in json.load(f)["configurations"]}


def run_sweep(args, argv: list[str]) -> list[dict]:
    from apg_jax.rundir import same_config
    from experiments.runner import run_experiment

    grid = build_grid(args)
    os.makedirs(args.out, exist_ok=True)
    previous = load_manifest(args.out)
    entries = []
    for config in grid:
        name = config_name(config)
        entry = {"name": name, "dir": name, "seeds": args.seeds, "status": "pending",
                 "config": dataclasses.asdict(config)}
        if previous.get(name, {}).get("status") == "done" and same_config(
                previous[name]["config"], entry["config"]) and previous[name]["seeds"] == args.seeds and \
                os.path.exists(os.path.join(args.out, previous[name]["dir"], "metrics.csv")):  # not deleted since
            entry = previous[name]
        entries.append(entry)
    write_manifest(args.out, entries, argv)

    chunks_left = args.max_chunks
    for entry, config in zip(entries, grid):
        if entry["status"] == "done":
            continue
        if chunks_left is not None and chunks_left <= 0:
            break
        result = run_experiment(config, args.seeds, os.path.join(args.out, entry["dir"]),
                                progress=not args.no_progress, max_chunks=chunks_left,
                                artifacts=args.artifacts)
        if chunks_left is not None:
            chunks_left -= result.chunks_run
        entry.update(status="done" if result.finished else "partial", final_return=result.final_return,
                     final_success=result.final_success, train_wall_time_s=result.wall_time_s,
                     compile_time_s=result.compile_time_s)
        write_manifest(args.out, entries, argv)
        print(f"{entry['name']}: {entry['status']}, return {result.final_return:.4f}, "
              f"success {result.final_success:.3f}", flush=True)
    return entries


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    from apg_jax.config import ConfigError

    try:
        entries = run_sweep(args, argv)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    done = sum(e["status"] == "done" for e in entries)
    print(f"{done}/{len(entries)} configurations done in {os.path.abspath(args.out)} (manifest {MANIFEST})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
