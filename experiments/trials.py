"""Compare tuning trials: one curve and one table row per run directory, labelled by the directory's name.

    python -m experiments.trials results/tblock-tuning/runs --out results/tblock-tuning

Unlike ``experiments.report`` (which pools the seeds of one configuration label and compares
algorithms), trials that share a label but differ in any setting stay apart. Writes ``OUT/trials.md`` (a
table: the settings that differ from the trials' common ones, final and best evaluation, every ``eval_*``
column at the end) and ``OUT/trials.png`` (evaluation return and each task metric against env steps and
wall-clock; PPO dashed). Numbers are means over the seeds of a run at each evaluation.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from apg_jax.rundir import read_metrics

SKIP = {"seed", "num_seeds", "env_params"}


def load(root: str) -> dict:
    """``{name: (config dict, rows)}`` of the run directories under ``root``."""
    trials = {}
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if os.path.isfile(os.path.join(path, "metrics.csv")) and os.path.isfile(os.path.join(path, "config.json")):
            with open(os.path.join(path, "config.json")) as f:
                config = json.load(f)
            trials[name] = (config, read_metrics(path))
    if not trials:
        raise ValueError(f"no run directories (config.json + metrics.csv) under {root}")
    return trials


def settings(config: dict) -> dict:
    flat = {k: v for k, v in config.items() if k not in SKIP}
    flat.update({f"env.{k}": v for k, v in config.get("env_params", {}).items()})
    return flat


def differing(trials: dict) -> list:
    """Setting names whose values are not the same in every trial."""
    all_settings = [settings(c) for c, _ in trials.values()]
    names = sorted(set().union(*all_settings))
    return [n for n in names if len({json.dumps(s.get(n), sort_keys=True) for s in all_settings}) > 1]


def curve(rows: list, key: str):
    """``(env_steps [E], wall [E], mean over seeds of key [E])``."""
    steps = sorted({r["env_steps"] for r in rows})
    by_step = [[r for r in rows if r["env_steps"] == s] for s in steps]
    return (np.array(steps, float), np.array([np.mean([r["wall_time_s"] for r in g]) for g in by_step]),
            np.array([np.mean([r[key] for r in g]) for g in by_step]))


def table(trials: dict) -> str:
    keys = differing(trials)
    extra = sorted({k for _, rows in trials.values() for k in rows[0] if k.startswith("eval_")}
                   - {"eval_return", "eval_success"})
    head = ["trial", *keys, "env steps", "wall [s]", "final return", "best return", "final success",
            *[f"final {k[5:]}" for k in extra]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, (config, rows) in trials.items():
        flat = settings(config)
        steps, wall, ret = curve(rows, "eval_return")
        cells = [name, *[json.dumps(flat.get(k)) for k in keys], f"{steps[-1] / 1e6:.2f} M", f"{wall[-1]:.0f}",
                 f"{ret[-1]:.1f}", f"{np.max(ret):.1f}", f"{curve(rows, 'eval_success')[2][-1]:.3f}",
                 *[f"{curve(rows, k)[2][-1]:.3f}" for k in extra]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(trials: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first_rows = next(iter(trials.values()))[1]
    keys = ["eval_return", "eval_success"] + sorted(k for k in first_rows[0] if k.startswith("eval_")
                                                    and k not in ("eval_return", "eval_success"))
    fig, axes = plt.subplots(len(keys), 2, figsize=(11, 3.2 * len(keys)), squeeze=False)
    colors = plt.get_cmap("tab20").colors
    for n, (name, (config, rows)) in enumerate(trials.items()):
        style = dict(label=name, color=colors[n % len(colors)], ls="--" if config.get("algo") == "ppo" else "-")
        for i, key in enumerate(keys):
            steps, wall, y = curve(rows, key)
            axes[i, 0].plot(steps, y, **style)
            axes[i, 1].plot(wall, y, **style)
    for i, key in enumerate(keys):
        for j, xlabel in enumerate(("environment steps", "wall-clock [s]")):
            axes[i, j].set_xlabel(xlabel)
            axes[i, j].set_ylabel(key)
            axes[i, j].grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", help="a directory of run directories (one per trial)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    try:
        trials = load(args.root)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "trials.md"), "w") as f:
        f.write(table(trials))
    plot(trials, os.path.join(args.out, "trials.png"))
    print(f"{len(trials)} trials: {os.path.join(args.out, 'trials.md')}, {os.path.join(args.out, 'trials.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
