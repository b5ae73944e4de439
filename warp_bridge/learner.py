"""APG in PyTorch on the Warp bridge, with the JAX learner's networks, objective and critic fit.

``TorchPolicy`` holds the same actor-critic (MLP, tanh-squashed mean, state-independent log-std, critic)
and observation normalisation as ``apg_jax``, built from a JAX learner's parameters, so the two paths can
be compared update by update. ``segment_objective`` is the torch twin of
``apg_jax.agents.apg.segment_objective`` (episodes that end inside the segment restart from the given
reset states, with the same time-limit rule). ``TorchAPG.update`` is one APG update: actor step, critic
fit, observation statistics, restart of non-finite environments, with the JAX learner's guards.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from apg_jax.config import TrainConfig
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


class RunningStats(NamedTuple):
    """Torch twin of ``apg_jax.normalization.RunningStats``."""

    count: float
    mean: torch.Tensor  #: [obs]
    var: torch.Tensor  #: [obs]

    def update(self, obs: torch.Tensor) -> "RunningStats":
        """Chan's parallel merge with a batch ``obs [M, D]`` (finite rows only)."""
        obs = obs[torch.isfinite(obs).all(1)]
        n = obs.shape[0]
        if n == 0:
            return self
        b_mean, b_var = obs.mean(0), obs.var(0, unbiased=False)
        total = self.count + n
        delta = b_mean - self.mean
        mean = self.mean + delta * n / total
        m2 = self.var * self.count + b_var * n + delta**2 * self.count * n / total
        return RunningStats(total, mean, m2 / total)


class TorchPolicy(torch.nn.Module):
    """Actor and critic of ``apg_jax.networks`` in torch, normalising with the statistics ``stats``."""

    def __init__(self, actor_params, critic_params, obs_stats, activation: str = "tanh", device="cpu"):
        super().__init__()
        self.actor_layers = dense_layers(actor_params["params"]["MLP_0"], device)
        self.log_std = torch.nn.Parameter(torch.tensor(np.asarray(actor_params["params"]["log_std"]), device=device))
        self.critic_layers = dense_layers(critic_params["params"]["MLP_0"], device)
        self.activation = ACTIVATIONS[activation]
        self.stats = RunningStats(float(obs_stats.count), torch.tensor(np.asarray(obs_stats.mean), device=device),
                                  torch.tensor(np.asarray(obs_stats.var), device=device))

    def normalize(self, obs):
        return torch.clamp((obs - self.stats.mean) / torch.sqrt(self.stats.var + EPS), -CLIP, CLIP)

    def action_mean(self, obs):
        return torch.tanh(mlp(self.actor_layers, self.normalize(obs), self.activation))

    def value(self, obs, layers=None):
        """``V(obs)`` ``[...]`` with the critic's layers (or ``layers``, e.g. frozen or target copies)."""
        return mlp(self.critic_layers if layers is None else layers, self.normalize(obs), self.activation)[..., 0]

    def actor_parameters(self):
        return [*self.actor_layers, self.log_std]

    def to_flax(self, like):
        """The actor's parameters in the layout of the flax parameters ``like`` (numpy leaves)."""
        import copy

        params = copy.deepcopy(like)
        mlp_params = params["params"]["MLP_0"]
        names = sorted(mlp_params, key=lambda n: int(n.split("_")[-1]))
        for i, name in enumerate(names):
            mlp_params[name]["kernel"] = self.actor_layers[2 * i].detach().cpu().numpy()
            mlp_params[name]["bias"] = self.actor_layers[2 * i + 1].detach().cpu().numpy()
        params["params"]["log_std"] = self.log_std.detach().cpu().numpy()
        return params


class Segment(NamedTuple):
    """What a segment leaves for the critic and the normaliser (all detached)."""

    obs: torch.Tensor  #: [K, N, obs] observation before each step
    next_obs: torch.Tensor  #: [K, N, obs] observation the step reached (before a reset)
    rewards: torch.Tensor  #: [K, N] scaled rewards
    terminated: torch.Tensor  #: [K, N] 1 where the step reached a terminal state (no value after it)
    ended: torch.Tensor  #: [K, N] 1 where the episode ended at that step
    final_q: torch.Tensor  #: [N, S] state after the segment (reset where an episode just ended)
    final_steps: torch.Tensor  #: [N] episode clocks after the segment


