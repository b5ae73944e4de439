"""Warp launches inside ``torch.autograd``: the forward records a ``wp.Tape``, the backward seeds the
outputs' gradients with the incoming cotangents and replays the tape. Tensors are shared zero-copy
(``wp.from_torch`` / ``wp.to_torch``)."""
from __future__ import annotations

import torch
import warp as wp


def check_inputs(q: torch.Tensor, u: torch.Tensor, state_dim: int, action_size: int) -> None:
    """Raise ``ValueError`` with what to change on wrong shapes, dtypes or devices."""
    for name, t, width in (("q", q, state_dim), ("u", u, action_size)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype != torch.float32:
            raise ValueError(f"{name} must be float32 (the Warp kernels are float32), got {t.dtype}: use .float()")
        if t.ndim != 2 or t.shape[1] != width:
            raise ValueError(f"{name} must have shape [N, {width}], got {list(t.shape)}")
    if q.shape[0] != u.shape[0]:
        raise ValueError(f"q and u need the same batch size, got {q.shape[0]} and {u.shape[0]}")
    if q.device != u.device:
        raise ValueError(f"q and u must be on the same device, got {q.device} and {u.device}")


def _to_warp(t: torch.Tensor):
    return wp.from_torch(t.detach().contiguous(), requires_grad=True)


class WarpRollout(torch.autograd.Function):
    """``K`` steps of a ``WarpTask`` on one tape: ``(q [N, S], us [K, N, A]) -> (qs [K, N, S], rewards [K, N])``."""

    @staticmethod
    def forward(ctx, q, us, task):
        q_wp = _to_warp(q)
        u_wps = [_to_warp(u) for u in us]
        tape = wp.Tape()
        states, rewards = [], []
        with tape:
            state = q_wp
            for u_wp in u_wps:
                state, reward = task.launch(state, u_wp)
                states.append(state)
                rewards.append(reward)
        ctx.tape, ctx.q_wp, ctx.u_wps, ctx.states, ctx.rewards = tape, q_wp, u_wps, states, rewards
        return (torch.stack([wp.to_torch(s) for s in states]).clone(),
                torch.stack([wp.to_torch(r) for r in rewards]).clone())

    @staticmethod
    def backward(ctx, grad_states, grad_rewards):
        tape = ctx.tape
        seeds = {}
        for t, (s, r) in enumerate(zip(ctx.states, ctx.rewards)):
            seeds[s] = wp.from_torch(grad_states[t].contiguous())
            seeds[r] = wp.from_torch(grad_rewards[t].contiguous())
        tape.backward(grads=seeds)
        grad_q = wp.to_torch(ctx.q_wp.grad).clone()
        grad_us = torch.stack([wp.to_torch(u.grad).clone() for u in ctx.u_wps])
        tape.zero()  # the graph may be replayed again (retain_graph, gradcheck)
        return grad_q, grad_us, None
