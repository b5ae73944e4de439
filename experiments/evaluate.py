"""Evaluate a trained policy from chosen initial states (or fresh resets), optionally under changed physics.

    python -m experiments.evaluate RUN_DIR --initial-states starts.npy --out eval/ [--seed S]
    python -m experiments.evaluate RUN_DIR --episodes 256 --out eval/ --env-set friction=0.75
    python -m experiments.evaluate RUN_DIR --episodes 256 --starts near --out eval-near/

Rolls the saved policy of seed ``S`` (deterministic actions, full horizon) from each initial physics
state of ``FILE.npy`` (``[N, state_dim]``, in the task's ``physics_state`` layout; tblock:
``px, py, pvx, pvy, bx, by, btheta, gx, gy, gtheta``) or, without it, from ``--episodes`` starts drawn
from the task's reset distribution (``--draw-seed``), or from one of its named start bands (``--starts``;
tblock: ``near`` = block origin within 3 cm and 30 degrees of the goal, ``middle`` = 3-8 cm and 30-90
degrees). ``--env-set NAME=VALUE`` (repeatable) changes a
field of the task's ``Params`` for this evaluation only (model mismatch). Writes:
- ``OUT/episodes.csv``: one row per episode: ``index, return, success`` and the task's episode metrics
  (tblock: ``max_coverage, final_coverage``);
- ``OUT/trajectories.npz``: ``q [N, T + 1, state_dim]`` and ``actions [N, T, action_size]`` (the clipped
  actions passed to ``physics_step``).
Bad input (unknown run directory or seed, wrong width, NaN) stops with an error before any rollout.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys

import numpy as np

from experiments.cli import parse_overrides, select_platform


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m experiments.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="a finished run directory (holding policy.msgpack)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=None, help="which trained seed's policy (default: the run's first)")
    p.add_argument("--initial-states", default=None, metavar="FILE.npy", help="[N, state_dim] initial states")
    p.add_argument("--episodes", type=int, default=128, help="starts drawn from the reset distribution")
    p.add_argument("--starts", default=None, metavar="BAND",
                   help="draw the --episodes starts from one of the task's named start bands instead "
                        "(tblock: near, middle)")
    p.add_argument("--draw-seed", type=int, default=0, help="RNG seed of those draws")
    p.add_argument("--env-set", action="append", default=[], metavar="NAME=VALUE",
                   help="change a field of the task's Params for this evaluation (repeatable)")
    p.add_argument("--device", default=None, choices=["cpu", "gpu", "cuda"])
    return p.parse_args(argv)


def load_initial_states(path: str, env) -> np.ndarray:
    """``[N, state_dim]`` float32 states from a ``.npy`` file, checked for shape and finiteness."""
    if not os.path.exists(path):
        raise ValueError(f"no such file: {path}")
    q0 = np.load(path)
    if q0.ndim != 2 or q0.shape[1] != env.state_dim:
        raise ValueError(f"{path} holds an array of shape {q0.shape}; task '{env.name}' needs "
                         f"[N, {env.state_dim}] physics states")
    if not np.all(np.isfinite(q0)):
        rows = np.nonzero(~np.all(np.isfinite(q0), axis=1))[0]
        raise ValueError(f"{path} has NaN/inf in rows {rows[:10].tolist()}; give finite initial states")
    return q0.astype(np.float32)


def draw_band(env, band: str, key, n: int):
    """``[n, state_dim]`` starts from the task's named start band (``env.start_bands``)."""
    import jax

    bands = getattr(env, "start_bands", {})
    if band not in bands:
        raise ValueError(f"task '{env.name}' has no start band '{band}'; "
                         f"its bands: {', '.join(bands) or 'none'}")
    distance, angle = bands[band]
    return jax.vmap(lambda k: env.sample_band(k, distance, angle))(jax.random.split(key, n))


def choose_starts(env, initial_states: str | None, starts: str | None, episodes: int,
                  draw_seed: int) -> np.ndarray:
    """``[N, state_dim]`` starts: those of the ``.npy`` file, else ``episodes`` drawn (``draw_seed``) from
    the named start band, else from the task's reset distribution."""
    import jax

    from apg_jax.envs.batch import reset_batch

    if initial_states is not None and starts is not None:
        raise ValueError("give either --initial-states or --starts, not both")
    if initial_states is not None:
        return load_initial_states(initial_states, env)
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    key = jax.random.PRNGKey(draw_seed)
    if starts is not None:
        return np.asarray(draw_band(env, starts, key, episodes))
    return np.asarray(reset_batch(env, key, episodes).pipeline_state)


def write_episodes(out: str, rows: list[dict]) -> None:
    """``out/episodes.csv``: one row per episode, the columns those of the first row."""
    with open(os.path.join(out, "episodes.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def evaluate_run(run_dir: str, out: str, seed: int | None = None, initial_states: str | None = None,
                 episodes: int = 128, draw_seed: int = 0, env_overrides: dict | None = None,
                 starts: str | None = None) -> list[dict]:
    """Roll the policy, write ``episodes.csv`` and ``trajectories.npz`` into ``out``; returns the rows."""
    import jax

    from apg_jax import envs, load_policy, rundir
    from apg_jax.evaluation import episode_success, rollout_from_states

    config, _ = rundir.read_config(run_dir)
    seed = config.seed if seed is None else seed
    policy = load_policy(run_dir, seed)  # checks the seed and that the run finished
    try:
        env = envs.make(config.task, **{**config.env_params, **(env_overrides or {})})
    except TypeError as err:
        raise ValueError(f"--env-set: {err}") from None
    q0 = choose_starts(env, initial_states, starts, episodes, draw_seed)

    @jax.jit
    def run(q):
        qs, actions, rewards, success = rollout_from_states(env, policy, q)
        metrics = jax.vmap(env.episode_metrics, in_axes=1)(qs)
        return qs, actions, rewards.sum(0), episode_success(env, success), metrics

    qs, actions, returns, success, metrics = jax.device_get(run(q0))
    os.makedirs(out, exist_ok=True)
    np.savez_compressed(os.path.join(out, "trajectories.npz"), q=np.swapaxes(qs, 0, 1),
                        actions=np.swapaxes(actions, 0, 1))
    rows = [{"index": i, "return": float(returns[i]), "success": float(success[i]),
             **{name: float(v[i]) for name, v in metrics.items()}} for i in range(q0.shape[0])]
    write_episodes(out, rows)
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    select_platform(args.device)
    try:
        rows = evaluate_run(args.run_dir, args.out, args.seed, args.initial_states, args.episodes,
                            args.draw_seed, parse_overrides(args.env_set), args.starts)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    mean = lambda k: float(np.mean([r[k] for r in rows]))
    extra = "".join(f", {k} {mean(k):.3f}" for k in rows[0] if k not in ("index", "return", "success"))
    print(f"{len(rows)} episodes: return {mean('return'):.4f}, success {mean('success'):.3f}{extra}; "
          f"outputs in {os.path.abspath(args.out)}: episodes.csv, trajectories.npz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
