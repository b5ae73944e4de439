"""Domain randomisation: a task whose physical parameters are drawn afresh for every episode.

``RandomizedPhysics(env, {"friction": (0.15, 0.45)})`` appends the drawn values to the physics state,
``q = (q_task, values)``: they are drawn uniformly at every reset, carried unchanged by ``physics_step``
and hidden from the observation (the policy must cope with every value, not identify it). Because they
live in ``q``, everything downstream is untouched: the learners' batches, automatic resets, the
evaluator. APG differentiates through the dynamics *at the drawn values* (they are constants of the
episode: nothing differentiates with respect to them); PPO samples them like any reset.

Only the parameters a task lists in ``randomizable`` may vary: those its dynamics use as plain numbers in
``jnp`` arithmetic, so a traced value can stand in for them (a parameter that sets array shapes, substep
counts or precomputed tables cannot).
"""
from __future__ import annotations

import copy
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from apg_jax.envs.base import DiffEnv


def check_ranges(env: DiffEnv, ranges: dict) -> dict[str, tuple[float, float]]:
    """``{name: (low, high)}`` as floats, or a ``ValueError`` that says what to change: unknown or
    non-randomisable names, ``low > high``, non-finite bounds, or a bound at which the task is invalid."""
    allowed = tuple(getattr(env, "randomizable", ()))
    out = {}
    for name, bounds in ranges.items():
        if name not in allowed:
            raise ValueError(f"task '{env.name}' cannot randomise '{name}'; randomisable parameters: "
                             f"{', '.join(allowed) or 'none'}")
        try:
            low, high = (float(b) for b in bounds)
        except (TypeError, ValueError):
            raise ValueError(f"randomize {name}: give (low, high), got {bounds!r}") from None
        if not (np.isfinite(low) and np.isfinite(high)) or low > high:
            raise ValueError(f"randomize {name}: need finite low <= high, got ({low}, {high})")
        nominal = dataclasses.asdict(env.params)
        for value in (low, high):  # the task's own checks (stability, signs) at both ends of the range
            try:
                type(env)(**{**nominal, name: value})
            except (TypeError, ValueError) as err:
                raise ValueError(f"randomize {name}: the task is invalid at {value}: {err}") from None
        out[name] = (low, high)
    if not out:
        raise ValueError("randomize: give at least one parameter range")
    return out


class RandomizedPhysics(DiffEnv):
    """``env`` with the parameters of ``ranges`` (``{name: (low, high)}``, in the units of the task's
    ``Params``) drawn uniformly per episode; ``q = (q_task [env.state_dim], values [len(ranges)])``."""

    def __init__(self, env: DiffEnv, ranges: dict):
        ranges = check_ranges(env, ranges)
        self.env = env
        self.names = tuple(sorted(ranges))
        self.low = np.array([ranges[n][0] for n in self.names])
        self.high = np.array([ranges[n][1] for n in self.names])
        self.params = env.params
        self.name, self.Params = env.name, env.Params
        self.success_mode, self.has_curriculum = env.success_mode, env.has_curriculum
        self.render_projection = env.render_projection
        self.state_dim = env.state_dim + len(self.names)

    @property
    def action_size(self) -> int:
        return self.env.action_size

    @property
    def ranges(self) -> dict[str, tuple[float, float]]:
        return {n: (float(lo), float(hi)) for n, lo, hi in zip(self.names, self.low, self.high)}

    def at(self, values: jax.Array) -> DiffEnv:
        """The task with its parameters set to ``values [len(ranges)]`` (may be traced)."""
        env = copy.copy(self.env)
        env.params = dataclasses.replace(self.env.params, **dict(zip(self.names, values)))
        return env

    def split(self, q):
        return q[..., :self.env.state_dim], q[..., self.env.state_dim:]

    def draw_values(self, key: jax.Array, dtype) -> jax.Array:
        low, high = jnp.asarray(self.low, dtype), jnp.asarray(self.high, dtype)
        return low + (high - low) * jax.random.uniform(key, low.shape, dtype)

    def sample_initial_q(self, key):
        k_task, k_values = jax.random.split(key)
        q = self.env.sample_initial_q(k_task)
        return jnp.concatenate([q, self.draw_values(k_values, q.dtype)])

    def sample_training_q(self, key, difficulty):
        k_task, k_values = jax.random.split(key)
        q = self.env.sample_training_q(k_task, difficulty)
        return jnp.concatenate([q, self.draw_values(k_values, q.dtype)])

    def physics_step(self, q, u):
        q_task, values = self.split(q)
        q_next, reward = self.at(values).physics_step(q_task, u)
        return jnp.concatenate([q_next, values]), reward

    def observe(self, q):
        return self.env.observe(self.split(q)[0])

    def success(self, q):
        return self.env.success(self.split(q)[0])

    def terminated(self, q):
        return self.env.terminated(self.split(q)[0])

    def episode_metrics(self, qs):
        return self.env.episode_metrics(self.split(qs)[0])

    def draw(self, ax, q):
        self.env.draw(ax, self.split(np.asarray(q))[0])
