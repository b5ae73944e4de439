"""Advantage and return estimators shared by PPO (GAE) and APG's critic (TD(lambda) targets)."""
import jax
import jax.numpy as jnp


def compute_gae(rewards, values, dones, last_value, gamma, lam):
    """Generalised advantage estimation over a rollout.

    Args: ``rewards, values, dones [T, ...]`` (``dones[t]`` = 1 if the episode ended at step t: no
    bootstrap across it), ``last_value [...]`` = V(s_T). Returns ``(advantages, returns) [T, ...]``,
    where ``returns = advantages + values`` are the TD(lambda) targets."""
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    not_done = 1.0 - dones
    deltas = rewards + gamma * not_done * next_values - values

    def backward(carry, x):
        delta, nd = x
        carry = delta + gamma * lam * nd * carry
        return carry, carry

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(last_value), (deltas, not_done), reverse=True)
    return advantages, advantages + values
