"""The numbers committed under results/ are what the report code computes from the committed run data."""
import glob
import json
import math
import os

import pytest

from experiments import compare, regenerate, report

JOBS = [job for job in regenerate.available_jobs() if job[1] in ("report", "compare")]


def differences(computed, committed, path="") -> list:
    """Paths where two JSON trees differ (floats to 1e-9 relative; NaN equals NaN)."""
    if isinstance(computed, dict):
        if set(computed) != set(committed):
            return [f"{path}: keys {sorted(set(computed) ^ set(committed))}"]
        return sum((differences(computed[k], committed[k], f"{path}.{k}") for k in computed), [])
    if isinstance(computed, list):
        if len(computed) != len(committed):
            return [f"{path}: length {len(computed)} vs {len(committed)}"]
        return sum((differences(a, b, f"{path}[{i}]") for i, (a, b) in enumerate(zip(computed, committed))), [])
    if isinstance(computed, float) and isinstance(committed, (int, float)):
        if math.isnan(computed) and math.isnan(committed):
            return []
        return [] if math.isclose(computed, committed, rel_tol=1e-9, abs_tol=1e-12) else [f"{path}: {computed} vs {committed}"]
    return [] if computed == committed else [f"{path}: {computed!r} vs {committed!r}"]


def test_the_differences_helper_can_fail():
    assert differences({"a": [1.0, 2.0]}, {"a": [1.0, 2.0 + 1e-6]}) == [".a[1]: 2.0 vs 2.000001"]
    assert differences({"a": float("nan")}, {"a": float("nan")}) == []


@pytest.mark.parametrize("out, module, patterns, extra", JOBS, ids=[job[0] for job in JOBS])
def test_committed_summary_equals_recomputation(out, module, patterns, extra):
    paths = regenerate.inputs(patterns)
    thresholds = None
    if "--thresholds" in extra:
        with open(f"{regenerate.ROOT}/{extra[extra.index('--thresholds') + 1]}") as f:
            thresholds = json.load(f)
    if module == "report":
        computed = report.summarize(report.load_runs(paths), thresholds)
    else:
        computed = compare.summarize(compare.load_runs(paths), thresholds)
    with open(f"{regenerate.ROOT}/{out}/summary.json") as f:
        committed = json.load(f)
    assert differences(json.loads(json.dumps(computed)), committed) == []


def test_readme_results_block_is_regenerated():
    with open(regenerate.README) as f:
        text = f.read()
    block = text.split(regenerate.README_BEGIN, 1)[1].split(regenerate.README_END, 1)[0]
    assert block.strip() == regenerate.readme_block().strip()


SEARCH_TRIALS = 16  #: the protocol's trials per search (results/README.md, step 1)


def finished_searches() -> list:
    """``(task, algo, best.json)`` of every committed search of our algorithms that ran all its
    ``SEARCH_TRIALS`` trials (a search kept mid-way is not yet the default)."""
    from apg_jax.config import DEFAULTS

    found = []
    for path in sorted(glob.glob(f"{regenerate.ROOT}/results/tuning/*/best.json")):
        with open(path) as f:
            best = json.load(f)
        with open(os.path.join(os.path.dirname(path), "trials.csv")) as f:
            rows = len(f.read().strip().splitlines()) - 1
        if (best["task"], best["algo"]) in DEFAULTS and rows >= SEARCH_TRIALS:
            found.append((best["task"], best["algo"], best))
    return found


@pytest.mark.parametrize("task, algo, best", finished_searches(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_finished_search_sets_the_defaults(task, algo, best):
    """Protocol step 1: the best trial's settings (4 significant digits) are the defaults, at the search's budget."""
    from apg_jax.config import default_config

    config = default_config(task, algo)
    assert config.env_steps == best["env_steps"]
    for name, value in best["settings"].items():
        if isinstance(value, float):
            assert float(f"{value:.4g}") == pytest.approx(getattr(config, name), rel=1e-12), name
        else:
            assert getattr(config, name) == value, name


@pytest.mark.parametrize("algo", ["apg", "ppo"])
def test_tblock_training_horizon_is_the_grids_best(algo):
    """The training horizon of tblock's defaults is the one of the committed grid (the same horizons for
    both learners, tuning seeds, 5 M steps) with the best tuning objective; the grid's runs have the
    tuned settings (APG's 50-step episodes K = 50, the longest segment they hold)."""
    from apg_jax.config import default_config
    from apg_jax.rundir import read_metrics
    from experiments.tune import objective

    grid = {}
    for path in sorted(glob.glob(f"{regenerate.ROOT}/results/tuning/tblock-horizon/trials/{algo}-T*")):
        with open(os.path.join(path, "config.json")) as f:
            config = json.load(f)
        assert config["seed"] == 100 and config["num_seeds"] == 2 and config["env_steps"] == 5_000_000
        tuned = default_config("tblock", algo)
        for name in ("num_envs", "learning_rate", "max_grad_norm", "init_log_std", "curriculum", "reward_scale"):
            assert config[name] == pytest.approx(getattr(tuned, name), rel=1e-3), (path, name)
        if algo == "apg":
            assert config["segment_length"] == min(tuned.segment_length, config.get("train_episode_length") or 300)
        grid[config.get("train_episode_length") or 300] = objective(read_metrics(path), "tblock")
    assert sorted(grid) == [50, 100, 150, 300]
    best = max(grid, key=grid.get)
    assert default_config("tblock", algo).train_episode_length == (None if best == 300 else best)
