"""Differentiable tasks with brax's ``Env`` interface and a flat ``physics_step`` contract."""
from apg_jax.envs.base import DiffEnv, State
from apg_jax.envs.registry import TASKS, make, register_brax, task_names
from apg_jax.envs.render import render, write_animation

__all__ = ["DiffEnv", "State", "TASKS", "make", "register_brax", "task_names", "render", "write_animation"]
