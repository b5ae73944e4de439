"""Load a trained policy from a run directory, for use outside the training code."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from apg_jax import envs, rundir
from apg_jax.networks import deterministic_action, make_networks
from apg_jax.normalization import RunningStats


def load_policy(run_dir: str, seed: int = 0):
    """Deterministic policy ``obs [..., obs_size] -> action [..., action_size]`` in [-1, 1] of ``seed``.

    Accepts numpy or JAX arrays, one observation or a batch; observation normalisation included."""
    config, _ = rundir.read_config(run_dir)
    env = envs.make(config.task, **config.env_params)
    arrays = rundir.load_policy_arrays(run_dir)
    seeds = [int(s) for s in np.asarray(arrays["seeds"]).ravel()]
    if seed not in seeds:
        raise ValueError(f"seed {seed} is not in run {run_dir}; it holds seeds {seeds}")
    i = seeds.index(seed)
    pick = lambda tree: jax.tree.map(lambda x: jnp.asarray(x[i]), tree)
    actor_params = pick(arrays["actor_params"])
    stats = RunningStats(**pick(arrays["obs_stats"]))
    actor, _ = make_networks(env.action_size, config.hidden_sizes, config.activation, config.init_log_std)
    act = jax.jit(lambda obs: deterministic_action(actor, actor_params, stats, obs))

    def policy(obs):
        obs = jnp.asarray(obs, jnp.float32)
        if obs.shape[-1] != env.observation_size:
            raise ValueError(f"observations of task '{config.task}' have size {env.observation_size}, "
                             f"got shape {obs.shape}")
        return act(obs)

    return policy
