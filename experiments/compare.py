"""The evidence protocol's comparison: robust statistics over the final runs, thresholds fixed in advance.

    python -m experiments.compare results/comparison/runs --thresholds results/comparison/thresholds.json \\
        --out results/comparison

Each argument is a run directory or a directory of them (``config.json`` + ``metrics.csv``); runs are
grouped by task, each run directory is one method, named by the directory (``<task>-<method>``). Per task and method, over
seeds: the final evaluation return and success and the area under the return curve (``apg_jax.statistics``:
interquartile mean and median with 95 % stratified-bootstrap intervals), the env steps, actor optimizer
steps and wall-clock at which each threshold of ``--thresholds`` (``experiments.protocol thresholds``,
fixed from references before any run) is first met by a seed (median over seeds, and how many seeds
met it), and the compute spent: actor optimizer steps and transitions passed through a backward pass
(APG and SHAC: each env transition once per update, the hybrid ``1 + reuse epochs``, PPO ``ppo_epochs``).
Every method against the task's ``<task>-ppo`` run: the probability of improvement (P(X > Y), Mann-Whitney) of final return, final
success and AUC, with intervals. A task's own evaluation metrics (``TASK_METRICS``: the T-block's maximum and
final coverage), where every seed logged them, get the same final-value statistics and probability of
improvement; the first of them (maximum coverage) also a row of the figure. Writes ``OUT/comparison.md``, ``OUT/summary.json`` (every number in
the tables, recomputable from the CSVs: ``tests/test_results_data.py``) and ``OUT/<task>_curves.png``
(IQM and 95 % band of return and success against env steps and wall-clock, thresholds dashed).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from apg_jax import statistics as st
from apg_jax.rundir import read_metrics
from experiments.report import Run, find_run_dirs

BOOTSTRAP_SEED = 0
REPS = 2000
CURVE_REPS = 500
AXES = (("env_steps", "env steps"), ("actor_grad_steps", "actor optimizer steps"), ("wall_time_s", "wall-clock [s]"))
#: a task's own evaluation metrics (metrics.csv column -> summary key), summarised where a run logs them
TASK_METRICS = {"eval_max_coverage": "final_max_coverage", "eval_final_coverage": "final_coverage"}


def load_runs(paths: list[str]) -> list[Run]:
    """Run directories named by their directory (``<task>-<method>``), not by their configuration."""
    runs = []
    for d in find_run_dirs(paths):
        with open(os.path.join(d, "config.json")) as f:
            runs.append(Run(os.path.basename(os.path.normpath(d)), json.load(f), read_metrics(os.path.join(d, "metrics.csv"))))
    return runs


def logs_metric(run: Run, column: str) -> bool:
    """Whether every seed of ``run`` logged a finite final value of ``column`` (older files hold NaN)."""
    return column in run.rows[0] and bool(np.all(np.isfinite(run.curve(column)[:, -1])))


def backward_passes(config: dict) -> int:
    """Times each env transition goes through a backward pass of the actor's loss."""
    if config["algo"] == "ppo":
        return int(config["ppo_epochs"])
    if config["algo"] == "hybrid":
        return 1 + int(config["hybrid_reuse_epochs"])
    return 1


def interval(scores, statistic, reps: int = REPS) -> list:
    point, low, high = st.stratified_bootstrap_ci(scores, statistic, reps=reps, seed=BOOTSTRAP_SEED)
    return [point, low, high]


