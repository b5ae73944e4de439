"""The evidence protocol (``results/README.md``, "Protocol"): fixed choices and the commands of its steps.

    python -m experiments.protocol thresholds --out results/comparison/thresholds.json
    python -m experiments.protocol final --tasks pointmass1d,pointmass2d --methods apg,ppo,shac --out runs/comparison
    python -m experiments.protocol ablation --tasks pointmass1d --axis updates --out runs/ablation
    python -m experiments.protocol export runs/comparison --to results/comparison/runs

Fixed here, before any run: one env-step budget per task for every algorithm (``BUDGETS``; the tuning of
``experiments.tune`` uses it too), tuning seeds that are never reported and final seeds that were never
tuned on, an evaluation every 2 % of the budget on 128 starts shared by every seed and algorithm
(``EVAL_SEED``: paired comparisons), and the thresholds of "env steps to threshold", from references
(``apg_jax.references``) and the tasks' issue targets, not from the runs. ``final`` trains each
(task, method) into ``OUT/<task>-<method>`` with its defaults (``apg_jax.config.DEFAULTS``, set from the
tuning; ``shac`` is APG with SHAC's recipe, ``PRESETS["shac"]``; ``hybrid`` issue 17's estimator,
``hybrid_lowstd`` it with a small exploration std, ``hybrid_split`` it with a split batch; ``apg_short``
and ``ppo_short`` with 100-step training episodes, ``apg_full`` and ``ppo_full`` with the task's own),
resuming an interrupted run and skipping finished ones;
``ablation`` runs APG's segment lengths (4-64, full; ``auto`` too at equal env steps) x bootstraps on 5
seeds of their own at equal env steps or at equal numbers of actor updates (``ablation_configs``; where
the full horizon is the same configuration on both axes, it is trained once and copied);
``export`` copies every finished run's ``config.json``, ``metrics.csv`` and ``summary.json`` and every
study's ``trials.csv``, ``best.json`` and ``study.journal`` (no checkpoints, no policies) where git keeps
them, at the same relative paths.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

#: env steps per run, the same for every algorithm on a task (tuning and final runs)
BUDGETS = {"pointmass1d": 1_000_000, "pointmass2d": 3_000_000, "franka": 2_000_000, "tblock": 5_000_000}
TUNING_SEEDS = (100, 101)  #: tuning only, never reported
FINAL_SEEDS = tuple(range(1000, 1010))  #: reported, never tuned on
NUM_EVALS = 50  #: evaluation every 2 % of the budget
EVAL_SEED = 2026  #: the evaluation starts shared by every seed and algorithm (paired)
NUM_EVAL_ENVS = 128
POINTMASS1D_COST_RATIO = 1.05  #: threshold: return within 5 % of the exact optimum's cost
KEPT_FILES = ("config.json", "metrics.csv", "summary.json", "trials.csv", "best.json", "study.journal")


def evaluation_starts(task: str):
    """The protocol's evaluation starts ``[NUM_EVAL_ENVS, state_dim]`` of ``task`` (the trainer's
    ``evaluation_key`` with ``eval_seed = EVAL_SEED``)."""
    import jax

    from apg_jax.envs import make
    from apg_jax.envs.batch import reset_batch

    return reset_batch(make(task), jax.random.PRNGKey(EVAL_SEED), NUM_EVAL_ENVS).pipeline_state


def thresholds() -> dict:
    """``{task: [{"column", "value", "source"}, ...]}``: a run meets a threshold at the first evaluation
    whose ``column`` is at or above ``value``."""
    import jax
    import numpy as np

    from apg_jax.envs import make
    from apg_jax.references import pointmass1d_optimal_returns, pointmass2d_scripted_rollout

    env1 = make("pointmass1d")
    optimum = float(np.mean(pointmass1d_optimal_returns(env1.params, np.asarray(evaluation_starts("pointmass1d")))))
    env2 = make("pointmass2d")

    def scripted(q0):
        _, rewards, success = pointmass2d_scripted_rollout(env2, q0)
        return rewards.sum(0).mean(), success.mean()

    scripted_return, scripted_success = (float(v) for v in jax.jit(scripted)(evaluation_starts("pointmass2d")))
    return {
        "pointmass1d": [{"column": "eval_return", "value": POINTMASS1D_COST_RATIO * optimum,
                         "source": f"{POINTMASS1D_COST_RATIO} x the exact optimal return {optimum:.4f} on the "
                                   "evaluation starts (cost within 5 % of the optimum)"}],
        "pointmass2d": [{"column": "eval_return", "value": scripted_return,
                         "source": f"scripted waypoint controller's return (its success {scripted_success:.2f})"},
                        {"column": "eval_success", "value": 0.95, "source": "95 % success (scripted controller: "
                                                                             f"{scripted_success:.0%})"}],
        "franka": [{"column": "eval_success", "value": 0.95, "source": "95 % success"}],
        "tblock": [{"column": "eval_success", "value": 0.5, "source": "issue 14 target: 50 % success"},
                   {"column": "eval_max_coverage", "value": 0.85,
                    "source": "issue 14 target: mean maximum coverage 0.85"}],
    }


#: method name -> (algo, preset of apg_jax.config.PRESETS); ``hybrid`` is issue 17's estimator at its
#: defaults (APG's tuned segments, PPO's tuned exploration and reuse passes: ``default_config``),
#: ``hybrid_lowstd`` the same with a small exploration std (``PRESETS["hybrid_lowstd"]``), ``hybrid_split``
#: with deterministic envs for the analytic estimate and a quarter exploring (``PRESETS["hybrid_split"]``);
#: ``apg_short`` / ``ppo_short`` APG / PPO with 100-step training episodes (``PRESETS["short_episodes"]``),
#: ``apg_full`` / ``ppo_full`` with the task's own horizon (``PRESETS["full_episodes"]``; on tblock its
#: defaults before the training horizon was tuned)
METHODS = {"apg": ("apg", None), "ppo": ("ppo", None), "shac": ("apg", "shac"), "hybrid": ("hybrid", None),
           "hybrid_lowstd": ("hybrid", "hybrid_lowstd"), "hybrid_split": ("hybrid", "hybrid_split"),
           "apg_short": ("apg", "short_episodes"), "ppo_short": ("ppo", "short_episodes"),
           "apg_full": ("apg", "full_episodes"), "ppo_full": ("ppo", "full_episodes")}


def final_config(task: str, method: str):
    """The final runs' configuration of ``method`` on ``task``: its tuned defaults at the protocol's
    budget, seeds and evaluation."""
    from apg_jax.config import default_config

    algo, preset = METHODS[method]
    return default_config(task, algo, preset=preset, seed=FINAL_SEEDS[0], env_steps=BUDGETS[task],
                          num_evals=NUM_EVALS, eval_seed=EVAL_SEED, num_eval_envs=NUM_EVAL_ENVS)


def run_final(tasks: list[str], methods: list[str], out: str, progress: bool = True,
              max_chunks: int | None = None) -> list[str]:
    """Train (or resume) ``out/<task>-<method>`` for every pair; finished runs (with a summary) are kept.
    ``max_chunks``: stop after that many evaluation chunks in all (to split the work over sessions).
    Returns the finished run directories."""
    from experiments.runner import run_experiment

    done = []
    for task in tasks:
        for method in methods:
            run_dir = os.path.join(out, f"{task}-{method}")
            if not os.path.exists(os.path.join(run_dir, "summary.json")):
                if max_chunks is not None and max_chunks <= 0:
                    return done
                result = run_experiment(final_config(task, method), len(FINAL_SEEDS), run_dir, progress=progress,
                                        max_chunks=max_chunks)
                max_chunks = None if max_chunks is None else max_chunks - result.chunks_run
                if not result.finished:
                    return done
            done.append(run_dir)
    return done


ABLATION_SEGMENTS = (4, 8, 16, 32, 64, None)  #: K; None: the full horizon
ABLATION_SEEDS = tuple(range(2000, 2005))


def ablation_configs(task: str, axis: str) -> dict:
    """``{run name: config}`` of the segment-length ablation, APG's tuned defaults with K and the bootstrap
    varied. ``axis="env_steps"``: every run gets the task's budget; ``axis="updates"``: every run gets the
    number of actor updates the full horizon gets within the budget (so K = 4 sees far fewer env steps),
    separating the quality of a K-step gradient from the number of updates it buys. At equal env steps the
    adaptive length (``segment_length="auto"``, with a constant learning rate) runs beside them."""
    from apg_jax.config import default_config
    from apg_jax.envs import make

    horizon = make(task).episode_length
    base = default_config(task, "apg", seed=ABLATION_SEEDS[0], num_evals=NUM_EVALS // 2, eval_seed=EVAL_SEED,
                          num_eval_envs=NUM_EVAL_ENVS)
    full_updates = BUDGETS[task] // (base.num_envs * horizon)
    configs = {}
    for k in ABLATION_SEGMENTS:
        if k is not None and k >= horizon:
            continue
        steps = BUDGETS[task] if axis == "env_steps" else full_updates * base.num_envs * (k or horizon)
        for bootstrap in ("mc", "critic"):
            configs[f"{task}-K{k or 'full'}-{bootstrap}-equal-{axis.replace('_', '-')}"] = base.replace(
                segment_length=k, bootstrap=bootstrap, env_steps=steps)
    if axis == "env_steps":  # the adaptive length against the fixed ones (its number of updates is its own)
        for bootstrap in ("mc", "critic"):
            configs[f"{task}-Kauto-{bootstrap}-equal-env-steps"] = default_config(
                task, "apg", seed=ABLATION_SEEDS[0], num_evals=NUM_EVALS // 2, eval_seed=EVAL_SEED,
                num_eval_envs=NUM_EVAL_ENVS, segment_length="auto", bootstrap=bootstrap, env_steps=BUDGETS[task])
    return configs


def finished_twin(task: str, axis: str, config, out: str) -> str | None:
    """The finished run under ``out`` of the other axis with the same configuration, if any (the full
    horizon is one configuration on both axes: it gets the whole budget in either)."""
    other = "updates" if axis == "env_steps" else "env_steps"
    for name, twin in ablation_configs(task, other).items():
        twin_dir = os.path.join(out, name)
        if twin == config and os.path.exists(os.path.join(twin_dir, "summary.json")):
            return twin_dir
    return None


def run_ablation(task: str, axis: str, out: str, progress: bool = True) -> list[str]:
    """Train (or resume) every ``ablation_configs(task, axis)`` run into ``out/<name>``; a finished run of
    the same configuration on the other axis is copied instead of trained again (same seeds, same result).
    Returns the run directories."""
    from experiments.runner import run_experiment

    done = []
    for name, config in ablation_configs(task, axis).items():
        run_dir = os.path.join(out, name)
        if not os.path.exists(os.path.join(run_dir, "summary.json")):
            twin = finished_twin(task, axis, config, out)
            if twin is not None:
                shutil.rmtree(run_dir, ignore_errors=True)
                shutil.copytree(twin, run_dir)
            else:
                run_experiment(config, len(ABLATION_SEEDS), run_dir, progress=progress)
        done.append(run_dir)
    return done


def export(run_root: str, to: str, skipped: list | None = None) -> list[str]:
    """Copy the ``KEPT_FILES`` found anywhere under ``run_root`` to the same relative path under ``to``
    (no checkpoints, no policies); returns the copied files. A run that has started (a checkpoint, or only a
    ``config.json`` and no ``metrics.csv`` yet) but not finished (neither the ``policy.msgpack`` nor the
    ``summary.json`` that a finished run or tuning trial leaves) is left out, its directory appended to
    ``skipped``: its partial files would read as a finished run's."""
    from apg_jax.rundir import CHECKPOINT, CONFIG, METRICS, POLICY, SUMMARY

    copied = []
    for root, _, files in os.walk(run_root):
        started = CHECKPOINT in files or (CONFIG in files and METRICS not in files)
        if started and not {POLICY, SUMMARY} & set(files):
            if skipped is not None:
                skipped.append(root)
            continue
        for name in sorted(set(files) & set(KEPT_FILES)):
            target = os.path.join(to, os.path.relpath(root, run_root))
            os.makedirs(target, exist_ok=True)
            shutil.copy2(os.path.join(root, name), os.path.join(target, name))
            copied.append(os.path.join(target, name))
    return sorted(copied)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.protocol", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("thresholds", help="compute the reference thresholds")
    t.add_argument("--out", required=True)
    f = sub.add_parser("final", help="train the final runs (resumable)")
    f.add_argument("--tasks", default=",".join(BUDGETS))
    f.add_argument("--methods", default="apg,ppo", help=f"comma-separated: {', '.join(METHODS)}")
    f.add_argument("--out", default="runs/comparison")
    f.add_argument("--max-chunks", type=int, default=None,
                   help="stop after this many evaluation chunks in all; the same command resumes")
    f.add_argument("--no-progress", action="store_true")
    a = sub.add_parser("ablation", help="segment length x bootstrap at equal env steps or equal updates")
    a.add_argument("--tasks", default=",".join(BUDGETS))
    a.add_argument("--axis", default="env_steps", choices=["env_steps", "updates"])
    a.add_argument("--out", default="runs/ablation")
    a.add_argument("--no-progress", action="store_true")
    e = sub.add_parser("export", help="copy the runs' small files into results/")
    e.add_argument("run_root")
    e.add_argument("--to", required=True)
    args = p.parse_args(argv)
    if args.command == "thresholds":
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as fh:
            json.dump(thresholds(), fh, indent=2)
        print(f"thresholds in {os.path.abspath(args.out)}")
    elif args.command == "final":
        tasks, methods = args.tasks.split(","), args.methods.split(",")
        unknown = [t for t in tasks if t not in BUDGETS] + [m for m in methods if m not in METHODS]
        if unknown:
            print(f"error: unknown {unknown}; tasks: {', '.join(BUDGETS)}; methods: {', '.join(METHODS)}",
                  file=sys.stderr)
            return 2
        for run_dir in run_final(tasks, methods, args.out, progress=not args.no_progress, max_chunks=args.max_chunks):
            print(run_dir)
    elif args.command == "ablation":
        unknown = [t for t in args.tasks.split(",") if t not in BUDGETS]
        if unknown:
            print(f"error: unknown task(s) {unknown}; the protocol covers {', '.join(BUDGETS)}", file=sys.stderr)
            return 2
        for task in args.tasks.split(","):
            for run_dir in run_ablation(task, args.axis, args.out, progress=not args.no_progress):
                print(run_dir)
    else:
        unfinished = []
        for target in export(args.run_root, args.to, unfinished):
            print(target)
        for run_dir in unfinished:
            print(f"left out (unfinished; the command that started it resumes it): {run_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