def segment_objective(sim, policy: TorchPolicy, q0: torch.Tensor, steps0: torch.Tensor, reset_q: torch.Tensor,
                      noise: torch.Tensor, gamma: float, bootstrap: str, horizon: int, reward_scale: float = 1.0,
                      truncation_bootstrap: bool = True):
    """Torch twin of ``apg_jax.agents.apg.segment_objective``: mean over envs of
    ``sum_t gamma^t r_t`` (+ ``gamma V(s_T)`` where an episode is truncated, + ``gamma^K V(s_K)`` at the cut,
    in ``critic`` mode) along ``K = len(noise)`` steps from ``q0 [N, S]`` (cut from the graph) with episode
    clocks ``steps0 [N]``. An episode ends when its clock reaches ``horizon`` (a truncation: none of the
    tasks terminates): its discount restarts and it continues from ``reset_q [N, S]`` (clock 0).
    ``noise [K, N, A]`` is scaled by the policy's std. The critic is frozen: the gradient reaches
    ``V`` only through the states. Returns ``(objective [], Segment)``."""
    q, steps = q0.detach(), steps0.clone()
    n = q.shape[0]
    discount = torch.ones(n, dtype=q.dtype, device=q.device)
    total = torch.zeros(n, dtype=q.dtype, device=q.device)
    std = torch.exp(policy.log_std)
    frozen = [p.detach() for p in policy.critic_layers]
    seg = {name: [] for name in ("obs", "next_obs", "rewards", "terminated", "ended")}
    for eps in noise:
        obs = sim.observe(q)
        q_next, reward = sim.step(q, policy.action_mean(obs) + std * eps)
        next_obs = sim.observe(q_next)
        reward = reward_scale * reward
        steps = steps + 1
        ended = (steps >= horizon).to(q.dtype)
        term = ended if not truncation_bootstrap else torch.zeros_like(ended)
        total = total + discount * reward
        if bootstrap == "critic":
            total = total + discount * gamma * (ended - term) * policy.value(next_obs, frozen)
        discount = torch.where(ended > 0, torch.ones_like(discount), discount * gamma)
        for name, x in (("obs", obs), ("next_obs", next_obs), ("rewards", reward), ("terminated", term),
                        ("ended", ended)):
            seg[name].append(x.detach())
        q = torch.where(ended[:, None] > 0, reset_q, q_next)
        steps = torch.where(ended > 0, torch.zeros_like(steps), steps)
    if bootstrap == "critic":
        total = total + (1.0 - seg["ended"][-1]) * discount * policy.value(sim.observe(q), frozen)
    segment = Segment(*(torch.stack(seg[name]) for name in seg), q.detach(), steps)
    return total.mean(), segment


def td_lambda_targets(rewards, values, next_values, terminated, ended, gamma, lam):
    """TD(lambda) targets ``[K, N]`` (torch twin of ``apg_jax.agents.returns.compute_gae``)."""
    advantages = torch.zeros_like(rewards)
    carry = torch.zeros_like(values[0])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * (1.0 - terminated[t]) * next_values[t] - values[t]
        carry = delta + gamma * lam * (1.0 - ended[t]) * carry
        advantages[t] = carry
    return advantages + values


def lr_factor(schedule: str, update: int, total: int) -> float:
    """Learning-rate multiplier of ``apg_jax.optim.make_optimizer``'s schedules at ``update`` of ``total``."""
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return 1.0 - update / total
    return 0.5 * (1.0 + np.cos(np.pi * update / total))


def guarded_step(optimizer, params, max_grad_norm: float) -> tuple[float, bool]:
    """Clip by global norm and step, unless a gradient holds NaN/inf (then nothing changes, like
    ``apg_jax.optim.guarded_update``). Returns ``(norm before clipping, skipped)``."""
    norm = float(torch.sqrt(sum((p.grad**2).sum() for p in params if p.grad is not None)))
    if not np.isfinite(norm):
        return norm, True
    torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    return norm, False


