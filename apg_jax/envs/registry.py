"""Task registry: ``make(name, **overrides)``, and registration with brax's registry as ``apg_<name>``
when asked for (``register_brax()``), not as a side effect of importing."""
from __future__ import annotations

from apg_jax.envs.base import DiffEnv
from apg_jax.envs.franka import Franka
from apg_jax.envs.pointmass1d import PointMass1D
from apg_jax.envs.pointmass2d import PointMass2D
from apg_jax.envs.tblock import TBlock

TASKS: dict[str, type[DiffEnv]] = {cls.name: cls for cls in (PointMass1D, PointMass2D, TBlock, Franka)}
BRAX_PREFIX = "apg_"


def make(name: str, **overrides) -> DiffEnv:
    """Build a fresh task by name; ``overrides`` replace fields of the task's ``Params``."""
    if name not in TASKS:
        raise ValueError(f"unknown task '{name}'; valid tasks are: {', '.join(TASKS)}")
    return TASKS[name](**overrides)


def task_names() -> list[str]:
    return list(TASKS)


def register_brax() -> list[str]:
    """Register every task with ``brax.envs`` as ``apg_<task>`` (idempotent); returns the names, so
    ``brax.envs.get_environment("apg_pointmass1d", **overrides)`` builds our task."""
    from brax import envs as brax_envs

    names = []
    for name, cls in TASKS.items():
        brax_envs.register_environment(BRAX_PREFIX + name, cls)
        names.append(BRAX_PREFIX + name)
    return names
