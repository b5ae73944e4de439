"""The APG segment objective in PyTorch on the Warp bridge, with the JAX learner's networks.

``TorchPolicy`` holds the same actor-critic (MLP, tanh-squashed mean, state-independent log-std, critic)
and observation normalisation as ``apg_jax`` and is built from a JAX learner's parameters, so the two
paths can be compared update by update. ``segment_objective`` is the torch twin of
``apg_jax.agents.apg.segment_objective`` for segments inside one episode (no resets in the segment).
"""

import numpy as np
import torch

from apg_jax.normalization import CLIP, EPS

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "elu": torch.nn.functional.elu,
               "swish": torch.nn.functional.silu}


def dense_layers(flax_mlp: dict, device) -> torch.nn.ParameterList:
    """``[W0, b0, W1, b1, ...]`` (``W`` as ``[in, out]``, like flax) from a flax ``MLP`` parameter dict."""
    names = sorted(flax_mlp, key=lambda n: int(n.split("_")[-1]))
    tensors = []
    for name in names:
        tensors += [torch.tensor(np.asarray(flax_mlp[name]["kernel"]), device=device),
                    torch.tensor(np.asarray(flax_mlp[name]["bias"]), device=device)]
    return torch.nn.ParameterList([torch.nn.Parameter(t) for t in tensors])


def mlp(layers, x, activation):
    for i in range(0, len(layers), 2):
        x = x @ layers[i] + layers[i + 1]
        if i + 2 < len(layers):
            x = activation(x)
    return x


class TorchPolicy(torch.nn.Module):
    """Actor and critic of ``apg_jax.networks`` in torch, with frozen observation statistics."""

    def __init__(self, actor_params, critic_params, obs_stats, activation: str = "tanh", device="cpu"):
        super().__init__()
        self.actor_layers = dense_layers(actor_params["params"]["MLP_0"], device)
        self.log_std = torch.nn.Parameter(torch.tensor(np.asarray(actor_params["params"]["log_std"]), device=device))
        self.critic_layers = dense_layers(critic_params["params"]["MLP_0"], device)
        self.activation = ACTIVATIONS[activation]
        self.register_buffer("obs_mean", torch.tensor(np.asarray(obs_stats.mean), device=device))
        self.register_buffer("obs_std", torch.sqrt(torch.tensor(np.asarray(obs_stats.var), device=device) + EPS))

    def normalize(self, obs):
        return torch.clamp((obs - self.obs_mean) / self.obs_std, -CLIP, CLIP)

    def action_mean(self, obs):
        return torch.tanh(mlp(self.actor_layers, self.normalize(obs), self.activation))

    def value(self, obs):
        return mlp(self.critic_layers, self.normalize(obs), self.activation)[..., 0]

    def actor_parameters(self):
        return [*self.actor_layers, self.log_std]


def observe(task: str, q: torch.Tensor) -> torch.Tensor:
    """The JAX tasks' ``observe`` for a batch ``q [N, state_dim]``, in torch."""
    if task == "pointmass1d":
        return q
    if task == "pointmass2d":
        return torch.cat([q[:, 0:6], q[:, 4:6] - q[:, 0:2]], 1)
    if task == "tblock":
        err = q[:, 6] - q[:, 9]
        trig = lambda a: torch.stack([torch.cos(a), torch.sin(a)], 1)
        return torch.cat([q[:, 0:4], q[:, 4:6], trig(q[:, 6]), q[:, 4:6] - q[:, 7:9], trig(err),
                          q[:, 0:2] - q[:, 4:6]], 1)
    if task == "franka":
        flange = franka_flange(q[:, :7])
        return torch.cat([q[:, :14], flange, q[:, 14:17], q[:, 14:17] - flange], 1)
    raise ValueError(f"no torch observation for task '{task}'")


def franka_flange(joint_pos: torch.Tensor) -> torch.Tensor:
    """Flange positions ``[N, 3]`` from the FR3 DH chain (the constants of ``apg_jax.envs.franka``)."""
    from apg_jax.envs.franka import FIXED

    n = joint_pos.shape[0]
    rot = torch.eye(3, dtype=joint_pos.dtype, device=joint_pos.device).expand(n, 3, 3)
    pos = torch.zeros(n, 3, dtype=joint_pos.dtype, device=joint_pos.device)
    for i, (fixed_rot, fixed_pos) in enumerate(FIXED):
        fr = torch.tensor(fixed_rot, dtype=joint_pos.dtype, device=joint_pos.device)
        fp = torch.tensor(fixed_pos, dtype=joint_pos.dtype, device=joint_pos.device)
        pos = pos + rot @ fp
        if i == len(FIXED) - 1:
            break
        c, s = torch.cos(joint_pos[:, i]), torch.sin(joint_pos[:, i])
        zero, one = torch.zeros_like(c), torch.ones_like(c)
        rz = torch.stack([torch.stack([c, -s, zero], -1), torch.stack([s, c, zero], -1),
                          torch.stack([zero, zero, one], -1)], -2)
        rot = rot @ fr @ rz
    return pos


def segment_objective(sim, policy: TorchPolicy, q0: torch.Tensor, noise: torch.Tensor, gamma: float,
                      bootstrap: str) -> torch.Tensor:
    """Mean over envs of ``sum_t gamma^t r_t (+ gamma^K V(s_K))`` along ``K = len(noise)`` steps from
    ``q0 [N, S]`` (cut from the graph); ``noise [K, N, A]`` is scaled by the policy's std. One Warp tape
    per step, so the policy acts between steps."""
    q = q0.detach()
    total = torch.zeros(q.shape[0], dtype=q.dtype, device=q.device)
    std = torch.exp(policy.log_std)
    for t, eps in enumerate(noise):
        action = policy.action_mean(observe(sim.env.name, q)) + std * eps
        q, reward = sim.step(q, action)
        total = total + gamma**t * reward
    if bootstrap == "critic":
        with torch.no_grad():
            frozen = [p.detach().clone() for p in policy.critic_layers]
        total = total + gamma ** len(noise) * mlp(frozen, policy.normalize(observe(sim.env.name, q)),
                                                   policy.activation)[..., 0]
    return total.mean()
