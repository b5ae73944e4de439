"""Warp-PyTorch gradient bridge: the tasks' physics as Warp kernels inside ``torch.autograd``.

    sim = warp_bridge.make("pointmass2d", device="cpu")
    obs = sim.observe(q)                        # the JAX task's observation, in torch
    q_next, reward = sim.step(q, u)            # q [N, state_dim], u [N, action_size], float32 tensors
    qs, rewards = sim.rollout(q, us)           # us [K, N, action_size]: K steps on one Warp tape

Both are differentiable with respect to ``q`` and ``u``, for all four tasks.
"""
from __future__ import annotations

import torch
import warp as wp

from warp_bridge.adapter import WarpRollout, check_inputs
from warp_bridge.tasks import FACTORIES


def canonical_device(device) -> torch.device:
    """``device`` with its index filled in, as tensors on it report theirs: "cuda" is the current CUDA device."""
    resolved = torch.device(device)
    if resolved.type == "cuda" and resolved.index is None:
        resolved = torch.device("cuda", torch.cuda.current_device() if torch.cuda.is_available() else 0)
    return resolved


class WarpSim:
    def __init__(self, task: str, device: str = "cpu", **overrides):
        from apg_jax import envs

        if task not in FACTORIES:
            raise ValueError(f"no Warp kernels for task '{task}' yet; available: {', '.join(FACTORIES)}")
        self.env = envs.make(task, **overrides)  # the constants' single source
        self.task = FACTORIES[task](self.env)
        self.device = canonical_device(device)
        self.state_dim, self.action_size = self.task.state_dim, self.task.action_size

    def rollout(self, q: torch.Tensor, us: torch.Tensor):
        """``K`` steps: ``q [N, S]``, ``us [K, N, A]`` -> ``(states [K, N, S], rewards [K, N])``."""
        if not isinstance(us, torch.Tensor) or us.ndim != 3:
            raise ValueError(f"us must be a [K, N, {self.action_size}] tensor")
        for u in us:
            check_inputs(q, u, self.state_dim, self.action_size)
        if q.device != self.device:
            raise ValueError(f"tensors are on {q.device} but this sim was made for {self.device}: "
                             f"use warp_bridge.make(..., device='{q.device}') or move them")
        with wp.ScopedDevice(wp.device_from_torch(q.device)):
            return WarpRollout.apply(q, us, self.task)

    def observe(self, q: torch.Tensor) -> torch.Tensor:
        """Observations ``[N, obs]`` of states ``q [N, S]`` (the JAX task's ``observe``, in torch)."""
        return self.task.observe(q)

    def step(self, q: torch.Tensor, u: torch.Tensor):
        """One step: ``q [N, S]``, ``u [N, A]`` -> ``(q_next [N, S], reward [N])``."""
        check_inputs(q, u, self.state_dim, self.action_size)
        states, rewards = self.rollout(q, u[None])
        return states[0], rewards[0]


def make(task: str, device: str = "cpu", **overrides) -> WarpSim:
    """The Warp implementation of ``task`` on ``device`` ("cpu" or "cuda[:i]")."""
    return WarpSim(task, device, **overrides)


__all__ = ["canonical_device", "make", "WarpSim"]