def method_summary(run: Run, thresholds: list) -> dict:
    """Numbers of one method (run directory) on its task, see the module docstring."""
    returns, success = run.curve("eval_return"), run.curve("eval_success")
    steps = run.curve("env_steps")[0]
    auc = st.area_under_curve(steps, returns)
    out = {"name": run.name, "algo": run.config["algo"], "seeds": sorted({r["seed"] for r in run.rows}),
           "eval_seed": run.config.get("eval_seed"), "env_steps": float(steps[-1]),
           "evaluations": int(steps.size),
           "actor_optimizer_steps": float(np.mean(run.curve("actor_grad_steps")[:, -1])),
           "backward_transitions": float(steps[-1] * backward_passes(run.config)),
           "wall_time_s": float(np.mean(run.curve("wall_time_s")[:, -1]))}
    finals = [("final_return", returns[:, -1]), ("final_success", success[:, -1]), ("auc", auc)]
    finals += [(key, run.curve(column)[:, -1]) for column, key in TASK_METRICS.items() if logs_metric(run, column)]
    for key, values in finals:
        out[key] = {"mean": st.mean(values), "iqm": interval(values, st.interquartile_mean),
                    "median": interval(values, st.median), "per_seed": [float(v) for v in values]}
    out["thresholds"] = []
    for threshold in thresholds:
        curve = run.curve(threshold["column"])
        reached = {}
        for axis, _ in AXES:
            x = run.curve(axis)
            first = np.array([st.steps_to_threshold(x[i], curve[i], threshold["value"]) for i in range(len(x))])
            reached[axis] = {"median": float(np.median(first)), "per_seed": [float(v) for v in first]}
        out["thresholds"].append({**threshold, "seeds_reaching": int(np.sum(np.isfinite(first))), **reached})
    return out


def pairwise(methods: list[dict]) -> list[dict]:
    """P(method > PPO) for every method against the task's ``<task>-ppo`` run."""
    ppo = [m for m in methods if m["name"].endswith("-ppo")]
    out = []
    for reference in ppo:
        for m in methods:
            if m is reference:
                continue
            entry = {"method": m["name"], "against": reference["name"]}
            for key in ("final_return", "final_success", "auc", *TASK_METRICS.values()):
                if key not in m or key not in reference:
                    continue
                p, low, high = st.probability_of_improvement_ci(
                    m[key]["per_seed"], reference[key]["per_seed"], reps=REPS, seed=BOOTSTRAP_SEED)
                entry[key] = [p, low, high]
            out.append(entry)
    return out


def summarize(runs: list[Run], thresholds: dict) -> dict:
    summary = {}
    for task in sorted({r.task for r in runs}):
        methods = [method_summary(r, thresholds.get(task, [])) for r in sorted(runs, key=lambda r: r.name)
                   if r.task == task]
        starts = {m["eval_seed"] for m in methods}
        summary[task] = {"thresholds": thresholds.get(task, []), "paired_evaluation": len(starts) == 1
                         and None not in starts, "methods": methods, "probability_of_improvement": pairwise(methods)}
    return summary


