"""Smooth (differentiable everywhere) stand-ins for the kinks of contact mechanics.

All lengths in metres. ``width`` sets how far the smoothing reaches: the smoothed functions equal their
sharp versions to within about ``width`` once the argument is a few widths away from the kink.
"""
import jax
import jax.numpy as jnp

NORM_EPS = 1e-9  #: m, ``safe_norm``'s smoothing (the Warp twins read it from here)


def soft_depth(penetration: jax.Array, width: float) -> jax.Array:
    """Smoothed ``max(penetration, 0)``: ``width * softplus(penetration / width)``."""
    return width * jax.nn.softplus(penetration / width)


def contact_gate(penetration: jax.Array, width: float) -> jax.Array:
    """Smoothed indicator ``penetration > 0``: ``sigmoid(penetration / width)``."""
    return jax.nn.sigmoid(penetration / width)


def safe_norm(v: jax.Array, eps: float = NORM_EPS) -> jax.Array:
    """Euclidean norm over the last axis with a finite gradient at zero: ``sqrt(|v|^2 + eps^2)``."""
    return jnp.sqrt(jnp.sum(v * v, axis=-1) + eps * eps)
