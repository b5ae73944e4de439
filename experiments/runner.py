"""Host side of a training run: seeds under ``jax.vmap``, jitted chunks, progress, metrics, checkpoints.

A run directory holds ``config.json``, ``metrics.csv`` (one row per seed per evaluation), a checkpoint of
the whole batched train state after every chunk (so an interrupted run resumes exactly), and at the end
``policy.msgpack``, ``learning_curves.png``, ``policy.gif`` and ``summary.json``."""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import time

import jax
import numpy as np

from apg_jax.checkpoint import CONFIG, METRICS, load_checkpoint, save_checkpoint, save_policy
from apg_jax.config import ConfigError, TrainConfig
from apg_jax.evaluation import rollout
from apg_jax.agents.common import deterministic_action
from apg_jax.envs import write_animation
from apg_jax.training import make_trainer, seed_keys, step_counts

COLUMNS = ["algo", "task", "seed", "chunk", "env_steps", "grad_steps", "actor_grad_steps",
           "critic_grad_steps", "wall_time_s", "eval_return", "eval_success", "actor_loss", "critic_loss",
           "grad_norm", "skipped_updates", "nonfinite_envs", "train_reward"]


@dataclasses.dataclass
class RunResult:
    out_dir: str
    rows: list
    final_return: float  #: mean over seeds of the last evaluation return
    final_success: float
    compile_time_s: float
    wall_time_s: float
    chunks_run: int = 0  #: chunks trained by this call
    finished: bool = False  #: the whole budget is done


def metric_rows(config: TrainConfig, sched, chunk: int, updates: int, wall: float, metrics: dict,
                num_seeds: int) -> list[dict]:
    counts = step_counts(sched, updates)
    rows = []
    for i in range(num_seeds):
        row = {"algo": config.algo, "task": config.task, "seed": config.seed + i, "chunk": chunk,
               "grad_steps": counts["actor_grad_steps"], **counts, "wall_time_s": round(wall, 4)}
        for name in COLUMNS:
            if name not in row:
                row[name] = float(np.asarray(metrics[name])[i]) if name in metrics else float("nan")
        rows.append(row)
    return rows


