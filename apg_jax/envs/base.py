"""The environment contract shared by every apg-jax task.

A task is a stateless object holding frozen physical parameters. Its dynamics live in one flat, pure,
unbatched function, ``physics_step(q, u) -> (q_next, reward)``, on a vector ``q`` of ``state_dim``
floats that holds everything the future depends on (positions, velocities, the goal, anything sampled at
reset). ``reset``/``step`` wrap that function in brax's ``Env`` interface, so both are the same dynamics
and brax's wrappers (``VmapWrapper``, ``EpisodeWrapper``, ...) work unchanged.

Bad input policy (tested in ``tests/test_env_contract.py``):
- an action of the wrong shape raises ``ValueError`` at trace time (use ``jax.vmap`` for batches);
- a non-finite action or state passed eagerly (outside ``jit``) raises ``FloatingPointError``;
- under ``jit`` a non-finite action propagates into the state and sets ``state.metrics["nonfinite"]``
  to 1, so a learner can detect it (the learners also skip non-finite gradient updates).
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs import base as brax_base

State = brax_base.State


def build_params(params_cls: type, task: str, overrides: dict[str, Any]):
    """Instantiate ``params_cls`` from ``overrides``; unknown names raise an error listing valid ones."""
    valid = [f.name for f in dataclasses.fields(params_cls)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise TypeError(
            f"unknown parameter(s) {unknown} for task '{task}'; valid parameters are: {', '.join(valid)}"
        )
    return params_cls(**overrides)


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_finite(name: str, value) -> None:
    """Raise ``FloatingPointError`` if a concrete (non-traced) array holds NaN or inf."""
    if _is_concrete(value) and not np.all(np.isfinite(np.asarray(value))):
        raise FloatingPointError(
            f"{name} contains NaN or inf: {np.asarray(value)}. Check the policy output (or the state "
            "you built) before stepping the environment."
        )


class DiffEnv(brax_base.Env):
    """Base class: subclasses define ``Params``, ``sample_initial_q``, ``physics_step``, ``observe``,
    ``success`` and ``draw``; everything else (brax API, checks) lives here."""

    name: ClassVar[str]
    Params: ClassVar[type]
    state_dim: ClassVar[int]
    #: how an episode's success is judged from the per-step flags: "final" (last step) or "any".
    success_mode: ClassVar[str] = "final"
    #: whether ``sample_training_q`` grades resets by difficulty (the ``curriculum`` option)
    has_curriculum: ClassVar[bool] = False
    #: ``Params`` fields that may vary per episode (domain randomisation, ``envs.randomized``): ones the
    #: dynamics use only as numbers in ``jnp`` arithmetic, so a traced value can stand in for them
    randomizable: ClassVar[tuple[str, ...]] = ()
    #: matplotlib projection of the axes ``draw`` expects (None: 2-D, "3d": 3-D)
    render_projection: ClassVar[str | None] = None

    def __init__(self, **overrides):
        self.params = build_params(self.Params, self.name, overrides)
        self.validate_params()

    # ----- to implement per task -------------------------------------------------------------------
    def validate_params(self) -> None:
        if self.params.episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {self.params.episode_length}")

    def sample_initial_q(self, key: jax.Array) -> jax.Array:
        """Draw a physics state ``q`` of shape ``[state_dim]`` at reset."""
        raise NotImplementedError

    def sample_training_q(self, key: jax.Array, difficulty: jax.Array) -> jax.Array:
        """A training reset at ``difficulty`` in [0, 1] (1: ``sample_initial_q``); tasks with a curriculum
        override it (and set ``has_curriculum``)."""
        return self.sample_initial_q(key)

    def physics_step(self, q: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One control step: ``q [state_dim]``, ``u [action_size]`` in [-1, 1] -> ``(q_next, reward)``."""
        raise NotImplementedError

    def observe(self, q: jax.Array) -> jax.Array:
        """Observation ``[observation_size]`` of physics state ``q``."""
        raise NotImplementedError

    def success(self, q: jax.Array) -> jax.Array:
        """Per-step success flag (float 0/1) of physics state ``q``."""
        raise NotImplementedError

    def terminated(self, q: jax.Array) -> jax.Array:
        """1.0 where ``q`` is a true terminal state (the episode ends, no value after it), else 0.0.
        The time limit is not a termination (see the module docstring)."""
        return jnp.zeros((), q.dtype)

    def episode_metrics(self, qs: jax.Array) -> dict:
        """Task-specific numbers of one episode from its states ``qs [T + 1, state_dim]`` (none by default)."""
        return {}

    def draw(self, ax, q) -> None:
        """Draw physics state ``q`` (numpy) on matplotlib axes ``ax``."""
        raise NotImplementedError

    def with_episode_length(self, steps: int) -> "DiffEnv":
        """This task with a time limit of ``steps`` control steps; its other parameters are unchanged."""
        env = copy.copy(self)
        env.params = dataclasses.replace(self.params, episode_length=steps)
        env.validate_params()
        return env

    # ----- brax Env interface ----------------------------------------------------------------------
    @property
    def episode_length(self) -> int:
        """Steps per episode: the time limit that ``EpisodeWrapper`` enforces (not a termination)."""
        return int(self.params.episode_length)

    @property
    def observation_size(self) -> int:
        q = jax.ShapeDtypeStruct((self.state_dim,), jnp.float32)
        return int(jax.eval_shape(self.observe, q).shape[0])

    @property
    def backend(self) -> str:
        return "jax"

    def physics_state(self, state: State) -> jax.Array:
        """The flat physics vector ``q [state_dim]`` of a brax ``State``."""
        return state.pipeline_state

    def state_from_q(self, q: jax.Array) -> State:
        """Wrap a physics vector into a brax ``State``."""
        q = jnp.asarray(q)
        if q.shape != (self.state_dim,):
            raise ValueError(f"{self.name}: q must have shape ({self.state_dim},), got {q.shape}")
        check_finite(f"{self.name} state", q)
        zero = jnp.zeros((), q.dtype)
        return State(
            pipeline_state=q,
            obs=self.observe(q),
            reward=zero,
            done=self.terminated(q),
            metrics={"success": self.success(q), "nonfinite": zero},
            info={},
        )

    def reset(self, rng: jax.Array) -> State:
        return self.state_from_q(self.sample_initial_q(rng))

    def step(self, state: State, action: jax.Array) -> State:
        action = jnp.asarray(action)
        if action.shape != (self.action_size,):
            raise ValueError(
                f"{self.name}: action must have shape ({self.action_size},), got {action.shape}; "
                "step is unbatched, use jax.vmap(env.step) for a batch of environments"
            )
        check_finite(f"{self.name} action", action)
        q = self.physics_state(state)
        q_next, reward = self.physics_step(q, action)
        nonfinite = 1.0 - jnp.all(jnp.isfinite(q_next)).astype(q_next.dtype)
        return state.replace(
            pipeline_state=q_next,
            obs=self.observe(q_next),
            reward=reward,
            done=self.terminated(q_next),
            metrics={**state.metrics, "success": self.success(q_next), "nonfinite": nonfinite},
        )
