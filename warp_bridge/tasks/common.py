"""What every task's Warp twin shares: the task interface, the substep launch loop and smooth contact
helpers (the Warp twins of ``apg_jax.envs.smooth``).

Constants are not repeated in the Warp modules: each reads them from the JAX task's ``Params`` and bakes
them into its kernels as compile-time constants, so both implementations use the same numbers (the parity
tests in ``tests/test_warp_bridge.py`` check that they also compute the same thing). Every kernel writes
fresh output arrays (no in-place updates), as ``wp.Tape`` replay requires.
"""
import torch
import warp as wp

wp.config.quiet = True
wp.init()
@wp.func
def soft_depth(depth: float, width: float):
    """``width * softplus(depth / width)``, evaluated without overflow."""
    z = depth / width
    return width * (wp.max(z, 0.0) + wp.log(1.0 + wp.exp(-wp.abs(z))))


@wp.func
def contact_gate(depth: float, width: float):
    """``sigmoid(depth / width)``; the branch keeps ``exp`` (and its adjoint) finite."""
    z = depth / width
    if z >= 0.0:
        return 1.0 / (1.0 + wp.exp(-z))
    e = wp.exp(z)
    return e / (1.0 + e)


class WarpTask:
    """A task's step as Warp launches, ``launch(q, u) -> (q_next, reward)`` on Warp arrays ``[N, ...]``, and
    its observation in torch, ``observe(q [N, state_dim]) -> [N, obs]`` (the JAX task's ``observe``)."""

    state_dim: int
    action_size: int
    #: ``{Params field: the only value the kernels implement}`` for options only the JAX task has
    jax_only: dict = {}

    def __init__(self, env):
        for name, supported in self.jax_only.items():
            value = getattr(env.params, name)
            if value != supported:
                raise ValueError(f"the Warp {env.name} kernels implement only {name}={supported}; {name}={value} "
                                 "needs the JAX backend")
        self.env = env

    def launch(self, q, u):
        raise NotImplementedError

    def observe(self, q: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class SubstepWarpTask(WarpTask):
    """A task stepped by one ``substep_kernel(s, u) -> s_next`` launch per physics substep on the full
    state, then ``reward_kernel(s) -> reward``."""

    substeps: int
    substep_kernel: wp.Kernel
    reward_kernel: wp.Kernel

    def launch(self, q, u):
        n, dev = q.shape[0], q.device
        grad = q.requires_grad or u.requires_grad
        s = q
        for _ in range(self.substeps):
            s_next = wp.empty((n, self.state_dim), dtype=float, device=dev, requires_grad=grad)
            wp.launch(self.substep_kernel, dim=n, inputs=[s, u], outputs=[s_next], device=dev)
            s = s_next
        reward = wp.empty(n, dtype=float, device=dev, requires_grad=grad)
        wp.launch(self.reward_kernel, dim=n, inputs=[s], outputs=[reward], device=dev)
        return s, reward