def write_metrics(path: str, rows: list[dict]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def read_metrics(path: str) -> list[dict]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    ints = {"seed", "chunk", "env_steps", "grad_steps", "actor_grad_steps", "critic_grad_steps"}
    return [{k: (v if k in ("algo", "task") else int(v) if k in ints else float(v)) for k, v in r.items()}
            for r in rows]


def prepare_run_dir(config: TrainConfig, num_seeds: int, out_dir: str) -> None:
    """Create ``out_dir`` with ``config.json``; refuse to resume a directory of another configuration."""
    os.makedirs(out_dir, exist_ok=True)
    record = {**dataclasses.asdict(config), "num_seeds": num_seeds}
    path = os.path.join(out_dir, CONFIG)
    if os.path.exists(path):
        with open(path) as f:
            existing = json.load(f)
        existing["hidden_sizes"] = list(existing["hidden_sizes"])
        record_cmp = {**record, "hidden_sizes": list(record["hidden_sizes"])}
        if existing != record_cmp:
            diff = sorted(k for k in record_cmp if existing.get(k) != record_cmp[k])
            raise ConfigError(f"{out_dir} holds a run with a different configuration (fields {diff}); "
                              "use another --out directory or the same settings to resume it")
    with open(path, "w") as f:
        json.dump(record, f, indent=2)


def run_experiment(config: TrainConfig, num_seeds: int, out_dir: str, progress: bool = True,
                   max_chunks: int | None = None, artifacts: bool = True) -> RunResult:
    """Train ``num_seeds`` seeds of ``config`` together, resuming from ``out_dir`` if it has a checkpoint.

    ``max_chunks`` stops after that many chunks in this call (to simulate or schedule interruptions)."""
    if num_seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {num_seeds}")
    trainer = make_trainer(config)  # validates before anything is compiled
    sched = trainer.schedule
    prepare_run_dir(config, num_seeds, out_dir)
    keys = seed_keys(config.seed, num_seeds)
    init = jax.jit(jax.vmap(trainer.init))
    chunk_fn = jax.jit(jax.vmap(trainer.chunk))
    metrics_path = os.path.join(out_dir, METRICS)

    t0 = time.perf_counter()
    state = shard_seeds(init(keys))
    restored = load_checkpoint(out_dir, state)
    compiled = chunk_fn.lower(state).compile()
    evaluate = jax.jit(jax.vmap(trainer.evaluate))
    compile_time = time.perf_counter() - t0
    if restored is None:
        done, wall = 0, 0.0
        rows = metric_rows(config, sched, 0, 0, 0.0, evaluate(state), num_seeds)
        write_metrics(metrics_path, rows)
    else:
        state, done, wall = restored
        state = shard_seeds(state)
        rows = [r for r in read_metrics(metrics_path) if r["chunk"] <= done]

    todo = sched.num_chunks - done if max_chunks is None else min(max_chunks, sched.num_chunks - done)
    bar = _progress(progress, sched.num_chunks, done, config)
    for _ in range(todo):
        start = time.perf_counter()
        state, metrics = compiled(state)
        jax.block_until_ready(metrics)
        wall += time.perf_counter() - start
        done += 1
        rows += metric_rows(config, sched, done, done * sched.updates_per_chunk, wall, metrics, num_seeds)
        write_metrics(metrics_path, rows)
        save_checkpoint(out_dir, state, done, wall)
        if bar is not None:
            bar.set_postfix(eval_return=f"{np.mean(metrics['eval_return']):.3f}",
                            success=f"{np.mean(metrics['eval_success']):.2f}")
            bar.update(1)
    if bar is not None:
        bar.close()

    last = [r for r in rows if r["chunk"] == done]
    result = RunResult(out_dir, rows, float(np.mean([r["eval_return"] for r in last])),
                       float(np.mean([r["eval_success"] for r in last])), compile_time, wall, todo,
                       done == sched.num_chunks)
    if done == sched.num_chunks and artifacts:
        write_artifacts(trainer, state, rows, result, num_seeds)
    return result


def shard_seeds(tree):
    """Place a batched train state (leading axis: seeds) across the local devices, split along the seed
    axis, when there are several and they divide the number of seeds; ``jit(vmap(...))`` then runs each
    device's seeds there. On one device (or an uneven split) the tree is returned unchanged."""
    devices = jax.local_devices()
    num_seeds = jax.tree.leaves(tree)[0].shape[0]
    if len(devices) < 2 or num_seeds % len(devices):
        return tree
    mesh = jax.sharding.Mesh(np.array(devices), ("seed",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seed"))
    return jax.device_put(tree, sharding)


def _progress(enabled: bool, total: int, done: int, config: TrainConfig):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc=f"{config.algo}/{config.task}", unit="eval")


def write_artifacts(trainer, state, rows, result: RunResult, num_seeds: int) -> None:
    """Policy parameters, learning curves, an animation of seed 0 and ``summary.json``."""
    from experiments.plots import plot_learning_curves

    config, out = trainer.config, result.out_dir
    learner = state.learner
    save_policy(out, learner.actor_params, learner.obs_stats, config.seed + np.arange(num_seeds))
    plot_learning_curves(rows, os.path.join(out, "learning_curves.png"), f"{config.algo} on {config.task}")
    first = jax.tree.map(lambda x: x[0], learner)
    act = lambda obs: deterministic_action(trainer.actor, first.actor_params, first.obs_stats, obs)
    qs, _, _ = jax.jit(lambda k: rollout(trainer.env, act, k, 1))(jax.random.PRNGKey(config.seed + 7))
    every = max(1, trainer.env.episode_length // 100)
    write_animation(trainer.env, np.asarray(qs[:, 0]), os.path.join(out, "policy.gif"), every=every,
                    title=f"{config.algo} {config.task} seed {config.seed}")
    summary = {"final_eval_return": result.final_return, "final_eval_success": result.final_success,
               "compile_time_s": result.compile_time_s, "train_wall_time_s": result.wall_time_s,
               "env_steps": rows[-1]["env_steps"], "actor_grad_steps": rows[-1]["actor_grad_steps"],
               "num_seeds": num_seeds, "device": str(jax.devices()[0])}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
