"""The evidence protocol's commands: equal-effort tuning (experiments.tune), reference thresholds and
export (experiments.protocol), robust comparison tables (experiments.compare)."""
import csv
import json
import os

import numpy as np
import pytest
from scipy import stats

from apg_jax.config import default_config
from apg_jax.rundir import read_metrics
from experiments import compare, protocol, tune


def tune_args(out, trials):
    return ["--task", "pointmass1d", "--algo", "apg", "--trials", str(trials), "--seeds", "1", "--env-steps",
            "12800", "--startup-trials", "2", "--set", "num_evals=2", "--out", str(out), "--no-progress"]


def read_trials(out):
    with open(os.path.join(out, "trials.csv")) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # five short trainings, about a minute
def test_tune_records_trials_resumes_and_is_deterministic(tmp_path):
    import optuna

    a, b = tmp_path / "a", tmp_path / "b"
    assert tune.main(tune_args(a, 2)) == 0
    first = read_trials(a)
    assert [r["state"] for r in first] == ["COMPLETE", "COMPLETE"]
    # the objective is recomputed from the trial's own metrics: last quarter of evaluations, mean over seeds
    rows = read_metrics(os.path.join(a, "trials", "trial-001"))
    tail = [r["eval_return"] for r in rows if r["chunk"] == max(r["chunk"] for r in rows)]
    assert float(first[1]["objective"]) == pytest.approx(np.mean(tail))
    with open(os.path.join(a, "trials", "trial-001", "config.json")) as f:
        config = json.load(f)
    assert config["learning_rate"] == pytest.approx(float(first[1]["learning_rate"]))
    assert config["seed"] == 100 and config["env_steps"] == 12800

    # an interrupted trial (asked, never told) is finished with its own settings on the next call
    study = tune.open_study(type("Args", (), {"out": str(a), "task": "pointmass1d", "algo": "apg"}))
    pending = study.ask({"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})
    c = tmp_path / "c"  # the interrupted search as git keeps it: journal and small files, no checkpoints
    protocol.export(str(a), str(c))
    assert {"study.journal", "trials.csv", "best.json"} <= set(os.listdir(c))
    assert sorted(os.listdir(c / "trials" / "trial-001")) == ["config.json", "metrics.csv"]
    assert tune.main(tune_args(a, 4)) == 0
    resumed = read_trials(a)
    assert [r["state"] for r in resumed] == ["COMPLETE"] * 4
    assert resumed[:2] == first  # done trials untouched
    assert float(resumed[2]["learning_rate"]) == pytest.approx(pending.params["learning_rate"])
    assert tune.main(tune_args(c, 4)) == 0  # resumed from the exported copy: the same trials
    assert read_trials(c) == resumed

    # same sampler seed, same trials in a fresh study
    assert tune.main(tune_args(b, 2)) == 0
    assert read_trials(b) == first
    best = json.load(open(os.path.join(a, "best.json")))
    assert best["best_value"] == max(float(r["objective"]) for r in resumed)


def test_tune_search_space_fits_the_task_and_refuses_bad_input(capsys):
    space = tune.space_for("apg", horizon=20)
    assert space["segment_length"][1] == [4, 8, 16, "full"]
    assert set(tune.space_for("ppo", 100)) >= {"learning_rate", "ppo_epochs", "clip_eps"}
    assert "segment_length" not in tune.space_for("ppo", 100)
    brax = tune.space_for("brax_ppo", 100)
    assert not {"critic_learning_rate", "lr_schedule", "init_log_std"} & set(brax)
    assert set(brax) >= {"learning_rate", "num_envs", "ppo_epochs", "gae_lambda"}
    assert tune.main(["--task", "cartpole", "--algo", "apg", "--out", "/tmp/x"]) == 2
    assert "unknown task" in capsys.readouterr().err


def write_trial_metrics(out, number, returns, coverages):
    """A trial's metrics.csv: one seed, one row per evaluation (chunks 0..n-1)."""
    path = os.path.join(out, "trials", f"trial-{number:03d}")
    os.makedirs(path)
    with open(os.path.join(path, "metrics.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seed", "chunk", "eval_return", "eval_max_coverage"])
        writer.writerows([100, i, r, c] for i, (r, c) in enumerate(zip(returns, coverages)))


def test_tune_rescore_ranks_a_tblock_search_by_coverage(tmp_path, capsys):
    """A finished search scored by return is re-scored from its trials' metrics.csv by tblock's objective
    (mean max coverage over the last quarter of evaluations): values, best trial and best.json change,
    settings and numbers stay, nothing trains; an unfinished trial is refused."""
    import optuna

    out = str(tmp_path / "s")
    args = type("Args", (), {"out": out, "task": "tblock", "algo": "apg"})
    study = tune.open_study(args)
    dist = {"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)}
    curves = [([-300, -200, -150, -100], [0.1, 0.3, 0.4, 0.5]),  # best return, low coverage
              ([-400, -300, -250, -200], [0.1, 0.5, 0.7, 0.9])]  # best coverage
    for number, (returns, coverages) in enumerate(curves):
        study.add_trial(optuna.trial.create_trial(params={"learning_rate": 1e-3 * (number + 1)}, distributions=dist,
                                                  value=float(returns[-1])))
        write_trial_metrics(out, number, returns, coverages)
    study.add_trial(optuna.trial.create_trial(params={"learning_rate": 5e-3}, distributions=dist,
                                              state=optuna.trial.TrialState.FAIL))  # refused: no metrics.csv
    assert tune.main(["--task", "tblock", "--algo", "apg", "--rescore", "--out", out]) == 0
    trials = read_trials(out)
    assert [float(t["objective"]) for t in trials[:2]] == [pytest.approx(0.5), pytest.approx(0.9)]
    assert [(t["state"], t["objective"]) for t in trials[2:]] == [("FAIL", "")]
    assert [float(t["learning_rate"]) for t in trials] == [pytest.approx(1e-3), pytest.approx(2e-3), pytest.approx(5e-3)]
    best = json.load(open(os.path.join(out, "best.json")))
    assert best["best_trial"] == 1 and best["objective"].startswith("mean eval_max_coverage")
    assert os.listdir(out).count("study.journal") == 1 and not any("rescoring" in n for n in os.listdir(out))
    assert tune.objective([{"chunk": 0, "eval_return": -1.0}], "pointmass1d") == -1.0
    with pytest.raises(ValueError, match="eval_max_coverage"):
        tune.objective([{"chunk": 0, "eval_return": -1.0}], "tblock")

    tune.open_study(args).ask(dist)  # an interrupted trial: re-scoring it is refused
    assert tune.main(["--task", "tblock", "--algo", "apg", "--rescore", "--out", out]) == 2
    assert "unfinished trial" in capsys.readouterr().err


def test_thresholds_come_from_the_references():
    from apg_jax.envs import make
    from apg_jax.references import pointmass1d_optimal_returns

    found = protocol.thresholds()
    starts = np.asarray(protocol.evaluation_starts("pointmass1d"))
    optimum = np.mean(pointmass1d_optimal_returns(make("pointmass1d").params, starts))
    assert found["pointmass1d"][0]["value"] == pytest.approx(1.05 * optimum, rel=1e-6)
    assert found["pointmass1d"][0]["value"] < optimum < 0
    assert set(found) == set(protocol.BUDGETS)


def write_run(root, name, task, algo, finals, eval_seed=2026, evals=5, coverage=None):
    """A run directory with hand-made curves: seed i's return rises linearly to ``finals[i]``;
    ``coverage``: seed i's ``eval_max_coverage`` rises linearly to ``coverage[i]`` (no column without)."""
    config = default_config(task, algo, seed=1000, eval_seed=eval_seed, num_evals=evals)
    path = os.path.join(root, name)
    os.makedirs(path)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({**json.loads(config.to_json()), "num_seeds": len(finals)}, f)
    fields = ["algo", "task", "seed", "chunk", "env_steps", "grad_steps", "actor_grad_steps", "critic_grad_steps",
              "wall_time_s", "eval_return", "eval_success"] + (["eval_max_coverage"] if coverage else [])
    with open(os.path.join(path, "metrics.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for chunk in range(evals + 1):
            for i, final in enumerate(finals):
                ret = -10.0 + (final + 10.0) * chunk / evals
                row = dict(algo=algo, task=task, seed=1000 + i, chunk=chunk, env_steps=1000 * chunk,
                           grad_steps=10 * chunk, actor_grad_steps=10 * chunk, critic_grad_steps=0,
                           wall_time_s=2.0 * chunk, eval_return=ret, eval_success=float(ret > -3))
                if coverage:
                    row["eval_max_coverage"] = coverage[i] * chunk / evals
                writer.writerow(row)
    return path


def test_compare_numbers_equal_direct_computation(tmp_path):
    runs = tmp_path / "runs"
    apg_finals = [-1.0, -2.0, -1.5, -0.5, -9.0, -1.2, -0.8, -1.1]
    ppo_finals = [-4.0, -5.0, -3.5, -4.5, -6.0, -3.0, -4.2, -5.5]
    write_run(runs, "pointmass1d-apg", "pointmass1d", "apg", apg_finals)
    write_run(runs, "pointmass1d-ppo", "pointmass1d", "ppo", ppo_finals)
    thresholds = {"pointmass1d": [{"column": "eval_return", "value": -2.0, "source": "test"}]}
    with open(tmp_path / "thr.json", "w") as f:
        json.dump(thresholds, f)
    summary = compare.write_comparison([str(runs)], str(tmp_path / "thr.json"), str(tmp_path / "out"), figures=False)
    task = summary["pointmass1d"]
    assert task["paired_evaluation"]
    apg, ppo = task["methods"]
    assert apg["final_return"]["iqm"][0] == pytest.approx(stats.trim_mean(apg_finals, 0.25))
    assert apg["final_return"]["iqm"][1] <= apg["final_return"]["iqm"][0] <= apg["final_return"]["iqm"][2]
    assert apg["final_return"]["median"][0] == pytest.approx(np.median(apg_finals))
    # AUC of a linear rise from -10 to f is the midpoint
    assert apg["auc"]["per_seed"] == pytest.approx([(-10 + f) / 2 for f in apg_finals])
    # threshold -2: seed with final f crosses at the first chunk c with -10 + (f + 10) c / 5 >= -2
    expected = [1000 * next(c for c in range(6) if -10 + (f + 10) * c / 5 >= -2) if f >= -2 else np.inf
                for f in apg_finals]
    reached = apg["thresholds"][0]
    assert reached["env_steps"]["per_seed"] == expected
    assert reached["seeds_reaching"] == 7 and ppo["thresholds"][0]["seeds_reaching"] == 0
    assert reached["wall_time_s"]["per_seed"] == [e / 500 for e in expected]
    assert ppo["backward_transitions"] == 5000 * default_config("pointmass1d", "ppo").ppo_epochs
    (pairing,) = task["probability_of_improvement"]
    assert pairing["method"] == "pointmass1d-apg" and pairing["final_return"][0] == pytest.approx(7 / 8)
    text = open(tmp_path / "out" / "comparison.md").read()
    assert "7/8" in text and "not reached" in text


def test_compare_summarises_the_tasks_own_metric_where_logged(tmp_path):
    """tblock runs log the evaluation's maximum coverage: it gets IQM, P(> PPO) and a figure row; a run
    without the column (or with NaN, as older files read) gets none."""
    apg_cov, ppo_cov = [0.9, 0.4, 0.5, 0.45, 0.6], [0.3, 0.35, 0.5, 0.2, 0.25]
    write_run(tmp_path / "runs", "tblock-apg", "tblock", "apg", [-1.0] * 5, coverage=apg_cov)
    write_run(tmp_path / "runs", "tblock-ppo", "tblock", "ppo", [-2.0] * 5, coverage=ppo_cov)
    write_run(tmp_path / "other", "pointmass1d-apg", "pointmass1d", "apg", [-1.0, -2.0])
    summary = compare.write_comparison([str(tmp_path / "runs"), str(tmp_path / "other")], None, str(tmp_path / "out"))
    apg, ppo = summary["tblock"]["methods"]
    assert apg["final_max_coverage"]["per_seed"] == pytest.approx(apg_cov)
    assert apg["final_max_coverage"]["iqm"][0] == pytest.approx(stats.trim_mean(apg_cov, 0.25))
    (pairing,) = summary["tblock"]["probability_of_improvement"]
    wins = sum((a > b) + 0.5 * (a == b) for a in apg_cov for b in ppo_cov) / 25
    assert pairing["final_max_coverage"][0] == pytest.approx(wins)
    assert "final_max_coverage" not in summary["pointmass1d"]["methods"][0]
    text = open(tmp_path / "out" / "comparison.md").read()
    assert "final max coverage IQM" in text
    assert text.split("## pointmass1d")[1].split("## tblock")[0].count("coverage") == 0
    # the figure: a third row (3.5 in each, 100 dpi) only where coverage was logged; PNG height at bytes 20-24
    heights = {t: int.from_bytes(open(tmp_path / "out" / f"{t}_curves.png", "rb").read()[20:24], "big")
               for t in ("tblock", "pointmass1d")}
    assert heights == {"tblock": 1050, "pointmass1d": 700}


def test_compare_flags_unpaired_evaluation(tmp_path):
    write_run(tmp_path, "a", "pointmass1d", "apg", [-1.0, -2.0], eval_seed=None)
    write_run(tmp_path, "b", "pointmass1d", "ppo", [-1.0, -2.0])
    summary = compare.write_comparison([str(tmp_path)], None, str(tmp_path / "out"), figures=False)
    assert not summary["pointmass1d"]["paired_evaluation"]


def test_figure_is_drawn_for_a_task_with_only_a_success_threshold(tmp_path):
    """franka's only threshold is 95 % success: the return axis then has no threshold to scale by."""
    write_run(tmp_path / "runs", "franka-apg", "franka", "apg", [-1.0, -2.0, -1.5])
    with open(tmp_path / "thr.json", "w") as f:
        json.dump({"franka": [{"column": "eval_success", "value": 0.95, "source": "test"}]}, f)
    compare.write_comparison([str(tmp_path / "runs")], str(tmp_path / "thr.json"), str(tmp_path / "out"))
    with open(tmp_path / "out" / "franka_curves.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_export_keeps_only_the_small_files(tmp_path):
    run = write_run(tmp_path / "sweep" / "pointmass1d", "pointmass1d-apg", "pointmass1d", "apg", [-1.0])
    open(os.path.join(run, "checkpoint.msgpack"), "wb").write(b"x" * 100)
    open(os.path.join(run, "summary.json"), "w").write("{}")
    copied = protocol.export(str(tmp_path / "sweep"), str(tmp_path / "results"))
    target = tmp_path / "results" / "pointmass1d" / "pointmass1d-apg"
    assert copied == [str(target / name) for name in ("config.json", "metrics.csv", "summary.json")]
    assert sorted(os.listdir(target)) == ["config.json", "metrics.csv", "summary.json"]
    # an interrupted run (checkpoint, neither policy nor summary yet) is left out and named; a finished
    # tuning trial (checkpoint and policy, no summary) is kept
    partial = write_run(tmp_path / "sweep" / "pointmass1d", "pointmass1d-ppo", "pointmass1d", "ppo", [-2.0])
    open(os.path.join(partial, "checkpoint.msgpack"), "wb").write(b"x")
    trial = write_run(tmp_path / "sweep" / "trials", "trial-000", "pointmass1d", "apg", [-3.0])
    for name in ("checkpoint.msgpack", "policy.msgpack"):
        open(os.path.join(trial, name), "wb").write(b"x")
    started = tmp_path / "sweep" / "pointmass1d" / "pointmass1d-shac"  # stopped before its first chunk
    started.mkdir()
    (started / "config.json").write_text("{}")
    # a trial copied back from results/ to resume its search (config and metrics, nothing else) is kept
    write_run(tmp_path / "sweep" / "trials", "trial-001", "pointmass1d", "apg", [-4.0])
    skipped = []
    again = tmp_path / "again"
    assert protocol.export(str(tmp_path / "sweep"), str(again), skipped) == sorted(
        [str(again / "pointmass1d" / "pointmass1d-apg" / name) for name in ("config.json", "metrics.csv", "summary.json")]
        + [str(again / "trials" / trial / name) for trial in ("trial-000", "trial-001")
           for name in ("config.json", "metrics.csv")])
    assert sorted(skipped) == sorted([partial, str(started)])
    assert not os.path.exists(again / "pointmass1d" / "pointmass1d-ppo")
    assert not os.path.exists(again / "pointmass1d" / "pointmass1d-shac")
    config = protocol.final_config("franka", "shac")
    assert config.env_steps == protocol.BUDGETS["franka"] and config.seed == protocol.FINAL_SEEDS[0]
    assert config.eval_seed == protocol.EVAL_SEED and config.bootstrap == "critic" and config.segment_length == 32
    assert protocol.main(["final", "--tasks", "franka", "--methods", "sac"]) == 2


def test_low_std_hybrid_differs_from_the_hybrid_only_in_its_exploration_std():
    hybrid, low = protocol.final_config("tblock", "hybrid"), protocol.final_config("tblock", "hybrid_lowstd")
    assert hybrid.init_log_std > -1.5 and low.init_log_std == -3.0  # PPO's tuned std, then the small one
    assert low.replace(init_log_std=hybrid.init_log_std) == hybrid


@pytest.mark.parametrize("algo, tuned", [("apg", 150), ("ppo", 50)])
def test_episode_length_methods_differ_from_their_learner_only_in_the_training_horizon(algo, tuned):
    plain = protocol.final_config("tblock", algo)
    short, full = protocol.final_config("tblock", f"{algo}_short"), protocol.final_config("tblock", f"{algo}_full")
    assert (plain.train_episode_length, short.train_episode_length, full.train_episode_length) == (tuned, 100, None)
    assert short.replace(train_episode_length=tuned) == plain == full.replace(train_episode_length=tuned)
    assert protocol.final_config("pointmass2d", f"{algo}_full") == protocol.final_config("pointmass2d", algo)


def test_split_hybrid_differs_from_the_hybrid_only_in_its_split_and_reuse_passes():
    hybrid, split = protocol.final_config("tblock", "hybrid"), protocol.final_config("tblock", "hybrid_split")
    assert split.hybrid_explore_fraction == 0.25 and split.hybrid_reuse_epochs == 0 < hybrid.hybrid_reuse_epochs
    assert split.replace(hybrid_explore_fraction=1.0, hybrid_reuse_epochs=hybrid.hybrid_reuse_epochs) == hybrid


@pytest.mark.parametrize("task", sorted(protocol.BUDGETS))
def test_every_method_trains_on_nearly_the_whole_budget(task):
    """Update sizes differ between methods (APG: envs x K, PPO: envs x rollout); the schedule runs every
    whole chunk, so each method loses less than 1 / NUM_EVALS of the budget and evaluates at least
    NUM_EVALS times."""
    from apg_jax.config import schedule
    from apg_jax.envs import make

    budget = protocol.BUDGETS[task]
    for method in protocol.METHODS:
        config = protocol.final_config(task, method)
        sched = schedule(config, make(task).episode_length)
        trained = sched.num_updates * sched.steps_per_update
        assert budget * (1 - 1 / protocol.NUM_EVALS) < trained <= budget, (method, trained)
        assert sched.num_chunks >= protocol.NUM_EVALS


def test_ablation_separates_env_steps_from_updates():
    from apg_jax.config import schedule

    by_steps = protocol.ablation_configs("pointmass1d", "env_steps")
    by_updates = protocol.ablation_configs("pointmass1d", "updates")
    fixed = {n: c for n, c in by_steps.items() if "Kauto" not in n}
    assert sorted(fixed) == sorted(n.replace("updates", "env-steps") for n in by_updates)
    assert len(by_updates) == 2 * 6 and {c.bootstrap for c in by_steps.values()} == {"mc", "critic"}
    auto = [c for n, c in by_steps.items() if "Kauto" in n]  # beside them at equal env steps only
    assert len(auto) == 2 and all(c.segment_length == "auto" and c.lr_schedule == "constant" for c in auto)
    assert all(c.seed == fixed_c.seed and c.eval_seed == fixed_c.eval_seed for c in auto for fixed_c in fixed.values())
    updates = {name: schedule(c, 100).num_updates for name, c in by_updates.items()}
    steps = {name: schedule(c, 100).num_updates * schedule(c, 100).steps_per_update for name, c in by_steps.items()}
    assert len(set(updates.values())) == 1  # every K gets the same number of actor updates
    assert all(protocol.BUDGETS["pointmass1d"] * 0.96 < s <= protocol.BUDGETS["pointmass1d"] for s in steps.values())
    assert by_updates["pointmass1d-K4-mc-equal-updates"].env_steps * 25 == by_updates["pointmass1d-Kfull-mc-equal-updates"].env_steps


def test_ablation_trains_an_identical_full_horizon_once_for_both_axes(tmp_path, monkeypatch):
    from experiments import runner

    trained = []

    def fake_run(config, num_seeds, out_dir, progress=True):
        trained.append(os.path.basename(out_dir))
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "summary.json"), "w") as f:
            json.dump({"env_steps": config.env_steps, "segment_length": config.segment_length}, f)

    monkeypatch.setattr(runner, "run_experiment", fake_run)
    protocol.run_ablation("franka", "updates", str(tmp_path))
    assert len(trained) == 12
    trained.clear()
    done = protocol.run_ablation("franka", "env_steps", str(tmp_path))
    copied = {"franka-Kfull-mc-equal-env-steps", "franka-Kfull-critic-equal-env-steps"}
    assert len(done) == 14 and set(trained) == {os.path.basename(d) for d in done} - copied
    for bootstrap in ("mc", "critic"):
        with open(tmp_path / f"franka-Kfull-{bootstrap}-equal-env-steps" / "summary.json") as f:
            assert json.load(f) == {"env_steps": protocol.BUDGETS["franka"], "segment_length": None}
    k4 = protocol.ablation_configs("franka", "env_steps")["franka-K4-mc-equal-env-steps"]
    assert protocol.finished_twin("franka", "env_steps", k4, str(tmp_path)) is None  # K = 4 differs by axis
    # pointmass1d's full horizon gets 998,400 steps at equal updates, the 1 M budget at equal env steps:
    # not the same configuration, so both are trained
    full = protocol.ablation_configs("pointmass1d", "env_steps")["pointmass1d-Kfull-mc-equal-env-steps"]
    protocol.run_ablation("pointmass1d", "updates", str(tmp_path))
    assert protocol.finished_twin("pointmass1d", "env_steps", full, str(tmp_path)) is None


def test_tune_brax_ppo_trains_brax_with_the_sampled_settings(tmp_path, monkeypatch):
    from experiments import brax_baseline

    seen = []

    def fake_baseline(config, num_seeds, out_dir, progress=True):
        seen.append((config, num_seeds, out_dir))
        return [{"chunk": c, "eval_return": -float(c == 0), "seed": s} for c in range(3) for s in range(num_seeds)]

    monkeypatch.setattr(brax_baseline, "run_baseline", fake_baseline)
    out = tmp_path / "brax"
    assert tune.main(["--task", "pointmass1d", "--algo", "brax_ppo", "--trials", "2", "--out", str(out)]) == 0
    (first, seeds, out_dir), _ = seen
    trials = read_trials(out)
    assert first.algo == "ppo" and seeds == 2 and out_dir.endswith("trial-000")
    assert first.learning_rate == pytest.approx(float(trials[0]["learning_rate"]))
    assert first.env_steps == protocol.BUDGETS["pointmass1d"] and first.seed == 100
    assert float(trials[0]["objective"]) == 0.0  # last quarter of the evaluations (chunk 2)


@pytest.mark.slow  # three short trainings with an interruption
def test_final_runs_split_over_calls_equal_one_call(tmp_path, monkeypatch):
    monkeypatch.setitem(protocol.BUDGETS, "pointmass1d", 32 * 100 * 6)
    monkeypatch.setattr(protocol, "FINAL_SEEDS", (1000, 1001))
    monkeypatch.setattr(protocol, "NUM_EVALS", 3)
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert protocol.run_final(["pointmass1d"], ["apg"], str(whole), progress=False) == [str(whole / "pointmass1d-apg")]
    assert protocol.run_final(["pointmass1d"], ["apg"], str(split), progress=False, max_chunks=2) == []
    assert protocol.run_final(["pointmass1d"], ["apg"], str(split), progress=False) == [str(split / "pointmass1d-apg")]
    drop = lambda rows: [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]
    # json text: NaN columns (none before the first update) compare equal
    assert json.dumps(drop(read_metrics(str(split / "pointmass1d-apg")))) == \
        json.dumps(drop(read_metrics(str(whole / "pointmass1d-apg"))))
