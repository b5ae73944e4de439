"""Rebuild every table and figure of ``results/`` (and the README's results block) from the run data
committed there.

    python -m experiments.regenerate            # everything
    python -m experiments.regenerate --list     # what would be rebuilt, from which data

``JOBS`` lists each output folder with the module that writes it and the committed run directories it
reads (globs relative to the repository root). ``tests/test_results_data.py`` recomputes every
``summary.json`` of a ``report`` or ``compare`` job from its committed CSVs and checks it equals the
committed one. Folders of ``results/`` that are not in ``JOBS`` predate the rule that run data lives in
git: their numbers cannot be rebuilt (``results/README.md`` marks them).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
README_BEGIN = "<!-- results:begin (written by python -m experiments.regenerate) -->"
README_END = "<!-- results:end -->"


def _adaptive_v2(task: str) -> list[str]:
    """The fixed-K mc runs of ``adaptive-<task>`` (tblock: of ``adaptive-v2``) beside the v2 auto run."""
    if task == "tblock":
        return ["results/adaptive-v2/runs/tblock-apg-K*-mc"]
    return ["results/adaptive-%s/runs/%s-apg-K[0-9f]*-mc" % (task, task), f"results/adaptive-v2/runs/{task}-apg-Kauto-mc"]


#: the fixed-K runs the later versions of the adaptive length are compared with, per task
ADAPTIVE_FIXED = {"pointmass1d": ["results/ablation-protocol/runs/pointmass1d-K[0-9f]*-equal-env-steps"],
                  "pointmass2d": ["results/ablation-protocol/runs/pointmass2d-K[0-9f]*-equal-env-steps"],
                  "franka": ["results/adaptive-franka/runs/franka-apg-K[0-9f]*-mc"]}

#: the nominal pointmass2d runs of ``hybrid-v2`` (its near-hard ones end in ``-contact_width1e-06``)
HYBRID_V2_POINTMASS2D = [f"results/hybrid-v2/runs/pointmass2d-{name}"
                         for name in ("apg-K8-critic", "hybrid-K8-critic-reuse8-gae", "ppo")]

#: (output folder, module, input globs, extra arguments)
JOBS = [
    *[(f"results/adaptive-{task}", "report", [f"results/adaptive-{task}/runs"], [])
      for task in ("pointmass1d", "pointmass2d", "franka", "tblock")],
    *[(f"results/adaptive-v2/{task}", "report", _adaptive_v2(task), [])
      for task in ("pointmass1d", "pointmass2d", "franka", "tblock")],
    *[(f"results/{version}/{task}", "report", [*fixed, f"results/{version}/runs/{task}-Kauto-*"], [])
      for version in ("adaptive-v3", "adaptive-v4") for task, fixed in ADAPTIVE_FIXED.items()],
    *[(f"results/{version}/{task}", "report", [f"results/ablation-protocol/runs/{task}-K*-equal-env-steps",
                                                f"results/{version}/runs/{task}-Kauto-*"],
       ["--thresholds", "results/comparison/thresholds.json"])
      for version in ("adaptive-v5", "adaptive-v6") for task in ("pointmass1d", "pointmass2d", "franka")],
    # reliability over a chunk of updates, beside every fixed K and the plain rule's auto of the ablation
    *[(f"results/adaptive-v7/{task}", "report", [f"results/ablation-protocol/runs/{task}-K*-equal-env-steps",
                                                 f"results/adaptive-v7/runs/{task}-Kauto-*"],
       ["--thresholds", "results/comparison/thresholds.json"])
      for task in ("pointmass1d", "pointmass2d", "franka", "tblock")],
    ("results/hybrid-pointmass2d-hard", "report", ["results/hybrid-pointmass2d-hard/runs"], []),
    ("results/hybrid-tblock", "report", ["results/hybrid-tblock/runs"], []),
    # one-setting variants of the hybrid / APG on tblock, seed 1000 (paired with the final runs' seed 1000)
    ("results/hybrid-isolation", "report", ["results/hybrid-isolation/runs"], []),
    # the hybrid's second version beside APG and PPO at their current defaults (tblock: hybrid-tblock's)
    ("results/hybrid-v2/pointmass2d-hard", "report", ["results/hybrid-v2/runs/pointmass2d-*-contact_width1e-06"],
     ["--thresholds", "results/comparison/thresholds.json"]),
    ("results/hybrid-v2/ablation", "report", ["results/hybrid-v2/ablation-runs/*",
                                              "results/hybrid-v2/runs/pointmass2d-hybrid-*-contact_width1e-06"],
     ["--thresholds", "results/comparison/thresholds.json"]),
    # v2 with APG's unused init_log_std -1.094 instead of PPO's -0.394 (its own folder: the label is the same)
    ("results/hybrid-v2/ablation-std", "report", ["results/hybrid-v2/ablation-std-runs"],
     ["--thresholds", "results/comparison/thresholds.json"]),
    ("results/hybrid-v2/smooth", "report", ["results/hybrid-v2/runs/pointmass1d-*", *HYBRID_V2_POINTMASS2D],
     ["--thresholds", "results/comparison/thresholds.json"]),
    ("results/hybrid-v2/tblock", "report", [*(f"results/hybrid-tblock/runs/tblock-{name}" for name in ("apg-K10-mc", "ppo")),
                                            "results/hybrid-v2/runs/tblock-hybrid-*"],
     ["--thresholds", "results/comparison/thresholds.json"]),
    # the split-batch hybrid (hybrid_explore_fraction 0.25) beside hybrid-v2's runs on the near-hard contact,
    # and its tblock variants (seed 1000 alone, seeds 1001-1004 together)
    ("results/hybrid-split/pointmass2d-hard", "report", ["results/hybrid-v2/runs/pointmass2d-*-contact_width1e-06",
                                                         "results/hybrid-split/runs/pointmass2d-*"],
     ["--thresholds", "results/comparison/thresholds.json"]),
    ("results/hybrid-split/tblock", "trials", ["results/hybrid-split/tblock-runs"], []),
    *[(f"results/ablation-protocol/{task}-equal-{axis}", "report", [f"results/ablation-protocol/runs/{task}-K*-equal-{axis}"],
       ["--thresholds", "results/comparison/thresholds.json"])
      for task in ("pointmass1d", "pointmass2d", "franka", "tblock") for axis in ("env-steps", "updates")],
    ("results/tblock-tuning", "trials", ["results/tblock-tuning/runs"], []),
    ("results/tblock-finetune", "trials", ["results/tblock-finetune/runs"], []),
    ("results/tblock-apg-long", "trials", ["results/tblock-apg-long/runs"], []),
    ("results/tblock-default-variants", "trials", ["results/tblock-default-variants/runs"], []),
    ("results/tblock-batch", "trials", ["results/tblock-batch/runs"], []),
    ("results/tblock-horizon", "trials", ["results/tblock-horizon/runs"], []),
    *[(f"results/tuning/{name}", "trials", [f"results/tuning/{name}/trials"], [])
      for name in (f"{task}-{algo}" for task in ("pointmass1d", "pointmass2d", "franka", "tblock")
                   for algo in ("apg", "ppo", "brax_ppo"))],
    # the training horizon of tblock's defaults: 50 / 100 / 150 / 300 steps for both learners on the tuning
    # seeds (300: the searches' best trials, tuning/tblock-{apg,ppo} trial 2 / 0)
    ("results/tuning/tblock-horizon", "trials", ["results/tuning/tblock-horizon/trials"], []),
    # then at that horizon, one setting at a time: the curriculum (both learners), APG's segment length and
    # PPO's rollout length (the baseline of each is the horizon grid's run); and the contact-gradient
    # surrogate from scratch (APG, tuning seeds)
    ("results/tuning/tblock-curriculum", "trials", ["results/tuning/tblock-curriculum/trials"], []),
    ("results/tuning/tblock-curriculum-confirm", "trials", ["results/tuning/tblock-curriculum-confirm/trials"], []),
    ("results/tblock-surrogate", "trials", ["results/tblock-surrogate/runs"], []),
    # a joint pass (stops 58-59): each setting's close values re-run at the other's new value on all five
    # tuning seeds (100-104); it chose PPO's rollouts of 32 and APG's curriculum 0.3
    ("results/tuning/tblock-curriculum-joint", "trials", ["results/tuning/tblock-curriculum-joint/trials"], []),
    # how far longer budgets get (issue 14): both learners' final tblock defaults at 10 M and 20 M env steps
    # on tuning seeds 100-101, and 20 M on 102-104 (learning rate and curriculum stretched over the run)
    ("results/tblock-budget", "trials", ["results/tblock-budget/runs"], []),
    ("results/comparison", "compare", ["results/comparison/runs"],
     ["--thresholds", "results/comparison/thresholds.json"]),
    # tblock's hybrid and SHAC final runs with 30 s training episodes (APG's tblock settings until stop 56),
    # replaced in comparison/ by their re-runs on the tuned horizon (stops 57-58)
    ("results/tblock-comparison-stop56", "compare", ["results/tblock-comparison-stop56/runs"],
     ["--thresholds", "results/comparison/thresholds.json"]),
    # tblock's APG and PPO final runs at stop 57's defaults (APG K = 64, PPO curriculum 0.6), replaced in
    # comparison/ by their re-runs on the second grid's settings (stop 58), and APG at K = 16 (the second
    # grid's pick on 2 seeds, before its close values were re-run on 3 more) and PPO at curriculum 0.3 with
    # rollouts of 64 (stop 58's default, before the joint pass); APG at curriculum 0.6 (stop 58's default)
    # and the hybrid's split batch at stop 57's APG settings, replaced by their stop-59 re-runs
    ("results/tblock-comparison-stop57", "compare", ["results/tblock-comparison-stop57/runs"],
     ["--thresholds", "results/comparison/thresholds.json"]),
    # tblock's first protocol comparison, with issue 14's defaults (replaced by the tuned ones at stop 47)
    ("results/tblock-comparison-issue14", "compare", ["results/tblock-comparison-issue14/runs"],
     ["--thresholds", "results/comparison/thresholds.json"]),
]


def inputs(patterns: list[str]) -> list[str]:
    found = []
    for pattern in patterns:
        found += sorted(glob.glob(os.path.join(ROOT, pattern)))
    return found


def available_jobs() -> list[tuple]:
    """``JOBS`` whose input data is present (a protocol step not yet run has none)."""
    return [job for job in JOBS if inputs(job[2])]


def readme_block() -> str:
    """The README's results block: the comparison's headline table, from its summary.json."""
    path = os.path.join(ROOT, "results", "comparison", "summary.json")
    if not os.path.exists(path):
        return "No protocol comparison has been run yet (see results/README.md, \"Protocol\")."
    with open(path) as f:
        summary = json.load(f)
    lines = ["| task | method | seeds | final return IQM [95 % CI] | final success IQM | AUC IQM | env steps to the "
             "first threshold (median; seeds reaching) | P(method > PPO), final return |", "|---|---|---|---|---|---|---|---|"]
    for task, data in summary.items():
        against = {p["method"]: p["final_return"] for p in data["probability_of_improvement"]}
        for m in data["methods"]:
            ret, suc, auc = m["final_return"]["iqm"], m["final_success"]["iqm"], m["auc"]["iqm"]
            p = against.get(m["name"])
            reach = "—"
            if m["thresholds"]:
                t = m["thresholds"][0]
                steps = t["env_steps"]["median"]
                reach = f"{'not reached' if steps == float('inf') else f'{steps:,.0f}'} ({t['seeds_reaching']}/{len(m['seeds'])})"
            lines.append(f"| {task} | {m['name']} | {len(m['seeds'])} | {ret[0]:.3f} [{ret[1]:.3f}, {ret[2]:.3f}] | "
                         f"{suc[0]:.2f} | {auc[0]:.3f} | {reach} | "
                         f"{'—' if p is None else f'{p[0]:.2f} [{p[1]:.2f}, {p[2]:.2f}]'} |")
    notes = []  # a task's own metric (the T-block's coverage), where its runs logged it
    for task, data in summary.items():
        covered = [m for m in data["methods"] if "final_max_coverage" in m]
        if covered:
            notes.append(f"{task}, final maximum coverage IQM [95 % CI]: " + "; ".join(
                "{} {:.3f} [{:.3f}, {:.3f}]".format(m["name"], *m["final_max_coverage"]["iqm"]) for m in covered) + ".")
    return "\n".join(lines + ([""] + notes if notes else []))


def write_readme_block() -> None:
    with open(README) as f:
        text = f.read()
    if README_BEGIN not in text or README_END not in text:
        raise SystemExit(f"README.md has no results block ({README_BEGIN} ... {README_END})")
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    with open(README, "w") as f:
        f.write(f"{head}{README_BEGIN}\n{readme_block()}\n{README_END}{tail}")


def run_job(out: str, module: str, patterns: list[str], extra: list[str]) -> None:
    from experiments import compare, report, trials

    paths = inputs(patterns)
    target = os.path.join(ROOT, out)
    thresholds = os.path.join(ROOT, extra[extra.index("--thresholds") + 1]) if "--thresholds" in extra else None
    if module == "report":
        report.write_report(paths, target, thresholds)
    elif module == "compare":
        compare.write_comparison(paths, thresholds, target)
    elif module == "trials":
        trials.main([*paths, "--out", target])
    else:
        raise ValueError(f"unknown module {module}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.regenerate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list", action="store_true", help="print the jobs and their inputs, rebuild nothing")
    args = p.parse_args(argv)
    for out, module, patterns, extra in available_jobs():
        if args.list:
            print(f"{out} <- {module} {' '.join(os.path.relpath(d, ROOT) for d in inputs(patterns))}")
        else:
            run_job(out, module, patterns, extra)
            print(f"rebuilt {out}", flush=True)
    if not args.list:
        write_readme_block()
        print("rebuilt the README's results block")
    return 0


if __name__ == "__main__":
    sys.exit(main())
