"""APG training through the Warp bridge: PyTorch networks and optimizer, Warp physics.

The same configuration, initial parameters (built by the JAX trainer from the same seed), environment
resets, noise, schedule, evaluation protocol (the JAX evaluator on the same evaluation environments, with
the torch parameters copied back) and ``metrics.csv`` format as the JAX path; what differs is where the
gradient is computed. One seed at a time (no vmap in torch). Used by
``python -m experiments.run --backend warp``.
"""
import copy
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch

import warp_bridge
from apg_jax.agents.common import deterministic_action, reset_batch
from apg_jax.config import ConfigError, TrainConfig
from apg_jax.evaluation import evaluate
from apg_jax.training import make_trainer, step_counts
from experiments.runner import COLUMNS
from warp_bridge.learner import TorchPolicy, mlp, observe


def running_stats_update(stats, obs):
    """Chan's parallel merge of ``(count, mean, var)`` with a batch ``obs [M, D]`` (finite rows only)."""
    count, mean, var = stats
    obs = obs[torch.isfinite(obs).all(1)]
    n = obs.shape[0]
    if n == 0:
        return stats
    b_mean, b_var = obs.mean(0), obs.var(0, unbiased=False)
    total = count + n
    delta = b_mean - mean
    new_mean = mean + delta * n / total
    m2 = var * count + b_var * n + delta**2 * count * n / total
    return total, new_mean, m2 / total


def td_lambda_targets(rewards, values, dones, last, gamma, lam):
    """TD(lambda) targets ``[K, N]`` (torch twin of ``apg_jax.agents.returns.compute_gae``)."""
    advantages = torch.zeros_like(rewards)
    carry = torch.zeros_like(last)
    next_values = torch.cat([values[1:], last[None]], 0)
    for t in reversed(range(rewards.shape[0])):
        not_done = 1.0 - dones[t]
        delta = rewards[t] + gamma * not_done * next_values[t] - values[t]
        carry = delta + gamma * lam * not_done * carry
        advantages[t] = carry
    return advantages + values


def to_flax(policy: TorchPolicy, like):
    """The actor's torch parameters in the layout of the flax parameters ``like``."""
    params = copy.deepcopy(jax.tree.map(np.asarray, like))
    mlp_params = params["params"]["MLP_0"]
    names = sorted(mlp_params, key=lambda n: int(n.split("_")[-1]))
    for i, name in enumerate(names):
        mlp_params[name]["kernel"] = policy.actor_layers[2 * i].detach().cpu().numpy()
        mlp_params[name]["bias"] = policy.actor_layers[2 * i + 1].detach().cpu().numpy()
    params["params"]["log_std"] = policy.log_std.detach().cpu().numpy()
    return jax.tree.map(jnp.asarray, params)


