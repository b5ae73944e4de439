"""Smooth (differentiable everywhere) stand-ins for the kinks of contact mechanics.

All lengths in metres. ``width`` sets how far the smoothing reaches: the smoothed functions equal their
sharp versions to within about ``width`` once the argument is a few widths away from the kink.
"""
from functools import partial

import jax
import jax.numpy as jnp

NORM_EPS = 1e-9  #: m, ``safe_norm``'s smoothing (the Warp twins read it from here)


def soft_depth(penetration: jax.Array, width: float) -> jax.Array:
    """Smoothed ``max(penetration, 0)``: ``width * softplus(penetration / width)``."""
    return width * jax.nn.softplus(penetration / width)


@partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def soft_depth_reaching(penetration: jax.Array, width: float, reach: float) -> jax.Array:
    """``soft_depth(penetration, width)`` with a surrogate derivative: ``sigmoid(penetration / reach)`` where
    ``penetration < 0`` (out of contact; the true one, ``sigmoid(penetration / width)``, where in contact).
    With ``reach`` > ``width`` a gradient sees a contact from about ``reach`` away, which the true
    derivative (vanishing like ``exp(penetration / width)``) does not: biased, the values unchanged."""
    return soft_depth(penetration, width)


@soft_depth_reaching.defjvp
def _soft_depth_reaching_jvp(width, reach, primals, tangents):
    (penetration,), (d_penetration,) = primals, tangents
    slope = jax.nn.sigmoid(penetration / jnp.where(penetration < 0, reach, width))
    return soft_depth(penetration, width), slope * d_penetration


def contact_gate(penetration: jax.Array, width: float) -> jax.Array:
    """Smoothed indicator ``penetration > 0``: ``sigmoid(penetration / width)``."""
    return jax.nn.sigmoid(penetration / width)


def safe_norm(v: jax.Array, eps: float = NORM_EPS) -> jax.Array:
    """Euclidean norm over the last axis with a finite gradient at zero: ``sqrt(|v|^2 + eps^2)``."""
    return jnp.sqrt(jnp.sum(v * v, axis=-1) + eps * eps)