class TorchAPG:
    """APG updates on the Warp bridge; the torch twin of ``apg_jax.agents.apg.make_apg``'s ``update``."""

    def __init__(self, sim, policy: TorchPolicy, config: TrainConfig, total_updates: int):
        self.sim, self.policy, self.config, self.total_updates = sim, policy, config, total_updates
        self.target_critic = [p.detach().clone() for p in policy.critic_layers]
        betas = tuple(config.adam_betas)
        self.actor_opt = torch.optim.Adam(policy.actor_parameters(), lr=config.learning_rate, betas=betas, eps=1e-8)
        self.critic_opt = torch.optim.Adam(list(policy.critic_layers), lr=config.critic_learning_rate, betas=betas,
                                           eps=1e-8)
        self.updates = 0

    def update(self, q, steps, reset_q, noise, critic_orders, horizon: int):
        """One segment from states ``q [N, S]`` and clocks ``steps [N]``; ``critic_orders [epochs, K*N]``
        shuffle the critic's minibatches. Returns ``(q, steps, metrics)`` to continue from."""
        config, policy = self.config, self.policy
        factor = lr_factor(config.lr_schedule, self.updates, self.total_updates)
        for opt, lr in ((self.actor_opt, config.learning_rate), (self.critic_opt, config.critic_learning_rate)):
            for group in opt.param_groups:
                group["lr"] = lr * factor
        warmup_updates = -(-config.critic_warmup_steps // (noise.shape[0] * noise.shape[1]))  # ceil
        bootstrap = config.bootstrap if self.updates >= warmup_updates else "mc"  # critic warm-up
        objective, segment = segment_objective(self.sim, policy, q, steps, reset_q, noise, config.gamma,
                                               bootstrap, horizon, config.reward_scale,
                                               config.truncation_bootstrap)
        self.actor_opt.zero_grad()
        (-objective).backward()
        norm, skipped = guarded_step(self.actor_opt, policy.actor_parameters(), config.max_grad_norm)
        critic_loss, critic_skipped = 0.0, 0
        if config.bootstrap == "critic":
            critic_loss, critic_skipped = self.fit_critic(segment, critic_orders)
        policy.stats = policy.stats.update(segment.obs.reshape(-1, segment.obs.shape[-1]))
        bad = ~torch.isfinite(segment.final_q).all(1)
        q = torch.where(bad[:, None], reset_q, segment.final_q)
        steps = torch.where(bad, torch.zeros_like(segment.final_steps), segment.final_steps)
        self.updates += 1
        metrics = {"actor_loss": float(-objective.detach()), "critic_loss": critic_loss, "grad_norm": norm,
                   "skipped_updates": float(skipped) + critic_skipped, "nonfinite_envs": float(bad.sum()),
                   "train_reward": float(segment.rewards.mean()) / config.reward_scale}
        return q, steps, metrics

    def fit_critic(self, segment: Segment, orders: torch.Tensor) -> tuple[float, int]:
        """``critic_epochs`` passes (shuffled by ``orders [epochs, K*N]``) of ``critic_minibatches`` guarded
        steps to TD(lambda) targets of the target critic, then a Polyak update of the target, as
        ``apg_jax.agents.apg.fit_critic``. Returns (mean loss, skipped steps)."""
        config, policy = self.config, self.policy
        with torch.no_grad():
            targets = td_lambda_targets(segment.rewards, policy.value(segment.obs, self.target_critic),
                                        policy.value(segment.next_obs, self.target_critic), segment.terminated,
                                        segment.ended, config.gamma, config.td_lambda).reshape(-1)
        inputs = segment.obs.reshape(targets.shape[0], -1)
        size = targets.shape[0] // config.critic_minibatches
        losses, skipped = [], 0
        for order in orders:
            for b in range(config.critic_minibatches):
                idx = order[b * size:(b + 1) * size]
                loss = ((policy.value(inputs[idx]) - targets[idx]) ** 2).mean()
                self.critic_opt.zero_grad()
                loss.backward()
                skipped += guarded_step(self.critic_opt, list(policy.critic_layers), config.max_grad_norm)[1]
                losses.append(float(loss.detach()))
        with torch.no_grad():
            for target, source in zip(self.target_critic, policy.critic_layers):
                target.mul_(1 - config.target_tau).add_(config.target_tau * source)
        return float(np.mean(losses)), skipped
