"""Open-loop trajectory optimisation per start (``apg_jax.trajopt``): which starts the simulator's gradient
can solve when every start has its own free actions.

    python -m experiments.trajopt --task tblock --starts near --episodes 32 --restarts 8 --out trajopt-near/
    python -m experiments.trajopt --task pointmass1d --episodes 16 --restarts 2 --iterations 500 --out t/

Starts as in ``experiments.evaluate`` (``--initial-states``, ``--starts BAND`` or the reset distribution,
``--draw-seed``). Each start is optimised from ``--restarts`` random initial action sequences
(``z ~ N(0, init_scale^2)``, actions ``tanh(z)``) over ``--horizon`` steps (default: the episode). Writes:
- ``OUT/episodes.csv``: per start ``index, return, success`` of the restart with the highest return, its
  task metrics (tblock: ``max_coverage, final_coverage``), and ``restart_success_rate`` (the share of
  restarts that succeed);
- ``OUT/trajectories.npz``: ``q [N, T + 1, state_dim]`` and ``actions [N, T, action_size]`` of those
  best restarts, and ``history [N, restarts, iterations]`` (the return before each iteration).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from experiments.cli import parse_overrides, select_platform


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m experiments.trajopt", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--initial-states", default=None, metavar="FILE.npy", help="[N, state_dim] initial states")
    p.add_argument("--episodes", type=int, default=32, help="starts drawn from the reset distribution")
    p.add_argument("--starts", default=None, metavar="BAND", help="draw them from a named start band instead")
    p.add_argument("--draw-seed", type=int, default=0, help="RNG seed of those draws")
    p.add_argument("--restarts", type=int, default=4, help="random initial action sequences per start")
    p.add_argument("--horizon", type=int, default=None, help="steps optimised (default: the episode length)")
    p.add_argument("--iterations", type=int, default=300, help="Adam steps per restart")
    p.add_argument("--learning-rate", type=float, default=0.05, help="Adam step size on the pre-tanh actions")
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="per-sequence gradient clipping")
    p.add_argument("--init-scale", type=float, default=0.5, help="std of the initial pre-tanh actions")
    p.add_argument("--seed", type=int, default=1, help="RNG seed of the initial action sequences")
    p.add_argument("--batch", type=int, default=16, help="sequences optimised at once (memory: T x batch)")
    p.add_argument("--env-set", action="append", default=[], metavar="NAME=VALUE",
                   help="change a field of the task's Params (repeatable)")
    p.add_argument("--device", default=None, choices=["cpu", "gpu", "cuda"])
    return p.parse_args(argv)


def optimize_starts(env, q0: np.ndarray, restarts: int, horizon: int, iterations: int, learning_rate: float,
                    max_grad_norm: float, init_scale: float, seed: int, batch: int) -> dict:
    """Optimise every start of ``q0 [N, state_dim]`` from ``restarts`` random sequences; returns numpy arrays
    ``actions, returns [N, R, ...]``, ``history [N, R, iterations]``."""
    import jax
    import jax.numpy as jnp

    from apg_jax.trajopt import optimize_actions

    n = q0.shape[0]
    z0 = init_scale * jax.random.normal(jax.random.PRNGKey(seed), (n, restarts, horizon, env.action_size))
    problems = (jnp.repeat(jnp.asarray(q0), restarts, axis=0), z0.reshape(n * restarts, horizon, -1))
    solve = lambda p: optimize_actions(env, p[0], p[1], iterations, learning_rate, max_grad_norm)
    result = jax.device_get(jax.jit(lambda ps: jax.lax.map(solve, ps, batch_size=batch))(problems))
    return {name: np.asarray(v).reshape(n, restarts, *np.shape(v)[1:]) for name, v in result._asdict().items()}


def score(env, q0: np.ndarray, actions: np.ndarray) -> dict:
    """Rollouts of ``actions [N, R, T, A]``: ``q [N, R, T + 1, S]``, ``success [N, R]`` (the task's episode
    rule over the T steps) and the task's episode metrics ``[N, R]``."""
    import jax
    import jax.numpy as jnp

    from apg_jax.trajopt import rollout_actions

    def one(q, u):
        qs, _ = rollout_actions(env, q, u)
        flags = jax.vmap(env.success)(qs[1:])
        success = flags[-1] if env.success_mode == "final" else jnp.max(flags)
        return qs, success, env.episode_metrics(qs)

    per_restart = jax.vmap(one, in_axes=(None, 0))
    return jax.device_get(jax.jit(jax.vmap(per_restart))(jnp.asarray(q0), jnp.asarray(actions)))


def trajopt(task: str, out: str, initial_states: str | None = None, episodes: int = 32, starts: str | None = None,
            draw_seed: int = 0, restarts: int = 4, horizon: int | None = None, iterations: int = 300,
            learning_rate: float = 0.05, max_grad_norm: float = 1.0, init_scale: float = 0.5, seed: int = 1,
            batch: int = 16, env_overrides: dict | None = None) -> list[dict]:
    """Run the optimisation and write ``episodes.csv`` and ``trajectories.npz``; returns the rows."""
    from apg_jax import envs
    from experiments.evaluate import choose_starts, write_episodes

    try:
        env = envs.make(task, **(env_overrides or {}))
    except (TypeError, ValueError) as err:
        raise ValueError(str(err)) from None
    horizon = env.episode_length if horizon is None else horizon
    for name, value in (("--restarts", restarts), ("--horizon", horizon), ("--iterations", iterations),
                        ("--batch", batch)):  # --episodes: checked by choose_starts
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    q0 = choose_starts(env, initial_states, starts, episodes, draw_seed)

    found = optimize_starts(env, q0, restarts, horizon, iterations, learning_rate, max_grad_norm, init_scale,
                            seed, batch)
    scored = score(env, q0, found["actions"])
    best = np.argmax(found["returns"], axis=1)  # [N]
    pick = lambda a: a[np.arange(len(best)), best]
    os.makedirs(out, exist_ok=True)
    np.savez_compressed(os.path.join(out, "trajectories.npz"), q=pick(scored[0]), actions=pick(found["actions"]),
                        history=found["history"])
    rows = [{"index": i, "return": float(pick(found["returns"])[i]), "success": float(pick(scored[1])[i]),
             **{name: float(pick(v)[i]) for name, v in scored[2].items()},
             "restart_success_rate": float(np.mean(scored[1][i]))} for i in range(q0.shape[0])]
    write_episodes(out, rows)
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    select_platform(args.device)
    start = time.time()
    try:
        rows = trajopt(args.task, args.out, args.initial_states, args.episodes, args.starts, args.draw_seed,
                       args.restarts, args.horizon, args.iterations, args.learning_rate, args.max_grad_norm,
                       args.init_scale, args.seed, args.batch, parse_overrides(args.env_set))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    mean = lambda k: float(np.mean([r[k] for r in rows]))
    extra = "".join(f", {k} {mean(k):.3f}" for k in rows[0] if k not in ("index", "return", "success"))
    solved = float(np.mean([r["restart_success_rate"] > 0 for r in rows]))
    print(f"{len(rows)} starts, best of restarts: return {mean('return'):.4f}, success {mean('success'):.3f}"
          f"{extra}; solved by some restart {solved:.3f} ({time.time() - start:.0f} s); outputs in "
          f"{os.path.abspath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