def train_seed(config: TrainConfig, seed: int, device: str = "cpu", on_chunk=None):
    """Train one seed; returns metric rows (one per evaluation, chunk 0 = before training) and the final
    actor parameters and observation statistics in the JAX learner's layout."""
    trainer = make_trainer(config.replace(seed=seed))
    env, sched = trainer.env, trainer.schedule
    sim = warp_bridge.make(config.task, device=device)
    state = trainer.init(jax.random.PRNGKey(seed))
    learner = state.learner
    policy = TorchPolicy(learner.actor_params, learner.critic_params, learner.obs_stats, config.activation, device)
    target_critic = [p.detach().clone() for p in policy.critic_layers]
    total_updates = sched.num_updates
    lr_factor = (lambda i: 1.0) if config.lr_schedule == "constant" else (
        (lambda i: 1.0 - i / total_updates) if config.lr_schedule == "linear" else
        (lambda i: 0.5 * (1.0 + np.cos(np.pi * i / total_updates))))
    actor_opt = torch.optim.Adam(policy.actor_parameters(), lr=config.learning_rate, eps=1e-8)
    critic_opt = torch.optim.Adam(list(policy.critic_layers), lr=config.critic_learning_rate, eps=1e-8)
    stats = (float(learner.obs_stats.count), torch.tensor(np.asarray(learner.obs_stats.mean), device=device),
             torch.tensor(np.asarray(learner.obs_stats.var), device=device))
    to_t = lambda x: torch.tensor(np.asarray(x), device=device)
    q, t_env, key = to_t(learner.env_state.pipeline_state), to_t(learner.env_state.info["t"]), learner.key
    k, n, horizon, gamma = sched.segment_length, config.num_envs, env.episode_length, config.gamma

    def jax_policy():
        obs_stats = learner.obs_stats.__class__(jnp.asarray(stats[0], jnp.float32), jnp.asarray(stats[1].cpu().numpy()),
                                                jnp.asarray(stats[2].cpu().numpy()))
        return to_flax(policy, learner.actor_params), obs_stats

    def evaluation():
        params, obs_stats = jax_policy()
        act = lambda obs: deterministic_action(trainer.actor, params, obs_stats, obs)
        out = jax.jit(lambda key: evaluate(env, act, key, config.num_eval_envs))(state.eval_key)
        return {name: float(v) for name, v in out.items()}

    rows, wall, metrics = [], 0.0, {}

    def record(chunk, updates):
        row = {"algo": "apg", "task": config.task, "seed": seed, "chunk": chunk,
               **step_counts(sched, updates), "wall_time_s": round(wall, 4), **evaluation(), **metrics}
        row["grad_steps"] = row["actor_grad_steps"]
        rows.append({name: row.get(name, float("nan")) for name in COLUMNS})
        if on_chunk:
            on_chunk(rows)

    record(0, 0)
    update = 0
    for chunk in range(1, sched.num_chunks + 1):
        start = time.perf_counter()
        losses, norms, skipped, critic_losses, rewards_seen = [], [], 0, [], []
        for _ in range(sched.updates_per_chunk):
            for group in actor_opt.param_groups:
                group["lr"] = config.learning_rate * lr_factor(update)
            for group in critic_opt.param_groups:
                group["lr"] = config.critic_learning_rate * lr_factor(update)
            key, k_reset, k_noise, k_critic = jax.random.split(key, 4)
            reset_q = to_t(reset_batch(env, k_reset, n).pipeline_state)
            noise = (to_t(jax.random.normal(k_noise, (k, n, env.action_size))) if config.exploration_noise
                     else torch.zeros(k, n, env.action_size, device=device))
            policy.obs_mean, policy.obs_std = stats[1], torch.sqrt(stats[2] + 1e-8)
            x = q.detach()
            discount = torch.ones(n, device=device)
            total = torch.zeros(n, device=device)
            seg_obs, seg_rewards, seg_dones = [], [], []
            for eps in noise:
                obs = observe(config.task, x)
                action = policy.action_mean(obs) + torch.exp(policy.log_std) * eps
                x_next, reward = sim.step(x, action)
                t_env = t_env + 1
                done = (t_env >= horizon).float()
                total = total + discount * reward
                discount = torch.where(done > 0, torch.ones_like(discount), discount * gamma)
                seg_obs.append(obs.detach())
                seg_rewards.append(reward.detach())
                seg_dones.append(done)
                x = torch.where(done[:, None] > 0, reset_q, x_next)
                t_env = torch.where(done > 0, torch.zeros_like(t_env), t_env)
            if config.bootstrap == "critic":
                frozen = [p.detach() for p in policy.critic_layers]  # V(s_K), differentiated through s_K only
                total = total + discount * mlp(frozen, policy.normalize(observe(config.task, x)), policy.activation)[..., 0]
            loss = -total.mean()
            actor_opt.zero_grad()
            loss.backward()
            grads = [p.grad for p in policy.actor_parameters()]
            norm = torch.sqrt(sum((g**2).sum() for g in grads))
            if torch.isfinite(norm):
                torch.nn.utils.clip_grad_norm_(policy.actor_parameters(), config.max_grad_norm)
                actor_opt.step()
            else:
                skipped += 1
            losses.append(float(loss.detach()))
            norms.append(float(norm))
            rewards_seen.append(float(torch.stack(seg_rewards).mean()))
            obs_batch = torch.stack(seg_obs)
            if config.bootstrap == "critic":
                with torch.no_grad():
                    values = mlp(target_critic, policy.normalize(obs_batch), policy.activation)[..., 0]
                    last = mlp(target_critic, policy.normalize(observe(config.task, x.detach())), policy.activation)[..., 0]
                    targets = td_lambda_targets(torch.stack(seg_rewards), values, torch.stack(seg_dones), last,
                                                gamma, config.td_lambda).reshape(-1)
                inputs = policy.normalize(obs_batch).reshape(targets.shape[0], -1)
                size = targets.shape[0] // config.critic_updates
                order = torch.tensor(np.asarray(jax.random.permutation(k_critic, targets.shape[0])), device=device)
                for b in range(config.critic_updates):
                    idx = order[b * size:(b + 1) * size]
                    critic_loss = ((mlp(policy.critic_layers, inputs[idx], policy.activation)[..., 0] - targets[idx]) ** 2).mean()
                    critic_opt.zero_grad()
                    critic_loss.backward()
                    torch.nn.utils.clip_grad_norm_(list(policy.critic_layers), config.max_grad_norm)
                    critic_opt.step()
                    critic_losses.append(float(critic_loss))
                with torch.no_grad():
                    for tgt, src in zip(target_critic, policy.critic_layers):
                        tgt.mul_(1 - config.target_tau).add_(config.target_tau * src)
            stats = running_stats_update(stats, obs_batch.reshape(-1, obs_batch.shape[-1]))
            bad = ~torch.isfinite(x).all(1)
            q = torch.where(bad[:, None], reset_q, x).detach()
            update += 1
        wall += time.perf_counter() - start
        metrics = {"actor_loss": float(np.mean(losses)), "critic_loss": float(np.mean(critic_losses)) if critic_losses else 0.0,
                   "grad_norm": float(np.mean(norms)), "skipped_updates": float(skipped), "nonfinite_envs": 0.0,
                   "train_reward": float(np.mean(rewards_seen))}
        record(chunk, update)
    return rows, jax_policy()


