"""``train_episode_length``: training episodes end at their own time limit, evaluation keeps the task's."""
import jax
import numpy as np
import pytest

from apg_jax import default_config
from apg_jax.envs import make
from apg_jax.evaluation import evaluate
from apg_jax.networks import deterministic_action
from apg_jax.training import make_trainer
from experiments.cli import config_name


@pytest.mark.parametrize("algo, extra", [("apg", dict(segment_length=8)), ("ppo", dict(rollout_length=8))])
def test_training_episodes_end_at_the_training_horizon_and_evaluation_at_the_tasks(algo, extra):
    config = default_config("pointmass1d", algo, num_envs=8, train_episode_length=20, **extra)
    trainer = make_trainer(config)
    assert trainer.env.episode_length == make("pointmass1d").episode_length == 100
    learner = jax.jit(trainer.init)(jax.random.PRNGKey(0)).learner
    update = jax.jit(trainer.update)
    clocks = [np.asarray(learner.env_state.info["steps"])]
    for _ in range(12):
        learner, _ = update(learner)
        clocks.append(np.asarray(learner.env_state.info["steps"]))
    clocks = np.stack(clocks)  # [updates + 1, envs], each 8 steps after the last modulo the 20-step limit
    assert clocks.max() < 20
    np.testing.assert_array_equal(clocks[1:], (clocks[:-1] + 8) % 20)


def test_full_horizon_segments_span_the_training_horizon_and_the_default_is_the_tasks():
    full = default_config("pointmass1d", "apg", segment_length=None, train_episode_length=25)
    assert make_trainer(full).schedule.segment_length == 25
    assert make_trainer(full.replace(train_episode_length=None)).schedule.segment_length == 100


def test_evaluation_rolls_the_tasks_whole_horizon():
    config = default_config("pointmass1d", "apg", num_envs=8, segment_length=8, train_episode_length=10)
    trainer = make_trainer(config)
    state = jax.jit(trainer.init)(jax.random.PRNGKey(1))
    env = make("pointmass1d")
    # the evaluation's return is a sum over the task's 100 steps: the same as evaluating on the task itself
    ours = jax.jit(trainer.evaluate)(state)
    act = lambda obs: deterministic_action(trainer.actor, state.learner.actor_params, state.learner.obs_stats, obs)
    direct = jax.jit(lambda: evaluate(env, act, state.eval_key, config.num_eval_envs))()
    np.testing.assert_allclose(ours["eval_return"], direct["eval_return"], rtol=1e-6)
    short = jax.jit(lambda: evaluate(env.with_episode_length(10), act, state.eval_key, config.num_eval_envs))()
    assert abs(float(ours["eval_return"]) - float(short["eval_return"])) > 1e-3


def test_runs_with_a_training_horizon_carry_it_in_their_label():
    config = default_config("tblock", "apg", train_episode_length=None)
    assert config_name(config.replace(train_episode_length=100)) == config_name(config) + "-train100"
