"""apg-jax: analytic policy gradients through differentiable simulation, compared with PPO."""
from apg_jax import envs

__all__ = ["envs"]