def write_artifacts(config: TrainConfig, out_dir: str, rows: list[dict], policies: list) -> None:
    """``policy.msgpack`` (loadable with ``apg_jax.load_policy``), ``learning_curves.png`` and
    ``policy.gif`` of the first seed, as the JAX runner writes them."""
    from apg_jax.checkpoint import save_policy
    from apg_jax.envs import make, write_animation
    from apg_jax.evaluation import rollout
    from apg_jax.networks import make_networks
    from experiments.plots import plot_learning_curves

    params = jax.tree.map(lambda *xs: jnp.stack(xs), *[p for p, _ in policies])
    stats = jax.tree.map(lambda *xs: jnp.stack(xs), *[s for _, s in policies])
    save_policy(out_dir, params, stats, config.seed + np.arange(len(policies)))
    plot_learning_curves(rows, os.path.join(out_dir, "learning_curves.png"), f"apg (warp) on {config.task}")
    env = make(config.task)
    actor, _ = make_networks(env.action_size, config.hidden_sizes, config.activation, config.init_log_std)
    first_params, first_stats = policies[0]
    act = lambda obs: deterministic_action(actor, first_params, first_stats, obs)
    qs, _, _ = jax.jit(lambda key: rollout(env, act, key, 1))(jax.random.PRNGKey(config.seed + 7))
    write_animation(env, np.asarray(qs[:, 0]), os.path.join(out_dir, "policy.gif"),
                    every=max(1, env.episode_length // 100), title=f"apg (warp) {config.task} seed {config.seed}")


def run_warp_experiment(config: TrainConfig, num_seeds: int, out_dir: str, device: str = "cpu") -> dict:
    """Train ``num_seeds`` seeds one after another; writes ``config.json``, ``metrics.csv`` (after every
    evaluation), the artifacts and ``summary.json`` like the JAX runner. Returns the summary."""
    from experiments.runner import prepare_run_dir, write_metrics

    if config.algo != "apg":
        raise ConfigError("the warp backend trains APG only (PPO never differentiates through the physics)")
    make_trainer(config)  # validates before the run directory is written
    prepare_run_dir(config, num_seeds, out_dir)
    metrics_path = os.path.join(out_dir, "metrics.csv")
    done_rows: list[dict] = []
    start = time.perf_counter()
    policies = []
    for seed in range(config.seed, config.seed + num_seeds):
        rows, policy = train_seed(config, seed, device, on_chunk=lambda r: write_metrics(metrics_path, done_rows + r))
        done_rows += rows
        policies.append(policy)
    write_artifacts(config, out_dir, done_rows, policies)
    last = [r for r in done_rows if r["chunk"] == max(r["chunk"] for r in done_rows)]
    summary = {"backend": "warp", "device": device, "final_eval_return": float(np.mean([r["eval_return"] for r in last])),
               "final_eval_success": float(np.mean([r["eval_success"] for r in last])),
               "train_wall_time_s": float(sum(r["wall_time_s"] for r in last)),
               "total_time_s": time.perf_counter() - start, "env_steps": last[0]["env_steps"], "num_seeds": num_seeds}
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary
