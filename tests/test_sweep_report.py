"""Sweeps (grid, resume, seed sharding) and reports (numbers implied by synthetic runs)."""
import csv
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from apg_jax.config import default_config
from experiments import report, sweep
from apg_jax.rundir import COLUMNS, read_metrics
from experiments.runner import run_experiment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_synthetic_run(path, config, env_steps, grad_steps, returns_per_seed):
    os.makedirs(path)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({**dataclasses.asdict(config), "num_seeds": len(returns_per_seed)}, f)
    with open(os.path.join(path, "metrics.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for seed, returns in enumerate(returns_per_seed):
            for chunk, (e, g, r) in enumerate(zip(env_steps, grad_steps, returns)):
                row = {c: 0.0 for c in COLUMNS}
                row.update(algo=config.algo, task=config.task, seed=seed, chunk=chunk, env_steps=e, grad_steps=g,
                           actor_grad_steps=g, critic_grad_steps=0, wall_time_s=0.5 * chunk, eval_return=r,
                           eval_success=float(r > -1.95), grad_norm=10.0 * (1 + seed))
                writer.writerow(row)


@pytest.fixture
def synthetic_runs(tmp_path):
    apg = np.array([-10.0, -5.0, -2.0, -1.0, -1.0])
    ppo = np.array([-10.0, -8.0, -6.0, -1.8, -1.5])
    offsets = (-0.1, 0.0, 0.1)
    steps = [0, 100, 200, 300, 400]
    write_synthetic_run(tmp_path / "a", default_config("pointmass1d", "apg"), steps, [0, 1, 2, 3, 4],
                        [apg + o for o in offsets])
    write_synthetic_run(tmp_path / "b", default_config("pointmass1d", "ppo"), [2 * s for s in steps],
                        [0, 10, 20, 30, 40], [ppo + o for o in offsets])
    write_synthetic_run(tmp_path / "c", default_config("pointmass1d", "apg", segment_length=50, bootstrap="critic"),
                        steps, [0, 2, 4, 6, 8], [apg - 3 + 3 * (apg == -10) + o for o in offsets])
    return tmp_path


def test_report_tables_hold_the_numbers_the_synthetic_runs_imply(synthetic_runs, tmp_path):
    out = tmp_path / "report"
    summary = report.write_report([str(synthetic_runs)], str(out))["pointmass1d"]
    assert summary["initial_return"] == pytest.approx(-10.0)
    assert summary["best_final_return"] == pytest.approx(-1.0)
    assert summary["threshold"] == pytest.approx(-1.9)
    rows = {e["name"]: e for e in summary["configurations"]}
    apg, ppo, critic = rows["pointmass1d-apg-Kfull-mc"], rows["pointmass1d-ppo"], rows["pointmass1d-apg-K50-critic"]
    assert apg["final_return"] == pytest.approx(-1.0)
    assert apg["final_return_ci"] == pytest.approx(4.303 * 0.1 / np.sqrt(3), rel=1e-3)
    assert apg["env_steps_to_threshold"] == 300 and ppo["env_steps_to_threshold"] == 600
    assert apg["grad_steps_to_threshold"] == 3 and ppo["grad_steps_to_threshold"] == 30
    assert apg["env_steps_ratio_to_ppo"] == pytest.approx(0.5)
    assert apg["grad_steps_ratio_to_ppo"] == pytest.approx(0.1)
    assert critic["env_steps_to_threshold"] is None  # final -4: never within 90 % of the best
    assert apg["grad_norm_median"] == pytest.approx(20.0) and apg["grad_norm_max"] == pytest.approx(30.0)
    # AUC: trapezoids of [-10, -5, -2, -1, -1] over equal steps = (-7.5 - 3.5 - 1.5 - 1) / 4; the seed
    # offsets (-0.1, 0, 0.1) carry over unchanged
    assert apg["auc"] == pytest.approx(-3.375) and apg["auc_ci"] == pytest.approx(4.303 * 0.1 / np.sqrt(3), rel=1e-3)
    # a threshold fixed in advance replaces the derived one: the critic run (final -4) now reaches it
    fixed = {"pointmass1d": [{"column": "eval_return", "value": -4.5, "source": "test"}]}
    (tmp_path / "thr.json").write_text(json.dumps(fixed))
    refixed = report.write_report([str(synthetic_runs)], str(tmp_path / "fixed"), str(tmp_path / "thr.json"))
    assert refixed["pointmass1d"]["threshold"] == -4.5
    assert {e["name"]: e for e in refixed["pointmass1d"]["configurations"]}["pointmass1d-apg-K50-critic"][
        "env_steps_to_threshold"] is not None
    assert refixed["pointmass1d"]["threshold_column"] == "eval_return" and summary["threshold_column"] == "eval_return"
    # a fixed threshold on another column is met on that column's seed mean: success (return > -1.95 per
    # seed) reaches 1/3 at APG's 3rd evaluation (returns -2.1, -2.0, -1.9; on the return it was the 4th)
    # and PPO's 4th (-1.9, -1.8, -1.7)
    on_success = {"pointmass1d": [{"column": "eval_success", "value": 0.3, "source": "test"}]}
    (tmp_path / "thr-success.json").write_text(json.dumps(on_success))
    by_success = report.write_report([str(synthetic_runs)], str(tmp_path / "succ"), str(tmp_path / "thr-success.json"))
    rows_s = {e["name"]: e for e in by_success["pointmass1d"]["configurations"]}
    assert by_success["pointmass1d"]["threshold_column"] == "eval_success"
    assert rows_s["pointmass1d-apg-Kfull-mc"]["env_steps_to_threshold"] == 200
    assert rows_s["pointmass1d-ppo"]["env_steps_to_threshold"] == 600
    assert rows_s["pointmass1d-apg-K50-critic"]["env_steps_to_threshold"] is None  # returns never above -1.95
    assert "threshold 0.300 on eval_success." in (tmp_path / "succ" / "report.md").read_text()
    text = (out / "report.md").read_text()
    assert "| pointmass1d-apg-Kfull-mc | 3 | 400 | -1.000 ± 0.248 | 1.00 ± 0.00 | -3.375 ± 0.248 |" in text
    assert "not reached" in text and "| 0.500 | 0.100 |" in text
    for name in ("pointmass1d_curves.png", "pointmass1d_ablation.png"):
        assert (out / name).stat().st_size > 20_000  # a drawn figure, not an empty canvas


def test_report_places_adaptive_runs_after_fixed_lengths_and_plots_their_length(synthetic_runs, tmp_path):
    auto = default_config("pointmass1d", "apg", segment_length="auto")
    write_synthetic_run(synthetic_runs / "d", auto, [0, 100, 200, 300, 400], [0, 8, 12, 14, 15],
                        [np.array([-10.0, -4.0, -2.0, -1.0, -0.9]) + o for o in (-0.1, 0.0, 0.1)])
    with open(synthetic_runs / "d" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    for row in rows:  # lengths 4 -> 8 -> 16 -> 16 over the chunks
        row["segment_length"] = [float("nan"), 4, 8, 16, 16][int(row["chunk"])]
    with open(synthetic_runs / "d" / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "report"
    summary = report.write_report([str(synthetic_runs)], str(out))["pointmass1d"]
    names = [e["name"] for e in summary["configurations"] if e["algo"] == "apg"]
    assert names == ["pointmass1d-apg-K50-critic", "pointmass1d-apg-Kfull-mc", "pointmass1d-apg-Kauto-mc"]
    entry = summary["configurations"][2]
    assert entry["segment_length"] == "auto" and entry["final_return"] == pytest.approx(-0.9)
    assert (out / "pointmass1d_segment_length.png").stat().st_size > 10_000
    assert "pointmass1d_segment_length.png" in (out / "report.md").read_text()


def test_report_gives_the_task_metrics_that_every_run_logs(tmp_path):
    """tblock's coverage columns get their own final mean and interval; a metric one run lacks is left out."""
    def write(path, config, coverage_per_seed, with_final_coverage):
        write_synthetic_run(path, config, [0, 100], [0, 1], [np.array([-400.0, -300.0])] * len(coverage_per_seed))
        with open(path / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
        extra = ["eval_max_coverage"] + (["eval_final_coverage"] if with_final_coverage else [])
        for row in rows:
            row["eval_max_coverage"] = coverage_per_seed[int(row["seed"])] * int(row["chunk"])
            if with_final_coverage:
                row["eval_final_coverage"] = 0.5
        with open(path / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS + extra)
            writer.writeheader()
            writer.writerows(rows)

    write(tmp_path / "runs" / "a", default_config("tblock", "apg"), [0.6, 0.7, 0.8], True)
    write(tmp_path / "runs" / "b", default_config("tblock", "ppo"), [0.5, 0.5], False)
    summary = report.write_report([str(tmp_path / "runs")], str(tmp_path / "report"))["tblock"]
    assert summary["task_metrics"] == ["max_coverage"]
    rows = {e["algo"]: e for e in summary["configurations"]}
    assert rows["apg"]["final_max_coverage"] == pytest.approx(0.7)
    assert rows["apg"]["final_max_coverage_ci"] == pytest.approx(4.303 * 0.1 / np.sqrt(3), rel=1e-3)
    assert rows["ppo"]["final_max_coverage"] == pytest.approx(0.5) and "final_final_coverage" not in rows["apg"]
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| final success | last evaluation's max coverage | mean return" in text and "| 0.700 ± 0.248 |" in text


def test_report_rejects_directories_without_runs(tmp_path):
    with pytest.raises(SystemExit, match="no run directories"):
        report.write_report([str(tmp_path)], str(tmp_path / "out"))


def sweep_args(out, *extra):
    return ["--tasks", "pointmass1d", "--algos", "apg", "--bootstraps", "mc,critic", "--seeds", "2",
            "--env-steps", "60000", "--set", "num_evals=3", "--set", "num_envs=32", "--out", str(out),
            "--no-progress", *extra]


@pytest.mark.slow
def test_tiny_sweep_runs_end_to_end_and_resumes_after_interruption(tmp_path):
    out = tmp_path / "sweep"
    assert sweep.main(sweep_args(out, "--max-chunks", "4")) == 0  # 3 chunks of the first, 1 of the second
    manifest = json.loads((out / "sweep.json").read_text())["configurations"]
    assert [e["status"] for e in manifest] == ["done", "partial"]
    first = out / manifest[0]["dir"] / "metrics.csv"
    stamp = first.stat().st_mtime_ns
    assert sweep.main(sweep_args(out)) == 0
    manifest = json.loads((out / "sweep.json").read_text())["configurations"]
    assert [e["status"] for e in manifest] == ["done", "done"]
    assert first.stat().st_mtime_ns == stamp  # the finished configuration was not run again
    rows = read_metrics(str(out / manifest[1]["dir"] / "metrics.csv"))
    assert sorted((r["seed"], r["chunk"]) for r in rows) == [(s, c) for s in (0, 1) for c in range(4)]
    assert np.isfinite([e["final_return"] for e in manifest]).all()


def test_ablation_grid_and_bad_task():
    args = sweep.parse_args(["--tasks", "pointmass1d", "--algos", "apg,ppo", "--ablation"])
    names = [sweep.config_name(c) for c in sweep.build_grid(args)]
    assert len(names) == len(set(names)) == 13  # 6 segment lengths x 2 bootstraps + PPO
    assert "pointmass1d-apg-K4-critic" in names and "pointmass1d-apg-Kfull-mc" in names
    assert sweep.main(["--tasks", "nosuchtask", "--out", "/tmp/unused"]) == 2


def test_auto_in_a_grid_takes_the_constant_schedule_it_needs():
    """pointmass1d's tuned APG schedule decays; `auto` in a grid gets a constant one, as from `run`, and
    the fixed lengths beside it keep the tuned schedule (an explicit --set lr_schedule wins)."""
    args = sweep.parse_args(["--tasks", "pointmass1d", "--algos", "apg", "--segment-lengths", "8,auto"])
    schedules = {sweep.config_name(c): c.lr_schedule for c in sweep.build_grid(args)}
    assert schedules == {"pointmass1d-apg-K8-mc": "linear", "pointmass1d-apg-Kauto-mc": "constant"}
    args = sweep.parse_args(["--tasks", "pointmass1d", "--algos", "apg", "--segment-lengths", "auto",
                             "--set", "lr_schedule=cosine"])
    assert [c.lr_schedule for c in sweep.build_grid(args)] == ["cosine"]


SHARDED = """
import json, sys, jax, numpy as np
from apg_jax.config import default_config
from experiments.runner import run_experiment, shard_seeds
assert len(jax.devices()) == 4
config = default_config("pointmass1d", "apg", env_steps=40000, num_evals=2, num_envs=32)
state = shard_seeds(jax.numpy.zeros((4, 3)))
result = run_experiment(config, 4, sys.argv[1], progress=False, artifacts=False)
print(json.dumps({"devices": len(state.sharding.device_set),
                  "returns": [r["eval_return"] for r in result.rows]}))
"""


@pytest.mark.slow
def test_seeds_are_sharded_over_local_devices_with_the_same_results(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", SHARDED, str(tmp_path / "sharded")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sharded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sharded["devices"] == 4
    config = default_config("pointmass1d", "apg", env_steps=40000, num_evals=2, num_envs=32)
    single = run_experiment(config, 4, str(tmp_path / "single"), progress=False, artifacts=False)
    np.testing.assert_allclose(sharded["returns"], [r["eval_return"] for r in single.rows], rtol=1e-4)
