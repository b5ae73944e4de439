"""apg-jax: analytic policy gradients through differentiable simulation, compared with PPO.

The names below are imported on first use, so ``import apg_jax.config`` stays free of JAX."""
import importlib

_EXPORTS = {"ConfigError": "apg_jax.config", "TrainConfig": "apg_jax.config",
            "default_config": "apg_jax.config", "load_policy": "apg_jax.policy",
            "make_trainer": "apg_jax.training"}

__all__ = ["envs", *_EXPORTS]


def __getattr__(name):
    if name == "envs":
        return importlib.import_module("apg_jax.envs")
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'apg_jax' has no attribute '{name}'")
