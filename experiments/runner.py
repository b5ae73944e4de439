"""Host side of a JAX training run: seeds under ``jax.vmap``, jitted chunks, progress, metrics,
checkpoints. The run directory's format is ``apg_jax.rundir``'s."""
from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from apg_jax import rundir
from apg_jax.config import ConfigError, TrainConfig
from apg_jax.training import check_paired_seeds, make_trainer, seed_keys, step_counts
from experiments.progress import Progress


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


def metric_rows(config: TrainConfig, sched, chunk: int, wall: float, metrics: dict, updates) -> list:
    """Rows of one evaluation for every seed; ``metrics`` and ``updates`` (``TrainState.updates``) hold
    arrays with a leading seed axis."""
    updates = np.asarray(updates)
    return [rundir.metric_row(config, config.seed + i, chunk, step_counts(sched, chunk, int(updates[i])), wall,
                              {k: np.asarray(v)[i] for k, v in metrics.items()}) for i in range(len(updates))]


def run_experiment(config: TrainConfig, num_seeds: int, out_dir: str, progress: bool = True,
                   max_chunks: int | None = None, artifacts: bool = True) -> RunResult:
    """Train ``num_seeds`` seeds of ``config`` together, resuming from ``out_dir`` if it has a checkpoint.

    ``max_chunks`` stops after that many chunks in this call (to simulate or schedule interruptions)."""
    if num_seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {num_seeds}")
    trainer = make_trainer(config)  # validates before anything is compiled
    check_paired_seeds(trainer, config.seed, num_seeds)
    sched = trainer.schedule
    rundir.prepare(config, num_seeds, out_dir)
    keys = seed_keys(config.seed, num_seeds)
    init = jax.jit(jax.vmap(trainer.init))
    chunk_fn = jax.jit(batch_seeds(trainer))

    # seeds under lax.map (adaptive segment length) run one after another on one device
    shard = shard_seeds if len(sched.segment_lengths) <= 1 else (lambda tree: tree)
    t0 = time.perf_counter()
    state = shard(init(keys))
    restored = rundir.load_checkpoint(out_dir, state)
    compiled = chunk_fn.lower(state).compile()
    evaluate = jax.jit(jax.vmap(trainer.evaluate))
    compile_time = time.perf_counter() - t0
    if restored is None:
        done, wall = 0, 0.0
        rows = metric_rows(config, sched, 0, 0.0, evaluate(state), state.updates)
        rundir.write_metrics(out_dir, rows)
    else:
        state, done, wall = restored
        state = shard(state)
        rows = [r for r in rundir.read_metrics(out_dir) if r["chunk"] <= done]

    todo = sched.num_chunks - done if max_chunks is None else min(max_chunks, sched.num_chunks - done)
    bar = Progress(progress, sched.num_chunks, done, f"{config.algo}/{config.task}")
    for _ in range(todo):
        start = time.perf_counter()
        state, metrics = compiled(state)
        jax.block_until_ready(metrics)
        wall += time.perf_counter() - start
        done += 1
        rows += metric_rows(config, sched, done, wall, metrics, state.updates)
        rundir.write_metrics(out_dir, rows)
        rundir.save_checkpoint(out_dir, state, done, wall)
        task_metrics = {k[5:]: float(np.mean(v)) for k, v in metrics.items()  # e.g. tblock's max_coverage
                        if k.startswith("eval_") and k not in ("eval_return", "eval_success")}
        bar.update(eval_return=float(np.mean(metrics["eval_return"])),
                   success=float(np.mean(metrics["eval_success"])), **task_metrics)
    bar.close()

    final_return, final_success = rundir.final_numbers(rows)
    result = RunResult(out_dir, rows, final_return, final_success, compile_time, wall, todo,
                       done == sched.num_chunks)
    if result.finished and not artifacts:  # a finished run always keeps its policy (experiments.evaluate,
        learner = state.learner  # experiments.gradients, apg_jax.load_policy read it)
        rundir.save_policy(out_dir, learner.actor_params, learner.obs_stats, config.seed + np.arange(num_seeds))
    if result.finished and artifacts:
        learner = state.learner
        summary = {"backend": "jax", "final_eval_return": final_return, "final_eval_success": final_success,
                   "compile_time_s": compile_time, "train_wall_time_s": wall,
                   "env_steps": rows[-1]["env_steps"], "actor_grad_steps": rows[-1]["actor_grad_steps"],
                   "num_seeds": num_seeds, "device": str(jax.devices()[0])}
        rundir.write_artifacts(out_dir, config, rows, trainer.actor, learner.actor_params, learner.obs_stats,
                               summary)
    return result


def batch_seeds(trainer):
    """``trainer.chunk`` over a leading seed axis: ``vmap`` with one segment length; with the adaptive
    length a ``lax.map`` (seeds one after another), since each seed may be at another length and a
    vmapped ``lax.switch`` would run every length's branch for every seed."""
    if len(trainer.schedule.segment_lengths) > 1:
        return lambda states: jax.lax.map(trainer.chunk, states)
    return jax.vmap(trainer.chunk)


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
