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
#: tblock's settings before the second grid (results/tuning/tblock-curriculum), which the horizon grid
#: ran with and which the second grid varies one at a time
TBLOCK_GRID_BASE = {"apg": dict(curriculum=0.6, segment_length=64), "ppo": dict(curriculum=0.6, rollout_length=32)}
#: what the searches tuned and the grids keep (each learner's)
TBLOCK_KEPT = ("num_envs", "learning_rate", "max_grad_norm", "init_log_std", "reward_scale")
TBLOCK_CONFIRM_MARGIN = 0.1  #: a grid's values within this of its best 2-seed objective are re-run on 3 more seeds
LENGTH_NAME = {"apg": "segment_length", "ppo": "rollout_length"}  #: the length each learner's second grid varies


@pytest.mark.parametrize("run", sorted(glob.glob(f"{regenerate.ROOT}/results/comparison/runs/*-apg")
                                        + glob.glob(f"{regenerate.ROOT}/results/comparison/runs/*-ppo")),
                         ids=os.path.basename)
def test_the_comparisons_apg_and_ppo_runs_use_todays_defaults(run):
    """The final runs the comparison's claims rest on were trained with the current defaults (a default
    changed after its final run makes the row stale: re-run it or move it out of comparison/). A setting
    added since the run was trained must be at its field's default (the behaviour before it existed)."""
    from dataclasses import asdict, fields

    from apg_jax.config import TrainConfig
    from experiments.protocol import final_config

    task, method = os.path.basename(run).rsplit("-", 1)
    with open(os.path.join(run, "config.json")) as f:
        trained = json.load(f)
    assert trained.pop("num_seeds") == 10
    expected = json.loads(json.dumps(asdict(final_config(task, method))))
    added = {field.name: field.default for field in fields(TrainConfig) if field.name not in trained}
    assert {name: expected.pop(name) for name in added} == added
    assert differences(expected, trained) == []


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
    """Protocol step 1: the best trial's settings (4 significant digits) are the defaults, at the search's budget
    (on tblock, before the second grid re-chose the segment / rollout length at the tuned training horizon)."""
    from apg_jax.config import default_config

    config = default_config(task, algo)
    if task == "tblock":
        config = config.replace(**TBLOCK_GRID_BASE[algo])
    assert config.env_steps == best["env_steps"]
    for name, value in best["settings"].items():
        if isinstance(value, float):
            assert float(f"{value:.4g}") == pytest.approx(getattr(config, name), rel=1e-12), name
        else:
            assert getattr(config, name) == value, name


def tblock_grid(folder: str, algo: str, pattern: str, tuned: dict, seed: int = 100, num_seeds: int = 2) -> dict:
    """``{path: (config, objective)}`` of a tblock grid's trials, each checked to be a run of tuning seeds
    ``seed``... at the protocol's budget with ``tuned`` settings (the learner's defaults otherwise)."""
    from apg_jax.config import default_config
    from apg_jax.rundir import read_metrics
    from experiments.tune import objective

    trials, defaults = {}, default_config("tblock", algo)
    for path in sorted(glob.glob(f"{regenerate.ROOT}/results/tuning/{folder}/trials/{algo}-{pattern}")):
        with open(os.path.join(path, "config.json")) as f:
            config = json.load(f)
        assert config["seed"] == seed and config["num_seeds"] == num_seeds and config["env_steps"] == 5_000_000
        for name in TBLOCK_KEPT:
            assert config[name] == pytest.approx(getattr(defaults, name), rel=1e-3), (path, name)
        for name, value in tuned.items():
            assert config[name] == value, (path, name)
        trials[path] = (config, objective(read_metrics(path), "tblock"))
    return trials


@pytest.mark.parametrize("algo", ["apg", "ppo"])
def test_tblock_training_horizon_is_the_grids_best(algo):
    """The training horizon of tblock's defaults is the one of the committed grid (the same horizons for
    both learners, tuning seeds, 5 M steps) with the best tuning objective; the grid ran on the settings
    before the second grid (APG's 50-step episodes K = 50, the longest segment they hold)."""
    from apg_jax.config import default_config

    base, grid = TBLOCK_GRID_BASE[algo], {}
    for config, score in tblock_grid("tblock-horizon", algo, "T*", {"curriculum": base["curriculum"]}).values():
        if algo == "apg":
            assert config["segment_length"] == min(base["segment_length"], config.get("train_episode_length") or 300)
        else:
            assert config["rollout_length"] == base["rollout_length"]
        grid[config.get("train_episode_length") or 300] = score
    assert sorted(grid) == [50, 100, 150, 300]
    best = max(grid, key=grid.get)
    assert default_config("tblock", algo).train_episode_length == (None if best == 300 else best)


