"""Domain randomisation (``apg_jax.envs.randomized``), franka's link-mass mismatch, and their wiring into
training and the command line."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from apg_jax import ConfigError, default_config, envs
from apg_jax.envs import franka as F
from apg_jax.envs.randomized import RandomizedPhysics
from apg_jax.training import make_trainer
from experiments import run as run_cli
from experiments.cli import parse_ranges
from experiments.runner import run_experiment
from gradcheck import fd_jacobian, relative_error


@pytest.mark.parametrize("task, ranges", [
    ("pointmass1d", {"mass": (0.5, 2.0), "force_scale": (4.0, 6.0)}),
    pytest.param("tblock", {"friction": (0.15, 0.45), "trans_resistance": (0.5, 1.5)}, marks=pytest.mark.slow),
    pytest.param("franka", {"link_mass_scale": (0.5, 1.5), "joint_damping": (0.1, 0.3)}, marks=pytest.mark.slow),
])
def test_values_are_drawn_per_reset_held_and_act_as_the_task_at_those_values(task, ranges):
    """Values within their ranges and different per reset; a step holds them and equals the task built
    with them (state, reward, observation); the action gradient equals that task's."""
    env = envs.make(task)
    wrapped = RandomizedPhysics(env, ranges)
    states = jax.vmap(wrapped.reset)(jax.random.split(jax.random.PRNGKey(0), 64))
    values = np.asarray(states.pipeline_state[:, env.state_dim:])
    low, high = np.array([ranges[n] for n in wrapped.names]).T
    assert np.all(values >= low) and np.all(values <= high) and np.all(values.std(axis=0) > 0.2 * (high - low) / 4)
    q = states.pipeline_state[3]
    if task == "tblock":  # the pusher moving into the block, so friction and resistance act
        q = q.at[:10].set(jnp.array([0.03, 0.0165, 0.05, -0.3, 0.0, 0.0, 0.1, 0.0, 0.0, np.pi / 4]))
    u = 0.4 * jnp.ones(env.action_size)
    q_next, reward = wrapped.physics_step(q, u)
    plain = envs.make(task, **{n: float(v) for n, v in zip(wrapped.names, values[3])})
    q_plain, reward_plain = plain.physics_step(q[:env.state_dim], u)
    np.testing.assert_allclose(q_next[env.state_dim:], values[3])
    np.testing.assert_allclose(q_next[:env.state_dim], q_plain, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reward, reward_plain, rtol=1e-5)
    np.testing.assert_allclose(wrapped.observe(q), plain.observe(q[:env.state_dim]))
    grad = jax.grad(lambda a: wrapped.physics_step(q, a)[1])(u)
    grad_plain = jax.grad(lambda a: plain.physics_step(q[:env.state_dim], a)[1])(u)
    np.testing.assert_allclose(grad, grad_plain, rtol=1e-4, atol=1e-6)
    # the nominal task really differs at these values (the randomisation is not a no-op)
    assert float(jnp.max(jnp.abs(env.physics_step(q[:env.state_dim], u)[0] - q_plain))) > 1e-6


@pytest.mark.parametrize("ranges, message", [
    ({"dt": (0.01, 0.02)}, "cannot randomise 'dt'; randomisable parameters: mass, force_scale"),
    ({"mass": (2.0, 1.0)}, "need finite low <= high"),
    ({"mass": (1.0, float("nan"))}, "need finite low <= high"),
    ({}, "at least one parameter range"),
])
def test_bad_ranges_say_what_to_change(ranges, message):
    with pytest.raises(ValueError, match=message):
        RandomizedPhysics(envs.make("pointmass1d"), ranges)


def test_a_bound_where_the_task_is_invalid_is_refused():
    with pytest.raises(ValueError, match="invalid at -0.5: link_mass_scale must be > 0"):
        RandomizedPhysics(envs.make("franka"), {"link_mass_scale": (-0.5, 1.0)})
    with pytest.raises(ConfigError, match="cannot randomise"):
        make_trainer(default_config("tblock", "apg", randomize={"block_mass": (0.05, 0.2)}))


def test_franka_link_mass_scale_is_the_plant_with_scaled_links_under_the_models_compensation():
    """``M_s qdd = tau_ctrl + passive - s bias`` with ``M_s = s (M - armature) + armature`` and the
    controller compensating the *model's* gravity; the derivative in the scale matches central
    differences (float64)."""
    with jax.enable_x64(True):
        env = envs.make("franka")
        rng = np.random.default_rng(0)
        q, qd = jnp.asarray(F.READY_POSE + rng.uniform(-0.2, 0.2, 7)), jnp.asarray(rng.normal(size=7))
        target = env.joint_target(jnp.asarray(rng.uniform(-1, 1, 7)))
        armature = jnp.diag(jnp.asarray(F.ARMATURE))
        model_gravity = F._gravity_torque(F._link_inertials(q), env.params.gravity)
        for scale in (0.5, 1.5):
            scaled = envs.make("franka", link_mass_scale=scale)
            acc = scaled.joint_acceleration(q, qd, target=target)
            torque = env.control_torque(q, qd, target, model_gravity) + env.passive_torque(q, qd)
            mass = scale * (F.mass_matrix(q) - armature) + armature
            expected = jnp.linalg.solve(mass, torque - scale * F.bias_forces(q, qd))
            np.testing.assert_allclose(acc, expected, rtol=1e-9, atol=1e-9)
        u = jnp.asarray(rng.uniform(-1, 1, 7))
        q0 = env.sample_initial_q(jax.random.PRNGKey(1)).astype(jnp.float64)
        wrapped = RandomizedPhysics(env, {"link_mass_scale": (0.5, 1.5)})
        f = lambda s: wrapped.physics_step(jnp.concatenate([q0, s]), u)[0][:env.state_dim]
        s0 = jnp.asarray([1.2])
        assert relative_error(jax.jacfwd(f)(s0), fd_jacobian(f, s0, eps=1e-6)) < 1e-6
        assert relative_error(jax.jacrev(f)(s0), fd_jacobian(f, s0, eps=1e-6)) < 1e-6


