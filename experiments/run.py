"""Train one configuration on one task for several seeds at once (seeds under ``jax.vmap``).

    python -m experiments.run --task pointmass1d
    python -m experiments.run --task pointmass2d --algo ppo --seeds 4 --env-steps 5e6
    python -m experiments.run --task pointmass1d --segment-length 25 --bootstrap critic --set gamma=0.995

Defaults per (task, algo) live in ``apg_jax/config.py`` (``DEFAULTS``); every field of ``TrainConfig``
can be set with ``--set name=value``. Re-running the same command with the same ``--out`` resumes an
interrupted run from its last checkpoint.
"""
from __future__ import annotations

import argparse
import os
import sys

from experiments.cli import default_out_dir, parse_overrides, parse_ranges, segment_length, select_platform


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m experiments.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="pointmass1d", help="task name (default: pointmass1d)")
    p.add_argument("--algo", default="apg", help="apg, ppo or hybrid (analytic + likelihood-ratio "
                   "gradient; default: apg)")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds trained together (default: 1)")
    p.add_argument("--seed", type=int, default=None, help="first seed (default: 0)")
    p.add_argument("--segment-length", type=segment_length, default=None,
                   help="APG segment length K, or 'auto' to adapt it during training (apg_jax.adaptive); "
                        "default: the task's tuned length")
    p.add_argument("--bootstrap", default=None, help="APG bootstrap mode: mc or critic")
    p.add_argument("--env-steps", type=float, default=None, help="training budget in env steps")
    p.add_argument("--out", default=None, help="output directory (default: runs/<task>-<algo>-...)")
    p.add_argument("--device", default=None, choices=["cpu", "gpu", "cuda"], help="JAX platform")
    p.add_argument("--preset", default=None, help="a named recipe on top of the defaults, e.g. shac "
                   "(apg_jax.config.PRESETS); --set and the flags above override it")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="set any TrainConfig field, e.g. --set learning_rate=3e-4 (repeatable)")
    p.add_argument("--env-set", action="append", default=[], metavar="NAME=VALUE",
                   help="set a field of the task's Params for training and evaluation, e.g. --env-set "
                        "contact_width=1e-6 (repeatable; stored as env_params)")
    p.add_argument("--env-randomize", action="append", default=[], metavar="NAME=LOW:HIGH",
                   help="draw a field of the task's Params uniformly per training episode (domain "
                        "randomisation; repeatable; evaluation keeps the nominal value), e.g. "
                        "--env-randomize friction=0.15:0.45")
    p.add_argument("--backend", default="jax", choices=["jax", "warp"],
                   help="jax (default) or warp: APG with PyTorch networks on the Warp physics bridge")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-artifacts", action="store_true", help="skip the plot and animation at the end")
    return p.parse_args(argv)


def build_config(args: argparse.Namespace):
    from apg_jax.config import default_config

    overrides = parse_overrides(args.set)
    for name in ("seed", "segment_length", "bootstrap"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.env_set:
        overrides["env_params"] = parse_overrides(args.env_set)
    if args.env_randomize:
        overrides["randomize"] = parse_ranges(args.env_randomize)
    if overrides.get("segment_length") == "full":
        overrides["segment_length"] = None
    if args.env_steps is not None:
        overrides["env_steps"] = int(args.env_steps)
    return default_config(args.task, args.algo, preset=args.preset, **overrides)


def main(argv=None) -> int:
    args = parse_args(argv)
    select_platform(args.device)
    from apg_jax import rundir
    from apg_jax.config import ConfigError

    try:
        config = build_config(args)
        out = args.out or default_out_dir(config, args.seeds, args.backend)
        if args.backend == "warp":
            from experiments.warp_backend import run_warp_experiment

            device = "cuda" if args.device in ("gpu", "cuda") else "cpu"
            result = run_warp_experiment(config, args.seeds, out, device, progress=not args.no_progress,
                                         artifacts=not args.no_artifacts)
        else:
            from experiments.runner import run_experiment

            result = run_experiment(config, args.seeds, out, progress=not args.no_progress,
                                    artifacts=not args.no_artifacts)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"outputs in {os.path.abspath(result.out_dir)}: {', '.join(rundir.OUTPUTS)}")
    print(f"final evaluation over {args.seeds} seed(s): return {result.final_return:.4f}, "
          f"success {result.final_success:.3f}  (train {result.wall_time_s:.1f} s, "
          f"compile {result.compile_time_s:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
