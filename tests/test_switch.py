"""experiments.switch: PPO, then APG from each seed's own PPO policy, as one run."""
import os

import pytest

from apg_jax import rundir
from experiments import switch


def rows_of(seed, chunks, steps, wall, stage_algo):
    return [{"algo": stage_algo, "seed": seed, "chunk": c, "env_steps": c * steps, "grad_steps": 10 * c,
             "actor_grad_steps": 10 * c, "critic_grad_steps": 5 * c, "wall_time_s": wall * c,
             "eval_return": -float(c)} for c in range(chunks + 1)]


def test_joined_rows_count_stage_two_on_from_the_end_of_stage_one_per_seed():
    first = rows_of(0, 3, 100, 2.0, "ppo") + rows_of(1, 3, 100, 2.0, "ppo")
    then = rows_of(0, 2, 7, 0.5, "apg") + rows_of(1, 2, 7, 0.5, "apg")
    joined = switch.joined_rows(first, then)
    assert len(joined) == 8 + 4  # stage 2's chunk 0 repeats stage 1's last policy: dropped
    for seed in (0, 1):
        mine = [r for r in joined if r["seed"] == seed]
        assert [r["env_steps"] for r in mine] == [0, 100, 200, 300, 307, 314]
        assert [r["chunk"] for r in mine] == [0, 1, 2, 3, 4, 5]
        assert [r["actor_grad_steps"] for r in mine] == [0, 10, 20, 30, 40, 50]
        assert [r["wall_time_s"] for r in mine] == [0.0, 2.0, 4.0, 6.0, 6.5, 7.0]
        assert [r["stage"] for r in mine] == [1, 1, 1, 1, 2, 2]
        assert [r["algo"] for r in mine][-1] == "apg"


def test_bad_stage_two_setting_is_refused_before_stage_one_trains(tmp_path, capsys):
    out = tmp_path / "sw"
    code = switch.main(["--task", "pointmass1d", "--no-progress", "--out", str(out),
                        "--then-set", "segment_length=0"])
    assert code == 2
    assert "segment_length" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_switch_continues_every_seed_from_its_own_first_stage_policy(tmp_path):
    out = str(tmp_path / "sw")
    argv = ["--task", "pointmass1d", "--seeds", "2", "--no-progress", "--no-artifacts", "--out", out,
            "--first-env-steps", str(2 * 32 * 32 * 4), "--first-set", "num_envs=32", "--first-set",
            "rollout_length=32", "--first-set", "num_evals=2",
            "--then-env-steps", str(2 * 32 * 100), "--then-set", "num_envs=32", "--then-set", "num_evals=2"]
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