def test_training_randomises_the_learners_episodes_and_evaluates_the_nominal_task(tmp_path):
    """A randomised run's learner states carry drawn masses; its evaluations are of the nominal task (the
    initial evaluation equals a nominal run's, same seed) and it trains (its best evaluation improves by > 10)."""
    common = dict(num_envs=32, env_steps=32 * 100 * 4, num_evals=4)
    randomised = default_config("pointmass1d", "apg", randomize={"mass": (0.5, 2.0)}, **common)
    trainer = make_trainer(randomised)
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    masses = np.asarray(state.learner.env_state.pipeline_state[:, -1])
    assert masses.min() >= 0.5 and masses.max() <= 2.0 and masses.std() > 0.2
    assert trainer.env.state_dim == 3  # evaluation: the plain task
    rows = run_experiment(randomised, 1, str(tmp_path / "r"), progress=False, artifacts=False).rows
    nominal = run_experiment(default_config("pointmass1d", "apg", **common), 1, str(tmp_path / "n"),
                             progress=False, artifacts=False).rows
    assert rows[0]["eval_return"] == pytest.approx(nominal[0]["eval_return"], rel=1e-6)
    # at this budget both runs' evaluations swing (nominal: -71, -57, -151, -93, -52): the best one is the
    # learning signal (randomised +14, nominal +19)
    assert max(r["eval_return"] for r in rows[1:]) > rows[0]["eval_return"] + 10.0
    assert rows[-1]["eval_return"] != pytest.approx(nominal[-1]["eval_return"], rel=1e-4)


def test_cli_parses_ranges_and_records_them(tmp_path):
    assert parse_ranges(["mass=0.5:2", "force-scale=4:6"]) == {"mass": (0.5, 2.0), "force_scale": (4.0, 6.0)}
    with pytest.raises(SystemExit, match="NAME=LOW:HIGH"):
        parse_ranges(["mass=0.5"])
    args = run_cli.parse_args(["--task", "pointmass1d", "--env-randomize", "mass=0.5:2"])
    config = run_cli.build_config(args)
    assert config.randomize == {"mass": (0.5, 2.0)}
    assert config.from_dict(json.loads(config.to_json())).randomize == {"mass": (0.5, 2.0)}


def test_robustness_table_equals_evaluations_under_changed_parameters(tmp_path):
    """``experiments.robustness`` (one compiled program, values in the state) gives, per seed and
    condition, what ``experiments.evaluate --env-set`` gives on the same starts with the task rebuilt."""
    import csv

    from experiments import robustness
    from experiments.evaluate import evaluate_run

    config = default_config("pointmass1d", "apg", num_envs=16, env_steps=16 * 100 * 2, num_evals=2)
    run_dir = str(tmp_path / "run")
    run_experiment(config, 2, run_dir, progress=False, artifacts=False)
    out = str(tmp_path / "rob")
    assert robustness.main([run_dir, "--scale", "mass=0.5,2", "--episodes", "32", "--out", out]) == 0
    rows = list(csv.DictReader(open(f"{out}/robustness.csv")))
    assert [r["condition"] for r in rows[:3]] == ["nominal", "mass x0.5", "mass x2"] and len(rows) == 6
    for row in rows:
        mass = {"nominal": 1.0, "mass x0.5": 0.5, "mass x2": 2.0}[row["condition"]]
        episodes = evaluate_run(run_dir, str(tmp_path / "ev"), seed=int(row["seed"]), episodes=32,
                                env_overrides={"mass": mass})
        assert float(row["return"]) == pytest.approx(np.mean([e["return"] for e in episodes]), rel=1e-4)
        assert float(row["success"]) == pytest.approx(np.mean([e["success"] for e in episodes]), abs=1e-6)
    returns = {r["condition"]: float(r["return"]) for r in rows if r["seed"] == "0"}
    assert len(set(returns.values())) == 3  # the mass matters
    assert "± " in open(f"{out}/robustness.md").read()
    with pytest.raises(SystemExit, match="factors must be positive"):
        robustness.main([run_dir, "--scale", "mass=-1", "--out", out])
    assert robustness.main([run_dir, "--scale", "dt=2", "--out", out]) == 2  # not randomisable: an error
