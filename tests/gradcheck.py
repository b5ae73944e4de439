"""Central finite differences in float64 for gradient tests (call inside ``jax.enable_x64(True)``)."""
import jax
import jax.numpy as jnp
import numpy as np


def fd_jacobian(fn, x, eps=1e-6):
    """Central-difference Jacobian of ``fn: R^n -> R^m`` at ``x``: ``[m, n]`` (``[n]`` for scalar fn)."""
    x = np.asarray(x, dtype=np.float64)
    fn = jax.jit(fn)  # compiled once: eager control flow would recompile on every evaluation
    columns = []
    for i in range(x.size):
        dx = np.zeros_like(x)
        dx.flat[i] = eps
        hi = np.asarray(fn(jnp.asarray(x + dx)), dtype=np.float64)
        lo = np.asarray(fn(jnp.asarray(x - dx)), dtype=np.float64)
        columns.append(((hi - lo) / (2 * eps)).ravel())
    jac = np.stack(columns, axis=-1)
    return jac[0] if np.ndim(fn(jnp.asarray(x))) == 0 else jac


def relative_error(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))
