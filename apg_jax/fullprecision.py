"""Matrix products in full float32 for physics and gradient statistics.

On recent NVIDIA GPUs JAX computes float32 matrix products in TensorFloat32 by default (operands rounded
to 10 mantissa bits): fine for networks, wrong for physics. Measured on an H200: one ``pointmass2d`` step
into a wall moved the velocity by 1.7e-2 m/s against float32 on the CPU and the Warp kernels (the wall
depth ``normal @ position`` rounds the position by up to 2.4e-4 m at 0.5 m). Every product in the
tasks' physics, observations and metrics, and in the gradient statistics, goes through these;
the networks keep JAX's default (set ``JAX_DEFAULT_MATMUL_PRECISION=highest`` to change that too). On the CPU nothing changes.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

PRECISION = jax.lax.Precision.HIGHEST


def matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a @ b`` in full float32."""
    return jnp.matmul(a, b, precision=PRECISION)


def dot(a: jax.Array, b: jax.Array) -> jax.Array:
    """``jnp.dot(a, b)`` in full float32."""
    return jnp.dot(a, b, precision=PRECISION)


def einsum(subscripts: str, *operands: jax.Array) -> jax.Array:
    """``jnp.einsum`` in full float32."""
    return jnp.einsum(subscripts, *operands, precision=PRECISION)
