"""``python -m experiments.run --backend warp``: APG with PyTorch networks on the Warp physics bridge.

The same configuration, initial parameters (built by the JAX trainer from the same seed), environment
resets, episode clocks, noise, schedule, evaluation protocol (the JAX evaluator on the same evaluation
environments, with the torch parameters copied back) and run-directory format (``apg_jax.rundir``) as the
JAX path; what differs is where the gradient is computed (``warp_bridge.learner.TorchAPG``). Seeds train
one after another (no vmap in torch); there is no mid-run resume (a rerun starts over).
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import torch

import warp_bridge
from apg_jax import rundir
from apg_jax.config import ConfigError, TrainConfig
from apg_jax.envs.batch import curriculum_difficulty, reset_batch
from apg_jax.evaluation import evaluate
from apg_jax.normalization import RunningStats
from apg_jax.networks import deterministic_action
from apg_jax.training import make_trainer, step_counts
from experiments.progress import Progress
from experiments.runner import RunResult
from warp_bridge.learner import TorchAPG, TorchPolicy


def flax_policy(policy: TorchPolicy, like_params):
    """``(actor params, RunningStats)`` in the JAX layout from the torch policy."""
    params = jax.tree.map(jnp.asarray, policy.to_flax(jax.tree.map(np.asarray, like_params)))
    stats = RunningStats(jnp.asarray(policy.stats.count, jnp.float32), jnp.asarray(policy.stats.mean.cpu().numpy()),
                         jnp.asarray(policy.stats.var.cpu().numpy()))
    return params, stats


def train_seed(config: TrainConfig, seed: int, device: str, on_chunk):
    """Train one seed; ``on_chunk(rows, values)`` is called after every evaluation (chunk 0 = before
    training). Returns the metric rows and the final ``(actor params, stats)`` in the JAX layout."""
    trainer = make_trainer(config.replace(seed=seed))
    env, sched = trainer.env, trainer.schedule
    sim = warp_bridge.make(config.task, device=device)
    state = trainer.init(jax.random.PRNGKey(seed))
    learner = state.learner
    policy = TorchPolicy(learner.actor_params, learner.critic_params, learner.obs_stats, config.activation, device)
    apg = TorchAPG(sim, policy, config, sched.num_updates)
    to_t = lambda x: torch.tensor(np.asarray(x), device=device)
    q, steps, key = to_t(learner.env_state.pipeline_state), to_t(learner.env_state.info["steps"]), learner.key
    k, n = sched.segment_length, config.num_envs
    horizon = config.train_episode_length or env.episode_length  # training episodes' time limit
    evaluate_jit = jax.jit(lambda params, stats: evaluate(
        env, lambda obs: deterministic_action(trainer.actor, params, stats, obs), state.eval_key,
        config.num_eval_envs))

    rows, wall, metrics, env_steps = [], 0.0, {}, 0  # env_steps: trained on (all envs), for the curriculum

    def record(chunk: int):
        params, stats = flax_policy(policy, learner.actor_params)
        values = {name: float(v) for name, v in evaluate_jit(params, stats).items()}
        rows.append(rundir.metric_row(config, seed, chunk, step_counts(sched, chunk, chunk * sched.updates_per_chunk),
                                      wall, {**values, **metrics}))
        on_chunk(rows, values)

    record(0)
    for chunk in range(1, sched.num_chunks + 1):
        start = time.perf_counter()
        per_update = []
        for _ in range(sched.updates_per_chunk):
            key, k_reset, k_noise, k_critic = jax.random.split(key, 4)  # as the JAX update splits its key
            difficulty = curriculum_difficulty(config, jnp.asarray(env_steps, jnp.int32))  # as APG's draw
            reset_q = to_t(reset_batch(env, k_reset, n, difficulty).pipeline_state)
            noise = (to_t(jax.random.normal(k_noise, (k, n, env.action_size))) if config.exploration_noise
                     else torch.zeros(k, n, env.action_size, device=device))
            orders = to_t(jax.vmap(lambda key_: jax.random.permutation(key_, k * n))(
                jax.random.split(k_critic, config.critic_epochs)))  # as apg_jax.agents.apg.fit_critic
            q, steps, m = apg.update(q, steps, reset_q, noise, orders, horizon)
            env_steps += n * k
            per_update.append(m)
        wall += time.perf_counter() - start
        metrics = {name: (float(np.sum([m[name] for m in per_update])) if name in ("skipped_updates", "nonfinite_envs")
                          else float(np.nanmean([m[name] for m in per_update]))) for name in per_update[0]}
        record(chunk)
    return rows, flax_policy(policy, learner.actor_params)


def run_warp_experiment(config: TrainConfig, num_seeds: int, out_dir: str, device: str = "cpu",
                        progress: bool = True, artifacts: bool = True) -> RunResult:
    """Train ``num_seeds`` seeds one after another into ``out_dir`` (``apg_jax.rundir`` format)."""
    if config.algo != "apg":
        raise ConfigError("the warp backend trains APG only (PPO never differentiates through the physics)")
    if config.env_params:
        raise ConfigError("the warp backend simulates each task's default parameters; drop --env-set or "
                          "use the jax backend")
    if config.randomize:
        raise ConfigError("the warp backend simulates fixed parameters; drop --env-randomize or use the jax "
                          "backend")
    if config.segment_length == "auto":
        raise ConfigError("the warp backend trains fixed segment lengths; use the jax backend for "
                          "segment_length=auto")
    if config.init_policy:
        raise ConfigError("the warp backend starts from a fresh policy; drop init_policy or use the jax backend")
    if num_seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {num_seeds}")
    trainer = make_trainer(config)  # validates before the run directory is written
    rundir.prepare(config, num_seeds, out_dir)
    done_rows: list[dict] = []
    policies = []
    bar = Progress(progress, num_seeds * trainer.schedule.num_chunks, 0, f"apg-warp/{config.task}")

    def on_chunk(rows, values):
        rundir.write_metrics(out_dir, done_rows + rows)
        if rows[-1]["chunk"] > 0:
            bar.update(eval_return=values["eval_return"], success=values["eval_success"])

    start = time.perf_counter()
    for seed in range(config.seed, config.seed + num_seeds):
        rows, policy = train_seed(config, seed, device, on_chunk)
        done_rows += rows
        policies.append(policy)
    bar.close()
    last_chunk = max(r["chunk"] for r in done_rows)
    wall = float(sum(r["wall_time_s"] for r in done_rows if r["chunk"] == last_chunk))
    final_return, final_success = rundir.final_numbers(done_rows)
    result = RunResult(out_dir, done_rows, final_return, final_success, time.perf_counter() - start - wall, wall,
                       trainer.schedule.num_chunks, True)
    if artifacts:
        params = jax.tree.map(lambda *xs: jnp.stack(xs), *[p for p, _ in policies])
        stats = jax.tree.map(lambda *xs: jnp.stack(xs), *[s for _, s in policies])
        summary = {"backend": "warp", "device": device, "final_eval_return": final_return,
                   "final_eval_success": final_success, "train_wall_time_s": wall,
                   "total_time_s": time.perf_counter() - start, "env_steps": done_rows[-1]["env_steps"],
                   "actor_grad_steps": done_rows[-1]["actor_grad_steps"], "num_seeds": num_seeds}
        rundir.write_artifacts(out_dir, config, done_rows, trainer.actor, params, stats, summary, "apg (warp)")
    return result
