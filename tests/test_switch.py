"""experiments.switch: PPO, then APG from each seed's own PPO policy, as one run."""
import os

import pytest

from apg_jax import rundir
from experiments import switch


def rows_of(seed, chunks, steps, wall, stage_algo):
    return [{"algo": stage_algo, "seed": seed, "chunk": c, "env_steps": c * steps, "grad_steps": 10 * c,
             "actor_grad_steps": 10 * c, "critic_grad_steps": 5 * c, "wall_time_s": wall * c,
             "eval_return": -float(c)} for c in range(chunks + 1)]


def test_joined_rows_count_each_stage_on_from_the_end_of_the_one_before_per_seed():
    first = rows_of(0, 3, 100, 2.0, "ppo") + rows_of(1, 3, 100, 2.0, "ppo")
    then = rows_of(0, 2, 7, 0.5, "apg") + rows_of(1, 2, 7, 0.5, "apg")
    last = rows_of(1, 1, 3, 1.0, "ppo") + rows_of(0, 1, 3, 1.0, "ppo")
    joined = switch.joined_rows([first, then, last])
    assert len(joined) == 8 + 4 + 2  # a later stage's chunk 0 repeats the stage before's last policy: dropped
    for seed in (0, 1):
        mine = [r for r in joined if r["seed"] == seed]
        assert [r["env_steps"] for r in mine] == [0, 100, 200, 300, 307, 314, 317]
        assert [r["chunk"] for r in mine] == [0, 1, 2, 3, 4, 5, 6]
        assert [r["actor_grad_steps"] for r in mine] == [0, 10, 20, 30, 40, 50, 60]
        assert [r["wall_time_s"] for r in mine] == [0.0, 2.0, 4.0, 6.0, 6.5, 7.0, 8.0]
        assert [r["stage"] for r in mine] == [1, 1, 1, 1, 2, 2, 3]
        assert [r["algo"] for r in mine][-2:] == ["apg", "ppo"]


def test_bad_stage_two_setting_is_refused_before_stage_one_trains(tmp_path, capsys):
    out = tmp_path / "sw"
    code = switch.main(["--task", "pointmass1d", "--no-progress", "--out", str(out),
                        "--set", "2:segment_length=0"])
    assert code == 2
    assert "segment_length" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_switch_continues_every_seed_from_its_own_first_stage_policy(tmp_path):
    out = str(tmp_path / "sw")
    argv = ["--task", "pointmass1d", "--seeds", "2", "--no-progress", "--no-artifacts", "--out", out,
            "--stages", f"ppo:{2 * 32 * 32 * 4}", f"apg:{2 * 32 * 100}",
            "--set", "1:num_envs=32", "--set", "1:rollout_length=32", "--set", "1:num_evals=2",
            "--set", "2:num_envs=32", "--set", "2:num_evals=2"]
    assert switch.main(argv) == 0
    first = rundir.read_metrics(os.path.join(out, "1-ppo"))
    then = rundir.read_metrics(os.path.join(out, "2-apg"))
    config, _ = rundir.read_config(os.path.join(out, "2-apg"))
    assert (config.init_policy_seed, config.learning_rate, config.curriculum) == ("paired", 1e-4, 0.0)
    last = {r["seed"]: r["eval_return"] for r in first if r["chunk"] == 2}
    start = {r["seed"]: r["eval_return"] for r in then if r["chunk"] == 0}
    assert abs(last[0] - last[1]) > 1e-3 * abs(last[0])  # seeds differ, so pairing is checked
    assert start == pytest.approx(last, rel=1e-5)
    joined = rundir.read_metrics(out)
    assert max(r["env_steps"] for r in joined) == max(r["env_steps"] for r in first) + max(
        r["env_steps"] for r in then)
    assert switch.main(argv) == 0  # resuming a finished switch trains nothing more
    curve = lambda rows: [(r["seed"], r["chunk"], r["env_steps"], r["eval_return"]) for r in rows]
    assert curve(rundir.read_metrics(os.path.join(out, "2-apg"))) == curve(then)


def test_stages_come_from_the_recipe_and_settings_reach_their_stage():
    args = switch.parse_args(["--task", "tblock", "--set", "2:segment_length=4", "--seed", "4"])
    configs = switch.stage_configs(args, switch.stage_list(args), "runs/x")
    assert [(c.algo, c.env_steps) for c in configs] == [("ppo", 30_000_000), ("apg", 2_000_000)]
    assert configs[0].init_policy is None and configs[0].curriculum == 0.6  # stage 1: the task's defaults
    assert (configs[1].init_policy, configs[1].init_policy_seed) == (os.path.join("runs/x", "1-ppo"), "paired")
    assert {c.seed for c in configs} == {4}
    assert (configs[1].learning_rate, configs[1].curriculum) == (1e-4, 0.0)  # the finetune preset
    assert configs[1].segment_length == 4  # --set reaches its stage only
    # the recipe keeps the settings it was measured with, whatever the task's defaults are now
    assert (configs[0].num_envs, configs[0].ent_coef, configs[0].ppo_epochs) == (128, 0.01, 4)
    assert (configs[1].num_envs, configs[1].reward_scale, configs[1].bootstrap) == (64, 1.0, "mc")
    three = switch.parse_args(["--task", "tblock", "--stages", "ppo:3e7", "apg:2e6", "ppo:1e7",
                               "--set", "3:init_policy_log_std=-3.0"])
    configs = switch.stage_configs(three, switch.stage_list(three), "runs/x")
    assert configs[2].init_policy == os.path.join("runs/x", "2-apg") and configs[2].init_policy_log_std == -3.0
    plain = switch.parse_args(["--task", "pointmass2d", "--stages", "apg:5e5", "ppo"])
    algos_budgets = [(c.algo, c.env_steps) for c in switch.stage_configs(plain, switch.stage_list(plain), "o")]
    assert algos_budgets[0] == ("apg", 500_000) and algos_budgets[1][0] == "ppo"


@pytest.mark.parametrize("argv, message", [
    (["--set", "3:ent_coef=0"], "STAGE in 1..2"),
    (["--set", "ent_coef=0"], "STAGE:NAME=VALUE"),
    (["--stages", "ppo:lots"], "a stage is ALGO[:ENV_STEPS]"),
    (["--stages", "sac:1e6"], "unknown algo 'sac'"),
])
def test_bad_stages_are_refused_with_what_to_change(argv, message, tmp_path, capsys):
    try:
        code = switch.main(["--task", "tblock", "--out", str(tmp_path / "sw"), "--no-progress"] + argv)
    except SystemExit as exit_:  # argparse's own refusal
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "sw").exists()
