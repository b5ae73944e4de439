"""Advantage and return estimators shared by PPO (GAE) and APG's critic (TD(lambda) targets).

How episode ends enter: a step that ended its episode by **termination** has no value after it; one that
ended by **truncation** (the time limit) is bootstrapped with the value of the state it reached
(``next_values``, computed before the automatic reset); in both cases the lambda-recursion stops there,
because the next step of that environment belongs to a new episode."""
import jax
import jax.numpy as jnp


def compute_gae(rewards, values, next_values, terminated, ended, gamma, lam):
    """Generalised advantage estimation over a rollout.

    Args (all ``[T, ...]``): ``rewards``; ``values`` = V(s_t); ``next_values`` = V(s'_t) of the state step
    t reached (before any reset); ``terminated`` 1 where step t reached a terminal state; ``ended`` 1 where
    step t ended its episode (terminated or truncated). Returns ``(advantages, returns)``, where
    ``returns = advantages + values`` are the TD(lambda) targets."""
    deltas = rewards + gamma * (1.0 - terminated) * next_values - values
    continues = 1.0 - ended

    def backward(carry, x):
        delta, cont = x
        carry = delta + gamma * lam * cont * carry
        return carry, carry

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(values[0]), (deltas, continues), reverse=True)
    return advantages, advantages + values
