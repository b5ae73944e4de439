"""Figures and a Markdown summary from run directories (of ``experiments.run`` or ``experiments.sweep``).

    python -m experiments.report runs/sweep --out results/cpu
    python -m experiments.report runs/pointmass1d-apg-Kfull-mc-seed0x5 runs/pointmass1d-ppo-seed0x5 --out rep

Each argument is a run directory (holding ``metrics.csv`` and ``config.json``) or a directory of them.
Writes to ``--out``: ``report.md``, ``summary.json`` (every number in the tables; the task's own evaluation
metrics too where every run logs them, e.g. tblock's coverage: ``final_max_coverage``) and per task
``<task>_curves.png`` (return and success against env steps, gradient steps and wall-clock; mean and 95 %
confidence band over seeds) and, where APG ran with several segment lengths, ``<task>_ablation.png``.

Threshold, per task: ``initial + 0.9 (best - initial)``, where ``initial`` is the mean evaluation return
before training over all runs of the task and ``best`` the best final mean return of any configuration:
90 % of the best improvement; with ``--thresholds FILE`` (``experiments.protocol thresholds``) the
task's first fixed threshold instead, on its own column (franka: ``eval_success`` 0.95). A configuration
reaches it at the first evaluation whose mean over seeds of that column (``eval_return`` unless fixed
otherwise) is at or above it (no interpolation between evaluations).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import numpy as np

from scipy import stats

from apg_jax import statistics as st
from apg_jax.rundir import read_metrics
from experiments.cli import config_name

THRESHOLD_FRACTION = 0.9
AXES = (("env_steps", "environment steps"), ("grad_steps", "actor gradient steps"), ("wall_time_s", "wall-clock [s]"))


@dataclasses.dataclass
class Run:
    name: str  #: configuration label, e.g. ``tblock-apg-K10-mc``
    config: dict
    rows: list  #: metrics.csv rows

    @property
    def task(self) -> str:
        return self.config["task"]

    def curve(self, key: str) -> np.ndarray:
        """``[seeds, evaluations]`` of column ``key``."""
        seeds = sorted({r["seed"] for r in self.rows})
        per_seed = [[r[key] for r in sorted((r for r in self.rows if r["seed"] == s), key=lambda r: r["chunk"])]
                    for s in seeds]
        length = min(len(c) for c in per_seed)
        return np.array([c[:length] for c in per_seed], float)


def mean_ci(values) -> tuple[float, float]:
    """Mean and half-width of the 95 % confidence interval over axis 0 (NaN width for one sample)."""
    values = np.asarray(values, float)
    n = values.shape[0]
    mean = values.mean(0)
    if n < 2:
        return mean, np.full_like(mean, np.nan)
    t = stats.t.ppf(0.975, n - 1)
    return mean, t * values.std(0, ddof=1) / np.sqrt(n)


def find_run_dirs(paths: list[str]) -> list[str]:
    found = []
    for path in paths:
        if os.path.exists(os.path.join(path, "metrics.csv")):
            found.append(path)
        elif os.path.isdir(path):
            found += sorted(os.path.join(path, d) for d in os.listdir(path)
                            if os.path.exists(os.path.join(path, d, "metrics.csv")))
    if not found:
        raise SystemExit(f"no run directories (with metrics.csv) found in {paths}")
    return found


def load_runs(paths: list[str]) -> list[Run]:
    from apg_jax.config import TrainConfig

    runs = []
    for d in find_run_dirs(paths):
        with open(os.path.join(d, "config.json")) as f:
            config = json.load(f)
        runs.append(Run(config_name(TrainConfig.from_dict(config)), config, read_metrics(os.path.join(d, "metrics.csv"))))
    return runs


def area_under_curve(env_steps: np.ndarray, returns: np.ndarray) -> np.ndarray:
    """Per seed, the evaluation return averaged over the run: ``[seeds]`` from ``env_steps, returns
    [seeds, evaluations]`` (``apg_jax.statistics.area_under_curve``; every seed has the same steps)."""
    return st.area_under_curve(env_steps[0], returns)


def first_reaching(x: np.ndarray, y: np.ndarray, threshold: float):
    hits = np.nonzero(y >= threshold)[0]
    return float(x[hits[0]]) if hits.size else None


def summarize(runs: list[Run], fixed_thresholds: dict | None = None) -> dict:
    """Per task: threshold and one entry per configuration (see the module docstring).
    ``fixed_thresholds`` (``experiments.protocol thresholds``' file): a task's first threshold there
    (column and value) replaces the return threshold derived from the runs."""
    out = {}
    for task in sorted({r.task for r in runs}):
        mine = [r for r in runs if r.task == task]
        initial = float(np.mean([r.curve("eval_return")[:, 0].mean() for r in mine]))
        best = max(float(r.curve("eval_return")[:, -1].mean()) for r in mine)
        fixed = (fixed_thresholds or {}).get(task, [])
        column = fixed[0]["column"] if fixed else "eval_return"
        threshold = fixed[0]["value"] if fixed else initial + THRESHOLD_FRACTION * (best - initial)
        entries = []
        extra = task_metrics(mine)
        horizon = _horizon(task)
        order = lambda r: (r.config["algo"], segment_order(r.config.get("segment_length"), horizon),
                           r.config.get("bootstrap"))
        for run in sorted(mine, key=order):
            ret, suc = run.curve("eval_return"), run.curve("eval_success")
            mean_column = run.curve(column).mean(0)
            ret_mean, ret_ci = mean_ci(ret[:, -1])
            suc_mean, suc_ci = mean_ci(suc[:, -1])
            auc_mean, auc_ci = mean_ci(area_under_curve(run.curve("env_steps"), ret))
            critic_loss = run.curve("critic_loss")[:, 1:]
            grad = run.curve("grad_norm")[:, 1:]
            entries.append({
                "name": run.name, "algo": run.config["algo"], "seeds": int(ret.shape[0]),
                "segment_length": run.config.get("segment_length"), "bootstrap": run.config.get("bootstrap"),
                "final_return": float(ret_mean), "final_return_ci": float(ret_ci),
                "final_success": float(suc_mean), "final_success_ci": float(suc_ci),
                **{f"final_{name}{suffix}": float(value) for name in extra
                   for suffix, value in zip(("", "_ci"), mean_ci(run.curve(f"eval_{name}")[:, -1]))},
                "auc": float(auc_mean), "auc_ci": float(auc_ci),
                "env_steps": float(run.curve("env_steps")[0, -1]),
                **{f"{key}_to_threshold": first_reaching(run.curve(key).mean(0), mean_column, threshold)
                   for key, _ in AXES},
                "grad_norm_median": float(np.nanmedian(grad)) if grad.size else None,
                "grad_norm_max": float(np.nanmax(grad)) if grad.size else None,
                "critic_loss_median": float(np.nanmedian(critic_loss)) if critic_loss.size else None,
            })
        ppo = [e for e in entries if e["algo"] == "ppo"]
        for e in entries:
            for key, _ in AXES:
                ref = ppo[0][f"{key}_to_threshold"] if ppo else None
                mine_ = e[f"{key}_to_threshold"]
                e[f"{key}_ratio_to_ppo"] = mine_ / ref if (mine_ is not None and ref) else None
        out[task] = {"initial_return": initial, "best_final_return": best, "threshold": threshold,
                     "threshold_column": column, **({"task_metrics": extra} if extra else {}),
                     "horizon": horizon, "configurations": entries}
    return out


def task_metrics(runs: list[Run]) -> list[str]:
    """The task's own evaluation metrics that every run logs (``eval_<name>`` columns other than return and
    success, e.g. tblock's ``max_coverage``), as ``<name>``s in a fixed order."""
    columns = [{key[5:] for key in r.rows[0] if key.startswith("eval_")} - {"return", "success"} for r in runs]
    return sorted(set.intersection(*columns)) if columns else []


def segment_order(segment_length, horizon: int) -> float:
    """Sort key of a segment length: the number, the horizon for ``None`` (full), after all for auto."""
    return float("inf") if segment_length == "auto" else float(segment_length or horizon)


def _horizon(task: str) -> int:
    from apg_jax.envs import make

    return make(task).episode_length


def plot_curves(runs: list[Run], task: str, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mine = sorted((r for r in runs if r.task == task), key=lambda r: r.name)
    fig, axes = plt.subplots(2, 3, figsize=(14, 7))
    for i, run in enumerate(mine):
        color = f"C{i % 10}"
        for row, metric in enumerate(("eval_return", "eval_success")):
            mean, ci = mean_ci(run.curve(metric))
            for col, (key, label) in enumerate(AXES):
                x = run.curve(key).mean(0)
                ax = axes[row, col]
                ax.plot(x, mean, color=color, lw=2, label=f"{run.name} ({run.curve(metric).shape[0]} seeds)")
                if np.all(np.isfinite(ci)):
                    low, high = mean - ci, mean + ci
                    if metric == "eval_success":
                        low, high = np.clip(low, 0, 1), np.clip(high, 0, 1)
                    ax.fill_between(x, low, high, color=color, alpha=0.2)
                ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
                ax.set_xlabel(label)
                ax.set_ylabel(metric.replace("eval_", "evaluation "))
                ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{task}: mean and 95 % confidence band over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_ablation(summary: dict, task: str, path: str) -> str | None:
    """Final return, AUC, env steps to threshold and gradient norms against segment length, per bootstrap;
    adaptive (``auto``) runs are horizontal lines with their confidence band."""
    entries = [e for e in summary[task]["configurations"] if e["algo"] == "apg"]
    horizon = summary[task]["horizon"]
    fixed = [e for e in entries if e["segment_length"] != "auto"]
    if len({e["segment_length"] or horizon for e in fixed}) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
    for n, bootstrap in enumerate(sorted({e["bootstrap"] for e in entries})):
        color = f"C{n}"
        rows = sorted((e for e in fixed if e["bootstrap"] == bootstrap), key=lambda e: e["segment_length"] or horizon)
        k = np.array([e["segment_length"] or horizon for e in rows], float)
        axes[0].errorbar(k, [e["final_return"] for e in rows], yerr=np.nan_to_num([e["final_return_ci"] for e in rows]),
                         marker="o", capsize=3, label=bootstrap, color=color)
        axes[1].errorbar(k, [e["auc"] for e in rows], yerr=np.nan_to_num([e["auc_ci"] for e in rows]),
                         marker="o", capsize=3, label=bootstrap, color=color)
        steps = [np.nan if e["env_steps_to_threshold"] is None else e["env_steps_to_threshold"] for e in rows]
        axes[2].plot(k, steps, marker="o", label=bootstrap, color=color)
        axes[3].plot(k, [e["grad_norm_median"] for e in rows], marker="x", ls="--", color=color, label=f"{bootstrap} median")
        axes[3].plot(k, [e["grad_norm_max"] for e in rows], marker="x", ls=":", color=color, label=f"{bootstrap} max")
        for auto in (e for e in entries if e["segment_length"] == "auto" and e["bootstrap"] == bootstrap):
            for ax, key in ((axes[0], "final_return"), (axes[1], "auc")):
                mean, ci = auto[key], np.nan_to_num(auto[f"{key}_ci"])
                ax.axhline(mean, color=color, ls="--", label=f"{bootstrap} auto")
                ax.axhspan(mean - ci, mean + ci, color=color, alpha=0.12)
            if auto["env_steps_to_threshold"] is not None:
                axes[2].axhline(auto["env_steps_to_threshold"], color=color, ls="--", label=f"{bootstrap} auto")
    for ax, label in zip(axes, ("final evaluation return", "mean return over the run (AUC)",
                                "env steps to threshold (missing: not reached)",
                                "actor gradient norm (before clipping)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel(f"segment length K (full horizon = {horizon})")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[3].set_yscale("log")
    fig.suptitle(f"{task}: APG segment-length and bootstrap ablation (dashed: adaptive K)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_segment_lengths(runs: list[Run], task: str, path: str) -> str | None:
    """The segment length in use against env steps for the adaptive runs (thin: seeds, thick: mean)."""
    mine = sorted((r for r in runs if r.task == task and r.config.get("segment_length") == "auto"),
                  key=lambda r: r.name)
    if not mine:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    for i, run in enumerate(mine):
        edges, k = run.curve("env_steps").mean(0), run.curve("segment_length")[:, 1:]  # K used between points
        for seed_k in k:
            ax.stairs(seed_k, edges, baseline=None, color=f"C{i}", alpha=0.3, lw=0.8)
        ax.stairs(k.mean(0), edges, baseline=None, color=f"C{i}", lw=2, label=f"{run.name} (mean of seeds)")
    ax.set_yscale("log", base=2)
    ax.set_xlabel("env steps")
    ax.set_ylabel("segment length K in use")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle(f"{task}: adaptive segment length")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _fmt(value, ci=None, digits=3) -> str:
    if value is None:
        return "not reached"
    text = f"{value:.{digits}g}" if abs(value) >= 1e4 else f"{value:.{digits}f}"
    if ci is not None:
        text += " ± n/a" if not np.isfinite(ci) else f" ± {ci:.{digits}f}"
    return text


def _steps(value) -> str:
    return "not reached" if value is None else f"{value:,.0f}"


def markdown(summary: dict, figures: dict) -> str:
    lines = ["# Results", "",
             f"Threshold per task (unless fixed by --thresholds, as in the task's line below): initial return + "
             f"{THRESHOLD_FRACTION:.0%} of the best improvement of any configuration; steps are those of the first evaluation whose seed mean of the threshold's column (the return unless the line names another) reaches it. "
             "± is the 95 % confidence half-width over seeds; AUC is the evaluation return averaged over the "
             "run (area under the learning curve over env steps, per seed); ratios are this row / PPO "
             "(below 1: fewer).", ""]
    for task, data in summary.items():
        extra = data.get("task_metrics", [])
        lines += [f"## {task}", "",
                  f"Initial return {data['initial_return']:.3f}, best final {data['best_final_return']:.3f}, "
                  f"threshold {data['threshold']:.3f}"
                  f"{'' if data['threshold_column'] == 'eval_return' else ' on ' + data['threshold_column']}.", "",
                  "| configuration | seeds | env steps | final return | final success | "
                  + "".join(f"last evaluation's {name.replace('_', ' ')} | " for name in extra)
                  + "mean return over the run (AUC) | env steps to thr. | grad steps to thr. | wall-clock to thr. [s] | "
                  "env-step ratio | grad-step ratio |",
                  "|---|---|---|---|---|" + "---|" * len(extra) + "---|---|---|---|---|---|"]
        for e in data["configurations"]:
            ratio = lambda key: "—" if e[key] is None else f"{e[key]:.3f}"
            lines.append(
                f"| {e['name']} | {e['seeds']} | {_steps(e['env_steps'])} | {_fmt(e['final_return'], e['final_return_ci'])} | "
                f"{_fmt(e['final_success'], e['final_success_ci'], 2)} | "
                + "".join(f"{_fmt(e['final_' + name], e['final_' + name + '_ci'])} | " for name in extra)
                + f"{_fmt(e['auc'], e['auc_ci'])} | "
                f"{_steps(e['env_steps_to_threshold'])} | "
                f"{_steps(e['grad_steps_to_threshold'])} | {_fmt(e['wall_time_s_to_threshold'], digits=1)} | "
                f"{ratio('env_steps_ratio_to_ppo')} | {ratio('grad_steps_ratio_to_ppo')} |")
        lines.append("")
        for fig in figures.get(task, []):
            lines += [f"![{task}]({os.path.basename(fig)})", ""]
    return "\n".join(lines)


def write_report(paths: list[str], out: str, thresholds_path: str | None = None) -> dict:
    runs = load_runs(paths)
    fixed = None
    if thresholds_path:
        with open(thresholds_path) as f:
            fixed = json.load(f)
    summary = summarize(runs, fixed)
    os.makedirs(out, exist_ok=True)
    figures = {}
    for task in summary:
        figures[task] = [plot_curves(runs, task, os.path.join(out, f"{task}_curves.png"))]
        ablation = plot_ablation(summary, task, os.path.join(out, f"{task}_ablation.png"))
        lengths = plot_segment_lengths(runs, task, os.path.join(out, f"{task}_segment_length.png"))
        figures[task] += [fig for fig in (ablation, lengths) if fig]
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(markdown(summary, figures))
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run directories or directories of runs")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--thresholds", default=None,
                   help="thresholds.json of experiments.protocol: a task's first threshold replaces the derived one")
    args = p.parse_args(argv)
    write_report(args.runs, args.out, args.thresholds)
    print(f"report in {os.path.abspath(os.path.join(args.out, 'report.md'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
