"""Our tasks through brax's own code: its registry, training wrappers, evaluator and PPO trainer."""
import brax.envs
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.envs.wrappers.training import wrap
from brax.training import acting

from apg_jax import envs
from apg_jax.evaluation import evaluate
from apg_jax.networks import deterministic_action, init_params, make_networks
from apg_jax.normalization import init_stats

TASKS = envs.task_names()
envs.register_brax()


@pytest.mark.parametrize("task", TASKS)
def test_brax_wrap_ends_episodes_exactly_every_horizon(task):
    horizon, episodes = 4, 3
    env = wrap(brax.envs.get_environment(f"apg_{task}"), episode_length=horizon, action_repeat=1)
    state = jax.jit(env.reset)(jax.random.split(jax.random.PRNGKey(6), 2))
    step = jax.jit(env.step)
    ends, truncations = [], []
    for t in range(1, episodes * horizon + 3):
        state = step(state, jnp.zeros((2, env.action_size)))
        ends += [t] * int(np.all(state.done)) + [-t] * int(np.any(state.done) and not np.all(state.done))
        truncations.append(np.asarray(state.info["truncation"]).copy())
    assert ends == [horizon * (i + 1) for i in range(episodes)]
    # no task terminates: every end is a truncation by the time limit
    np.testing.assert_array_equal(np.array(truncations)[[e - 1 for e in ends]], 1.0)
    assert np.sum(truncations) == 2 * episodes


def random_policy(env, seed=0):
    actor, critic = make_networks(env.action_size, (32, 32), "tanh", -0.5)
    params, _ = init_params(actor, critic, jax.random.PRNGKey(seed), env.observation_size)
    params = jax.tree.map(lambda x: 5.0 * x if x.ndim == 2 and x.shape[1] == env.action_size else x, params)
    stats = init_stats(env.observation_size)
    return lambda obs: deterministic_action(actor, params, stats, obs)


@pytest.mark.parametrize("task", TASKS)
def test_brax_evaluator_reports_our_evaluation_return(task):
    """brax's EvalWrapper + Evaluator (with its metrics kept across steps) and our evaluator give the
    same mean episode return for the same policy and starts."""
    env = envs.make(task)
    horizon, n, key = env.episode_length, 8, jax.random.PRNGKey(11)
    act = random_policy(env)
    eval_env = wrap(brax.envs.get_environment(f"apg_{task}"), episode_length=horizon, action_repeat=1)
    evaluator = acting.Evaluator(eval_env, lambda params: (lambda obs, k: (act(obs), {})), num_eval_envs=n,
                                 episode_length=horizon, action_repeat=1, key=key)
    metrics = evaluator.run_evaluation(None, training_metrics={})
    _, unroll_key = jax.random.split(key)  # the key brax's evaluator unrolls with
    ours = evaluate(env, act, unroll_key, n)
    assert float(metrics["eval/episode_reward"]) == pytest.approx(float(ours["eval_return"]), rel=1e-5)
    assert float(metrics["eval/avg_episode_length"]) == horizon


@pytest.mark.slow
@pytest.mark.parametrize("algo, budget", [("ppo", 500_000), ("apg", 300_000)])
def test_brax_trainers_learn_pointmass1d_through_the_registry(tmp_path, algo, budget):
    """brax's own PPO / APG trainers (with the JAX shim) train apg_pointmass1d, through the baseline
    command, which writes our run-directory format with our evaluator's numbers."""
    from apg_jax import rundir
    from experiments import brax_baseline

    out = tmp_path / algo
    args = ["--task", "pointmass1d", "--algo", algo, "--env-steps", str(budget), "--set", "num_evals=2",
            "--out", str(out), "--no-progress"]
    if algo == "ppo":  # settings brax's PPO learns with (our tuned PPO's do not transfer: results/README.md)
        args += [f"--set={s}" for s in ("num_envs=128", "learning_rate=1e-3", "reward_scale=10.0", "rollout_length=32",
                                        "num_minibatches=8", "max_grad_norm=1.0", "gae_lambda=0.95")]
    assert brax_baseline.main(args) == 0
    rows = rundir.read_metrics(str(out))
    assert [r["chunk"] for r in rows] == [0, 1, 2]
    assert rows[0]["env_steps"] == 0 and rows[-1]["env_steps"] >= 0.9 * budget
    assert all(a["env_steps"] < b["env_steps"] for a, b in zip(rows, rows[1:]))
    # start: -72 (APG's initial policy) or about -430 (PPO's); optimum about -4.8
    assert rows[0]["eval_return"] < -50 and rows[-1]["eval_return"] > -6.5
    assert rows[-1]["eval_success"] > 0.9
    for name in ("config.json", "summary.json", "brax_settings.json", "learning_curves.png"):
        assert (out / name).stat().st_size > 0


def test_brax_baseline_names_the_settings_brax_ignores():
    from apg_jax.config import TrainConfig, default_config
    from experiments.brax_baseline import NOT_MAPPED, brax_settings, unmapped

    assert unmapped(TrainConfig()) == {}
    ignored = unmapped(default_config("tblock", "ppo"))  # our PPO's tuned tblock settings
    assert ignored["curriculum"][0] == 0.3 and ignored["lr_schedule"][0] == "linear"
    assert "adam_betas" not in ignored  # tuned at Adam's defaults: nothing lost
    changed = TrainConfig(curriculum=0.3, learning_rate=5e-4)  # a mapped field is not reported
    assert set(unmapped(changed)) == {"curriculum"}
    assert brax_settings(changed, 100) == brax_settings(changed.replace(**{
        name: getattr(TrainConfig(), name) for name in NOT_MAPPED}), 100)  # brax's arguments do not see them


def test_brax_baseline_resumes_after_the_last_finished_seed(tmp_path, monkeypatch):
    """An interrupted multi-seed baseline keeps its finished seeds' rows and retrains only the rest."""
    from apg_jax import rundir
    from apg_jax.config import default_config
    from experiments import brax_baseline

    config = default_config("pointmass1d", "ppo", seed=7, env_steps=4096)
    trained = []

    def fake_train(config, seed, on_eval, interrupt_at=None):
        trained.append(seed)
        for i in range(3):
            if seed == interrupt_at and i == 1:
                raise KeyboardInterrupt
            on_eval(1000 * i, 0.5 * i, {"eval_return": -float(seed + i), "eval_success": 0.0}, i == 2)

    monkeypatch.setattr(brax_baseline, "train_seed", lambda c, s, e: fake_train(c, s, e, interrupt_at=9))
    with pytest.raises(KeyboardInterrupt):
        brax_baseline.run_baseline(config, 3, str(tmp_path), progress=False)
    assert trained == [7, 8, 9]
    assert sorted({r["seed"] for r in rundir.read_metrics(str(tmp_path))}) == [7, 8, 9]  # 9 half-written

    trained.clear()
    monkeypatch.setattr(brax_baseline, "train_seed", fake_train)
    rows = brax_baseline.run_baseline(config, 3, str(tmp_path), progress=False)
    assert trained == [9]
    expected = [(s, i, -float(s + i)) for s in (7, 8, 9) for i in range(3)]
    assert [(r["seed"], r["chunk"], r["eval_return"]) for r in rows] == expected
    on_disk = rundir.read_metrics(str(tmp_path))
    assert [(r["seed"], r["chunk"], r["eval_return"]) for r in on_disk] == expected
