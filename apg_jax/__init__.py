"""apg-jax: analytic policy gradients through differentiable simulation, compared with PPO."""
from apg_jax import envs
from apg_jax.config import ConfigError, TrainConfig, default_config
from apg_jax.policy import load_policy
from apg_jax.training import make_trainer

__all__ = ["envs", "ConfigError", "TrainConfig", "default_config", "load_policy", "make_trainer"]
