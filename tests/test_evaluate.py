"""python -m experiments.evaluate: fixed initial states, saved trajectories, model mismatch, bad input."""
import csv

import jax
import numpy as np
import pytest

from apg_jax import default_config, envs, rundir
from apg_jax.envs.batch import reset_batch
from apg_jax.networks import init_params, make_networks
from apg_jax.normalization import init_stats
from experiments import evaluate
from experiments import run as run_cli

# one worker trains the module's run and runs every test that reads it (pytest -n 2 --dist loadgroup)
pytestmark = pytest.mark.xdist_group("trained_run")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "pm1d"
    assert run_cli.main(["--task", "pointmass1d", "--env-steps", "64000", "--set", "num_evals=2", "--set",
                         "num_envs=32", "--seeds", "2", "--no-progress", "--out", str(out)]) == 0
    return out


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_evaluation_from_the_runs_own_starts_reproduces_its_logged_return(trained_run, tmp_path):
    env = envs.make("pointmass1d")
    eval_key = jax.random.fold_in(jax.random.PRNGKey(1), 1)  # seed 1's evaluation stream
    starts = np.asarray(reset_batch(env, eval_key, 128).pipeline_state)
    np.save(tmp_path / "starts.npy", starts)
    out = tmp_path / "eval"
    assert evaluate.main([str(trained_run), "--seed", "1", "--initial-states", str(tmp_path / "starts.npy"),
                          "--out", str(out)]) == 0
    rows = read_rows(out / "episodes.csv")
    assert len(rows) == 128 and list(rows[0]) == ["index", "return", "success"]
    logged = [r for r in rundir.read_metrics(str(trained_run)) if r["seed"] == 1][-1]
    assert np.mean([float(r["return"]) for r in rows]) == pytest.approx(logged["eval_return"], rel=1e-5)
    assert np.mean([float(r["success"]) for r in rows]) == pytest.approx(logged["eval_success"])
    data = np.load(out / "trajectories.npz")
    q, actions = data["q"], data["actions"]
    assert q.shape == (128, 101, 3) and actions.shape == (128, 100, 1)
    np.testing.assert_array_equal(q[:, 0], starts)
    # the saved actions, re-simulated with physics_step, give the saved states
    step = jax.jit(jax.vmap(env.physics_step))
    replay = [starts]
    for t in range(100):
        replay.append(np.asarray(step(replay[-1], actions[:, t])[0]))
    np.testing.assert_allclose(np.stack(replay, 1), q, rtol=1e-6, atol=1e-6)


def test_model_mismatch_changes_the_outcome(trained_run, tmp_path):
    nominal, heavy = tmp_path / "nominal", tmp_path / "heavy"
    common = [str(trained_run), "--episodes", "32"]
    assert evaluate.main(common + ["--out", str(nominal)]) == 0
    assert evaluate.main(common + ["--out", str(heavy), "--env-set", "mass=3.0"]) == 0
    ret = lambda d: np.mean([float(r["return"]) for r in read_rows(d / "episodes.csv")])
    assert ret(heavy) < ret(nominal) - 1.0  # a 3x heavier mass, same policy: slower, costlier
    np.testing.assert_array_equal(np.load(nominal / "trajectories.npz")["q"][:, 0],
                                  np.load(heavy / "trajectories.npz")["q"][:, 0])  # same starts