def close_values(two_seeds: dict) -> set:
    """A grid's values within ``TBLOCK_CONFIRM_MARGIN`` of its best 2-seed objective (re-run on 3 more seeds)."""
    best = max(two_seeds.values())
    return {value for value, score in two_seeds.items() if score >= best - TBLOCK_CONFIRM_MARGIN}


def five_seed_objectives(algo: str) -> dict:
    """``{(curriculum, segment or rollout length): objective}`` on tuning seeds 100-104 of every tblock trial
    at the chosen training horizon: one 5-seed run, or else a 2-seed (100-101) and a 3-seed (102-104) run
    weighted by seeds."""
    from apg_jax.config import default_config

    horizon, length_name, runs = default_config("tblock", algo).train_episode_length, LENGTH_NAME[algo], {}
    for folder, pattern, seed, num_seeds in (("tblock-horizon", f"T{horizon}", 100, 2),
                                             ("tblock-curriculum", "*", 100, 2),
                                             ("tblock-curriculum-confirm", "*", 102, 3),
                                             ("tblock-curriculum-joint", "*", 100, 5)):
        for config, score in tblock_grid(folder, algo, pattern, {"train_episode_length": horizon},
                                         seed, num_seeds).values():
            key = (config["curriculum"], config[length_name] or horizon)
            assert (key, num_seeds) not in runs, ("trial run twice", key, num_seeds)
            runs[key, num_seeds] = score
    five = {key: (2 * score + 3 * runs[key, 3]) / 5 for (key, num_seeds), score in runs.items()
            if num_seeds == 2 and (key, 3) in runs}
    five.update({key: score for (key, num_seeds), score in runs.items() if num_seeds == 5})
    return five


@pytest.mark.parametrize("algo", ["apg", "ppo"])
def test_tblock_curriculum_and_segment_length_are_the_second_grids_best(algo):
    """At the chosen training horizon, the curriculum and the segment (APG) or rollout (PPO) length of
    tblock's defaults are the second grid's choice: each varied alone from the horizon grid's run (tuning
    seeds 100-101, 5 M steps, the searches' objective), its values within the margin of the best re-run on
    seeds 102-104, and of those the best on all five seeds with the other setting at its default (a joint
    pass: each setting was first chosen at the other's old value)."""
    from apg_jax.config import default_config

    defaults = default_config("tblock", algo)
    base, length_name = TBLOCK_GRID_BASE[algo], LENGTH_NAME[algo]
    horizon = {"train_episode_length": defaults.train_episode_length}
    (_, base_score), = tblock_grid("tblock-horizon", algo, f"T{defaults.train_episode_length}",
                                   {**base, **horizon}).values()
    curricula, lengths = {base["curriculum"]: base_score}, {base[length_name]: base_score}
    for config, score in tblock_grid("tblock-curriculum", algo, "curriculum*",
                                     {length_name: base[length_name], **horizon}).values():
        curricula[config["curriculum"]] = score
    for config, score in tblock_grid("tblock-curriculum", algo, "[Kr]*",
                                     {"curriculum": base["curriculum"], **horizon}).values():
        lengths[config[length_name] or defaults.train_episode_length] = score
    assert sorted(curricula) == [0.0, 0.3, 0.6, 0.9]
    assert len(lengths) == (4 if algo == "apg" else 3)

    five = five_seed_objectives(algo)
    at_default_length = {c: five.get((c, getattr(defaults, length_name))) for c in close_values(curricula)}
    at_default_curriculum = {n: five.get((defaults.curriculum, n)) for n in close_values(lengths)}
    for compared in (at_default_length, at_default_curriculum):
        assert len(compared) >= 2 and None not in compared.values(), ("not run on all five seeds", compared)
    assert defaults.curriculum == max(at_default_length, key=at_default_length.get)
    assert getattr(defaults, length_name) == max(at_default_curriculum, key=at_default_curriculum.get)
