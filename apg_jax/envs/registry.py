"""Task registry: ``make(name, **overrides)`` and registration with brax as ``apg_<name>``."""
from __future__ import annotations

from brax import envs as brax_envs

from apg_jax.envs.base import DiffEnv
from apg_jax.envs.franka import Franka
from apg_jax.envs.pointmass1d import PointMass1D
from apg_jax.envs.pointmass2d import PointMass2D
from apg_jax.envs.tblock import TBlock

TASKS: dict[str, type[DiffEnv]] = {cls.name: cls for cls in (PointMass1D, PointMass2D, TBlock, Franka)}


def make(name: str, **overrides) -> DiffEnv:
    """Build a fresh task by name; ``overrides`` replace fields of the task's ``Params``."""
    if name not in TASKS:
        raise ValueError(f"unknown task '{name}'; valid tasks are: {', '.join(TASKS)}")
    return TASKS[name](**overrides)


def task_names() -> list[str]:
    return list(TASKS)


for _name, _cls in TASKS.items():
    brax_envs.register_environment(f"apg_{_name}", _cls)