@pytest.mark.parametrize("args, message", [
    (["--seed", "7"], "seed 7 is not in run"),
    (["--initial-states", "WIDE"], "needs [N, 3] physics states"),
    (["--initial-states", "NAN"], "NaN/inf in rows [2]"),
    (["--env-set", "masss=2"], "unknown parameter(s) ['masss']"),
    (["--episodes", "0"], "--episodes must be >= 1"),
    (["--starts", "near"], "task 'pointmass1d' has no start band 'near'"),
    (["--starts", "near", "--initial-states", "WIDE"], "either --initial-states or --starts"),
])
def test_bad_input_stops_before_any_rollout(trained_run, tmp_path, capsys, args, message):
    np.save(tmp_path / "wide.npy", np.zeros((4, 5), np.float32))
    bad = np.zeros((4, 3), np.float32)
    bad[2, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    args = [{"WIDE": str(tmp_path / "wide.npy"), "NAN": str(tmp_path / "nan.npy")}.get(a, a) for a in args]
    out = tmp_path / "out"
    assert evaluate.main([str(trained_run), "--out", str(out)] + args) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_unknown_run_directory(tmp_path, capsys):
    assert evaluate.main([str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a run directory" in capsys.readouterr().err


def test_tblock_episodes_carry_coverage(tmp_path):
    """A tblock run directory with an untrained policy: the coverage columns equal the task's coverage
    recomputed from the saved trajectories."""
    config = default_config("tblock", "apg")
    env = envs.make("tblock")
    actor, critic = make_networks(env.action_size, config.hidden_sizes, config.activation, config.init_log_std)
    params, _ = init_params(actor, critic, jax.random.PRNGKey(0), env.observation_size)
    stack = lambda tree: jax.tree.map(lambda x: np.asarray(x)[None], tree)
    run_dir = tmp_path / "tblock-run"
    rundir.prepare(config, 1, str(run_dir))
    rundir.save_policy(str(run_dir), stack(params), stack(init_stats(env.observation_size)), [config.seed])
    assert evaluate.main([str(run_dir), "--episodes", "4", "--out", str(tmp_path / "ev")]) == 0
    rows = read_rows(tmp_path / "ev" / "episodes.csv")
    assert list(rows[0]) == ["index", "return", "success", "final_coverage", "max_coverage"]
    q = np.load(tmp_path / "ev" / "trajectories.npz")["q"]
    cover = np.asarray(jax.vmap(jax.vmap(env.coverage))(q[:, 1:]))
    np.testing.assert_allclose([float(r["max_coverage"]) for r in rows], cover.max(1), rtol=1e-6)
    np.testing.assert_allclose([float(r["final_coverage"]) for r in rows], cover[:, -1], rtol=1e-6)
    # a start band: the saved starts lie in it
    assert evaluate.main([str(run_dir), "--episodes", "8", "--starts", "middle", "--out", str(tmp_path / "mid")]) == 0
    q0 = np.load(tmp_path / "mid" / "trajectories.npz")["q"][:, 0]
    dist = np.linalg.norm(q0[:, 4:6] - np.asarray(env.params.goal[:2]), axis=1)
    turn = np.abs(q0[:, 6] - env.params.goal[2])
    assert np.all((dist >= 0.03 - 1e-6) & (dist <= 0.08 + 1e-6))
    assert np.all((turn >= np.pi / 6 - 1e-5) & (turn <= np.pi / 2 + 1e-5))


def test_training_evaluation_logs_the_tasks_episode_metrics(tmp_path):
    """``evaluation.evaluate`` adds ``eval_max_coverage`` / ``eval_final_coverage`` on tblock (the mean of the
    episodes' own metrics), and metrics.csv carries them through a write and a read."""
    from apg_jax.evaluation import evaluate as evaluate_policy, rollout

    env = envs.make("tblock")
    act = lambda obs: 0.3 * jax.numpy.tanh(obs[:, 0:2] - obs[:, 4:6])  # any fixed deterministic policy
    key = jax.random.PRNGKey(7)
    logged = evaluate_policy(env, act, key, 6)
    qs, _, _ = rollout(env, act, key, 6)
    expected = jax.vmap(env.episode_metrics, in_axes=1)(qs)
    for name in ("max_coverage", "final_coverage"):
        assert float(logged[f"eval_{name}"]) == pytest.approx(float(np.mean(expected[name])), rel=1e-6)
    config = default_config("tblock", "apg")
    counts = {"env_steps": 10, "actor_grad_steps": 1, "critic_grad_steps": 0}
    row = rundir.metric_row(config, 0, 1, counts, 1.0, {k: float(v) for k, v in logged.items()})
    rundir.write_metrics(str(tmp_path), [row])
    back = rundir.read_metrics(str(tmp_path))[0]
    assert back["eval_max_coverage"] == pytest.approx(float(logged["eval_max_coverage"]), rel=1e-6)
    assert list(back)[:len(rundir.COLUMNS)] == rundir.COLUMNS
