"""python -m experiments.trials: trials kept apart by directory, the differing settings, final numbers."""
import json

from apg_jax import default_config, rundir
from experiments import trials


def fake_trial(root, name, config, returns, coverage):
    path = root / name
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({**json.loads(config.to_json()), "num_seeds": 2}))
    rows = []
    for chunk, (ret, cov) in enumerate(zip(returns, coverage)):
        for seed, offset in ((0, -1.0), (1, 1.0)):  # two seeds around the given mean
            counts = {"env_steps": 1000 * chunk, "actor_grad_steps": chunk, "critic_grad_steps": 0}
            rows.append(rundir.metric_row(config, seed, chunk, counts, 2.0 * chunk,
                                          {"eval_return": ret + offset, "eval_success": 0.5,
                                           "eval_max_coverage": cov}))
    rundir.write_metrics(str(path), rows)


def test_trials_table_and_figure(tmp_path):
    base = default_config("tblock", "apg").replace(curriculum=0.0)
    fake_trial(tmp_path / "runs", "plain", base, [-10.0, -5.0, -7.0], [0.1, 0.2, 0.3])
    fake_trial(tmp_path / "runs", "curriculum", base.replace(curriculum=0.5), [-10.0, -4.0, -3.0], [0.1, 0.5, 0.6])
    assert trials.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    lines = (tmp_path / "out" / "trials.md").read_text().splitlines()
    assert lines[0].split(" | ")[1] == "curriculum"  # the only setting that differs
    row = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in lines[2:]}
    assert row["plain"][1:] == ["0.0", "0.00 M", "4", "-7.0", "-5.0", "0.500", "0.300 |"]
    assert row["curriculum"][1:] == ["0.5", "0.00 M", "4", "-3.0", "-3.0", "0.500", "0.600 |"]
    assert (tmp_path / "out" / "trials.png").stat().st_size > 10_000


def test_trials_without_runs_is_an_error(tmp_path, capsys):
    assert trials.main([str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no run directories" in capsys.readouterr().err
