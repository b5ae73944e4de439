"""The run command end to end: outputs, load_policy, resume, determinism, and invalid configurations."""
import json

import jax
import numpy as np
import pytest

from apg_jax import ConfigError, default_config, load_policy
from apg_jax.evaluation import evaluate
from apg_jax.envs import make
from experiments import run as run_cli
from apg_jax.rundir import read_metrics
from experiments.runner import run_experiment
from apg_jax.training import initial_policy

TINY = ["--task", "pointmass1d", "--env-steps", "64000", "--set", "num_evals=4", "--set", "num_envs=32",
        "--no-progress"]


@pytest.mark.slow
def test_cli_writes_outputs_and_policy_reproduces_eval(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli.main(TINY + ["--seeds", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "final evaluation over 2 seed(s)" in printed and str(out) in printed
    for name in ("metrics.csv", "config.json", "summary.json", "policy.msgpack", "learning_curves.png",
                 "policy.gif", "checkpoint.msgpack"):
        assert (out / name).stat().st_size > 0, name
    rows = read_metrics(str(out / "metrics.csv"))
    assert {r["seed"] for r in rows} == {0, 1} and len(rows) == 2 * 5  # initial + 4 evaluations
    assert all(rows[i]["env_steps"] <= rows[i + 2]["env_steps"] for i in range(len(rows) - 2))
    config = json.loads((out / "config.json").read_text())
    assert config["num_envs"] == 32 and config["algo"] == "apg"
    # the loaded policy, run through the same evaluation protocol, gives the logged final return
    env = make("pointmass1d")
    for seed in (0, 1):
        policy = load_policy(str(out), seed=seed)
        eval_key = jax.random.fold_in(jax.random.PRNGKey(seed), 1)
        result = evaluate(env, policy, eval_key, config["num_eval_envs"])
        logged = [r for r in rows if r["seed"] == seed][-1]
        assert float(result["eval_return"]) == pytest.approx(logged["eval_return"], rel=1e-5)
    action = load_policy(str(out))(np.zeros(3, np.float32))
    assert action.shape == (1,) and -1 <= float(action[0]) <= 1
    with pytest.raises(ValueError, match="not in run"):
        load_policy(str(out), seed=5)
    with pytest.raises(ValueError, match="observations of task"):
        load_policy(str(out))(np.zeros((2, 4)))


def strip_wall(rows):
    """Rows without the wall-clock column, NaN (no training metric yet at step 0) made comparable."""
    same = lambda v: "nan" if isinstance(v, float) and np.isnan(v) else v
    return [{k: same(v) for k, v in r.items() if k != "wall_time_s"} for r in rows]


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_result_and_same_seed_repeats(tmp_path):
    config = default_config("pointmass1d", "ppo", env_steps=6 * 128 * 32, num_evals=6)
    full = run_experiment(config, 2, str(tmp_path / "full"), progress=False, artifacts=False)
    again = run_experiment(config, 2, str(tmp_path / "again"), progress=False, artifacts=False)
    assert strip_wall(full.rows) == strip_wall(again.rows)  # same seed, same result
    part = run_experiment(config, 2, str(tmp_path / "cut"), progress=False, max_chunks=2, artifacts=False)
    assert max(r["chunk"] for r in part.rows) == 2
    resumed = run_experiment(config, 2, str(tmp_path / "cut"), progress=False, artifacts=False)
    assert strip_wall(resumed.rows) == strip_wall(full.rows)
    assert strip_wall(read_metrics(str(tmp_path / "cut" / "metrics.csv"))) == strip_wall(full.rows)


@pytest.mark.slow
def test_resume_refuses_a_different_configuration(tmp_path):
    config = default_config("pointmass1d", "apg", env_steps=64000, num_evals=2)
    run_experiment(config, 1, str(tmp_path), progress=False, max_chunks=1, artifacts=False)
    with pytest.raises(ConfigError, match="different configuration.*learning_rate"):
        run_experiment(config.replace(learning_rate=0.1), 1, str(tmp_path), progress=False)


@pytest.mark.parametrize("args, message", [
    (["--segment-length", "0"], "segment_length must be between 1 and the training horizon 100"),
    (["--segment-length", "101"], "segment_length must be between 1"),
    (["--bootstrap", "td"], "unknown bootstrap mode 'td'; valid: mc, critic"),
    (["--env-steps", "0"], "env_steps must be positive"),
    (["--env-steps", "100"], "less than one update"),
    (["--task", "cartpole"], "unknown task 'cartpole'; valid tasks are: pointmass1d"),
    (["--algo", "sac"], "unknown algo 'sac'"),
    (["--set", "learning_rat=1"], "unknown config field"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--set", "curriculum=1.5"], "curriculum must be a fraction of env_steps in [0, 1]"),
    (["--set", "curriculum=0.5"], "task 'pointmass1d' has no curriculum"),
    (["--set", "exploration_noise=no"], "exploration_noise must be True or False, got 'no' (str)"),
    (["--set", "init_policy_seed=3"], "init_policy_seed needs init_policy"),
    (["--set", "init_policy=no/such/run"], "init_policy: "),
    (["--set", "init_policy=runs/x", "--set", "init_policy_seed=pairs"], "init_policy_seed must be a seed number"),
    (["--set", "init_policy_log_std=-3.0"], "init_policy_log_std needs init_policy"),
    (["--set", "train_episode_length=0"], "train_episode_length must be a positive number of control steps"),
    (["--set", "train_episode_length=4", "--segment-length", "8"], "between 1 and the training horizon 4"),
])
def test_invalid_configurations_stop_before_compilation(args, message, tmp_path, compiles, capsys):
    out = tmp_path / "x"
    before = len(compiles)
    code = run_cli.main(["--task", "pointmass1d", "--no-progress", "--out", str(out)] + args)
    assert code == 2
    assert message in capsys.readouterr().err
    assert len(compiles) == before, "XLA compiled something before the configuration was validated"
    assert not out.exists(), "the run directory was written before the configuration was validated"


def test_compile_listener_sees_a_compilation(compiles):
    """The listener the test above relies on does hear XLA compile (so that test can fail)."""
    before = len(compiles)
    jax.jit(lambda x: x * 3.0 + 1.7)(np.arange(5.0))
    assert len(compiles) > before


@pytest.mark.slow
def test_progress_is_one_plain_line_per_evaluation_off_a_terminal(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli.main(TINY[:-1] + ["--out", str(out)]) == 0  # progress on, stderr captured (no tty)
    lines = [l for l in capsys.readouterr().err.splitlines() if l.startswith("apg/pointmass1d eval")]
    assert [l.split()[2] for l in lines] == ["1/4", "2/4", "3/4", "4/4"]
    assert all("eval_return=" in l and "success=" in l for l in lines)


@pytest.mark.parametrize("text, value", [("true", True), ("False", False), ("TRUE", True), ("false", False)])
def test_set_reads_true_and_false_in_any_case_as_booleans(text, value):
    parsed = run_cli.build_config(run_cli.parse_args(["--task", "pointmass1d", "--set", f"exploration_noise={text}"]))
    assert parsed.exploration_noise is value


@pytest.mark.slow
def test_init_policy_starts_every_seed_from_the_trained_actor(tmp_path):
    """APG fine-tuning a PPO policy: its first evaluation (before any update) is the source's last, on the
    same evaluation starts: every seed from the source's first, or with "paired" each from its own; a
    mismatched actor, an absent seed or an unpaired one is refused before training."""
    source = default_config("pointmass1d", "ppo", env_steps=2 * 32 * 32 * 4, num_envs=32, rollout_length=32,
                            num_evals=2, eval_seed=7)
    trained = run_experiment(source, 2, str(tmp_path / "ppo"), progress=False)
    last = {r["seed"]: r["eval_return"] for r in trained.rows if r["chunk"] == 2}
    assert abs(last[0] - last[1]) > 1e-3 * abs(last[0])  # so that pairing can be told from no pairing
    tuned = default_config("pointmass1d", "apg", env_steps=2 * 32 * 100, num_envs=32, num_evals=2, eval_seed=7,
                           init_policy=str(tmp_path / "ppo"))
    firsts = lambda result: [r["eval_return"] for r in sorted(result.rows, key=lambda r: r["seed"]) if r["chunk"] == 0]
    fine = run_experiment(tuned, 2, str(tmp_path / "apg"), progress=False, artifacts=False)
    assert firsts(fine) == pytest.approx([last[0], last[0]], rel=1e-5)
    paired = run_experiment(tuned.replace(init_policy_seed="paired"), 2, str(tmp_path / "paired"), progress=False,
                            max_chunks=0, artifacts=False)
    assert firsts(paired) == pytest.approx([last[0], last[1]], rel=1e-5)
    one = run_experiment(tuned.replace(init_policy_seed="paired", seed=1), 1, str(tmp_path / "one"), progress=False,
                         max_chunks=0, artifacts=False)
    assert firsts(one) == pytest.approx([last[1]], rel=1e-5)
    source_params = initial_policy(tuned, make("pointmass1d"))[0]
    wider = initial_policy(tuned.replace(init_policy_log_std=-3.0, init_policy_seed="paired"), make("pointmass1d"))[0]
    np.testing.assert_array_equal(wider["params"]["log_std"], np.full((2, 1), -3.0))
    assert np.any(np.asarray(source_params["params"]["log_std"]) != -3.0)
    np.testing.assert_array_equal(wider["params"]["MLP_0"]["Dense_2"]["kernel"][:1],
                                  source_params["params"]["MLP_0"]["Dense_2"]["kernel"])
    fresh = run_experiment(tuned.replace(init_policy=None), 1, str(tmp_path / "fresh"), progress=False,
                           max_chunks=1, artifacts=False)
    assert abs(fresh.rows[0]["eval_return"] - last[0]) > 0.1 * abs(last[0])  # the checks above can fail
    with pytest.raises(ConfigError, match="another actor: hidden_sizes"):
        run_experiment(tuned.replace(hidden_sizes=(32,)), 1, str(tmp_path / "x"), progress=False)
    with pytest.raises(ConfigError, match="init_policy_seed 5 is not in"):
        run_experiment(tuned.replace(init_policy_seed=5), 1, str(tmp_path / "y"), progress=False)
    with pytest.raises(ConfigError, match=r"holds seeds \[0, 1\], not \[2\]"):
        run_experiment(tuned.replace(init_policy_seed="paired", seed=1), 2, str(tmp_path / "z"), progress=False)
