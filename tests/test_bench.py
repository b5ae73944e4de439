"""The benchmark's side-by-side reference and its forward / memory figures."""
import jax
import jax.numpy as jnp
import numpy as np

from apg_jax import envs
from experiments import bench


def test_pinned_task_is_the_module_at_that_revision():
    """The class pinned at HEAD is loaded from git as a separate module and steps like the current one.
    (The old franka implementation's agreement with MuJoCo was its own test; the speed comparison with it is
    a benchmark, not a test, so this needs no history beyond HEAD.)"""
    q = envs.make("franka").reset(jax.random.PRNGKey(0)).pipeline_state
    u = 0.3 * jnp.ones(7)
    now = envs.make("franka").physics_step(q, u)[0]
    head = bench.pinned_task("franka", "HEAD")()
    assert type(head).__module__ != envs.TASKS["franka"].__module__
    np.testing.assert_allclose(head.physics_step(q, u)[0], now, rtol=1e-6, atol=1e-7)


def test_bench_prints_forward_ratio_reference_and_memory(capsys):
    bench.main(["--tasks", "pointmass1d", "--num-envs", "4", "--steps", "5", "--iterations", "1", "--repeats", "1",
                "--methods", "apg mc", "--reference", "HEAD", "--memory"])
    out = capsys.readouterr().out
    rows = {line[12:35].strip(): line.split() for line in out.splitlines() if line.startswith("pointmass1d")}
    assert {"bare fused loop", "forward rollout", "apg mc", "forward rollout @HEAD", "apg mc @HEAD"} <= set(rows)
    assert float(rows["apg mc"][-1]) > 0  # grad/fwd ratio column
    memory = [line for line in out.splitlines() if line.startswith("pointmass1d") and "MiB" in line]
    assert len(memory) == 1 and float(memory[0].split()[-2]) > 0
