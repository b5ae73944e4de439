"""Every matrix product of the tasks' physics, observations, metrics and their gradients runs in full float32.

On GPUs JAX's default float32 product is TensorFloat32 (10 mantissa bits); on an H200 it moved a
``pointmass2d`` wall contact step by 1.7e-2 m/s. The CPU computes float32 either way, so this checks the
compiled programs' ``dot_general`` equations instead of their numbers.
"""
import jax
import jax.numpy as jnp
import pytest

from apg_jax import envs
from apg_jax.adaptive import ladder_statistics
from apg_jax.fullprecision import PRECISION, matmul

TASKS = ["pointmass1d", "pointmass2d", "tblock", "franka"]


def dot_precisions(closed_jaxpr):
    """The ``precision`` parameter of every ``dot_general`` in a jaxpr, sub-jaxprs (scan, cond, custom rules) included."""
    found = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                found.append(eqn.params["precision"])
            for value in eqn.params.values():
                for sub in value if isinstance(value, (tuple, list)) else (value,):
                    if isinstance(sub, jax.extend.core.ClosedJaxpr):
                        walk(sub.jaxpr)
                    elif isinstance(sub, jax.extend.core.Jaxpr):
                        walk(sub)

    walk(closed_jaxpr.jaxpr)
    return found


def test_the_check_sees_a_default_precision_product():
    products = dot_precisions(jax.make_jaxpr(lambda a: (matmul(a, a), a @ a))(jnp.ones((2, 2))))
    assert products == [(PRECISION, PRECISION), None]


@pytest.mark.parametrize("task", TASKS)
def test_physics_observations_metrics_and_gradients_use_full_float32(task):
    env = envs.make(task)
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    q = jax.vmap(lambda k: env.physics_state(env.reset(k)))(keys)
    u = jnp.full((4, env.action_size), 0.3)

    def rollout_return(q, u):
        total = 0.0
        for _ in range(3):
            q, reward = jax.vmap(env.physics_step)(q, u)
            total = total + jnp.sum(reward) + jnp.sum(jax.vmap(env.observe)(q))
        return total

    programs = [jax.make_jaxpr(jax.vmap(env.physics_state))(jax.vmap(env.reset)(keys)),
                jax.make_jaxpr(jax.grad(rollout_return, argnums=(0, 1)))(q, u),
                jax.make_jaxpr(env.episode_metrics)(q)]  # q as one episode of 4 states
    precisions = [p for program in programs for p in dot_precisions(program)]
    if task != "pointmass1d":  # the 1-D point mass has no matrix product to check
        assert precisions, "expected matrix products in the physics"
    assert all(p == (PRECISION, PRECISION) for p in precisions), precisions


def test_gradient_statistics_use_full_float32():
    samples = [jnp.ones((5, 3)), jnp.arange(15.0).reshape(5, 3)]
    precisions = dot_precisions(jax.make_jaxpr(ladder_statistics)(samples))
    assert precisions and all(p == (PRECISION, PRECISION) for p in precisions)