def plot_task(runs: list[Run], task: str, thresholds: list, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mine = sorted((r for r in runs if r.task == task), key=lambda r: r.name)
    metrics = ["eval_return", "eval_success"] + [c for c in TASK_METRICS if all(logs_metric(r, c) for r in mine)][:1]
    fig, axes = plt.subplots(len(metrics), 2, figsize=(12, 3.5 * len(metrics)))
    top = -np.inf  # highest return drawn
    for i, run in enumerate(mine):
        for row, metric in enumerate(metrics):
            values = run.curve(metric)
            bands = np.array([interval(values[:, e], st.interquartile_mean, CURVE_REPS) for e in range(values.shape[1])])
            top = max(top, bands.max()) if metric == "eval_return" else top
            for col, (axis, label) in enumerate((AXES[0], AXES[2])):
                x = run.curve(axis).mean(0)
                ax = axes[row, col]
                ax.plot(x, bands[:, 0], color=f"C{i}", lw=2, label=f"{run.name} ({values.shape[0]} seeds)")
                ax.fill_between(x, bands[:, 1], bands[:, 2], color=f"C{i}", alpha=0.2)
                ax.set_xlabel(label)
                ax.set_ylabel(f"{metric.replace('eval_', 'evaluation ').replace('_', ' ')} (IQM)")
                ax.grid(alpha=0.3)
    for threshold in thresholds:
        if threshold["column"] in metrics:
            row = metrics.index(threshold["column"])
            for ax in axes[row]:
                ax.axhline(threshold["value"], color="k", ls="--", lw=1)
    for ax in axes[0]:  # returns span orders of magnitude between an untrained and a trained policy
        ax.set_yscale("symlog", linthresh=max([1.0, *(abs(t["value"]) for t in thresholds if t["column"] == "eval_return")]))
        ax.set_ylim(top=max(top, 0.0) + 0.5)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{task}: interquartile mean over seeds, 95 % stratified-bootstrap band; dashed: thresholds "
                 "(returns on a symlog axis)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _ci(triple, digits: int = 3) -> str:
    point, low, high = triple
    return f"{point:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _steps(value: float) -> str:
    return "not reached" if not np.isfinite(value) else f"{value:,.0f}"


def markdown(summary: dict) -> str:
    lines = ["# Comparison (evidence protocol)", "",
             "Per method: interquartile mean (IQM) and median over seeds with 95 % stratified-bootstrap "
             f"intervals ({REPS} resamples); AUC = evaluation return averaged over the budget. Thresholds are "
             "fixed from references before the runs; 'to threshold' is the median over seeds of the first "
             "evaluation that meets it (not reached counts as infinite), with the number of seeds that did.", ""]
    for task, data in summary.items():
        lines += [f"## {task}", "", "Evaluation starts shared by every run (paired): "
                  f"{'yes' if data['paired_evaluation'] else 'no'}.", ""]
        for t in data["thresholds"]:
            lines.append(f"- threshold: {t['column']} >= {t['value']:.4g} ({t['source']})")
        lines += ["", "| method | seeds | final return IQM | median | final success IQM | AUC IQM | actor optimizer "
                  "steps | backward transitions | wall-clock [s] |", "|---|---|---|---|---|---|---|---|---|"]
        for m in data["methods"]:
            lines.append(f"| {m['name']} | {len(m['seeds'])} | {_ci(m['final_return']['iqm'])} | "
                         f"{_ci(m['final_return']['median'])} | {_ci(m['final_success']['iqm'], 2)} | "
                         f"{_ci(m['auc']['iqm'])} | {m['actor_optimizer_steps']:,.0f} | "
                         f"{m['backward_transitions']:,.0f} | {m['wall_time_s']:.0f} |")
        if data["thresholds"]:
            lines += ["", "| method | threshold | seeds reaching | env steps | actor optimizer steps | wall-clock [s] |",
                      "|---|---|---|---|---|---|"]
            for m in data["methods"]:
                for t in m["thresholds"]:
                    lines.append(f"| {m['name']} | {t['column']} >= {t['value']:.4g} | {t['seeds_reaching']}/"
                                 f"{len(m['seeds'])} | {_steps(t['env_steps']['median'])} | "
                                 f"{_steps(t['actor_grad_steps']['median'])} | {_steps(t['wall_time_s']['median'])} |")
        extra = [key for key in TASK_METRICS.values() if all(key in m for m in data["methods"])]
        if extra:
            lines += ["", "| method | " + " | ".join(f"{key.replace('_', ' ')} IQM | median" for key in extra) + " |",
                      "|---|" + "---|---|" * len(extra)]
            for m in data["methods"]:
                lines.append(f"| {m['name']} | " + " | ".join(f"{_ci(m[key]['iqm'])} | {_ci(m[key]['median'])}"
                                                           for key in extra) + " |")
        if data["probability_of_improvement"]:
            keys = ["final_return", "final_success", "auc"] + [k for k in TASK_METRICS.values()
                                                                 if all(k in p for p in data["probability_of_improvement"])]
            lines += ["", "| P(method > against) | against | " + " | ".join(k.replace("_", " ").replace("auc", "AUC")
                                                                         for k in keys) + " |",
                      "|---|---|" + "---|" * len(keys)]
            for p in data["probability_of_improvement"]:
                lines.append(f"| {p['method']} | {p['against']} | " + " | ".join(_ci(p[k], 2) for k in keys) + " |")
        lines += ["", f"![{task}]({task}_curves.png)", ""]
    return "\n".join(lines)


def write_comparison(paths: list[str], thresholds_path: str | None, out: str, figures: bool = True) -> dict:
    runs = load_runs(paths)
    thresholds = {}
    if thresholds_path:
        with open(thresholds_path) as f:
            thresholds = json.load(f)
    summary = summarize(runs, thresholds)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(out, "comparison.md"), "w") as f:
        f.write(markdown(summary))
    if figures:
        for task in summary:
            plot_task(runs, task, summary[task]["thresholds"], os.path.join(out, f"{task}_curves.png"))
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run directories or directories of runs")
    p.add_argument("--thresholds", default=None, help="thresholds.json of experiments.protocol thresholds")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    write_comparison(args.runs, args.thresholds, args.out)
    print(f"comparison in {os.path.abspath(os.path.join(args.out, 'comparison.md'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
