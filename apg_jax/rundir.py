"""The run-directory format, owned here and used by every backend (JAX runner, torch + Warp trainer).

A run directory holds:
- ``config.json``: the resolved ``TrainConfig`` plus ``num_seeds`` (a directory of another configuration
  is refused on resume);
- ``metrics.csv``: one row per seed per evaluation, columns ``COLUMNS`` (rewritten atomically after
  every evaluation);
- ``checkpoint.msgpack``: the whole batched train state after every evaluation chunk (resume);
- at the end ``policy.msgpack`` (actor parameters and observation statistics of every seed, leading
  axis = seed), ``learning_curves.png``, ``policy.gif`` and ``summary.json``.

Every file is written atomically (temporary file + rename), so an interrupted run never leaves a torn one.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os

import numpy as np
from flax import serialization

from apg_jax.config import ConfigError, TrainConfig

CHECKPOINT = "checkpoint.msgpack"
POLICY = "policy.msgpack"
CONFIG = "config.json"
METRICS = "metrics.csv"
SUMMARY = "summary.json"
CURVES = "learning_curves.png"
ANIMATION = "policy.gif"
OUTPUTS = (METRICS, CONFIG, SUMMARY, POLICY, CURVES, ANIMATION)

#: metrics.csv columns; ``grad_steps`` counts actor (policy) optimizer steps; ``segment_length`` is the
#: APG segment length used in the chunk, ``segment_snr`` / ``segment_cosine`` the adaptive rule's
#: statistics of the length it proposed after it (``segment_length="auto"`` only; see ``apg_jax.adaptive``;
#: with ``adapt_confirmations > 1`` a proposal is taken once confirmed);
#: ``analytic_weight`` the hybrid's mean weight of the analytic gradient (``apg_jax.agents.hybrid``);
#: ``optimizer_rescale`` the factor Adam's moments were rescaled by after the chunk
#: (``adapt_rescale_optimizer``; 1 where the length did not change)
COLUMNS = ["algo", "task", "seed", "chunk", "env_steps", "grad_steps", "actor_grad_steps",
           "critic_grad_steps", "wall_time_s", "eval_return", "eval_success", "actor_loss", "critic_loss",
           "grad_norm", "skipped_updates", "nonfinite_envs", "train_reward", "segment_length", "segment_snr",
           "segment_cosine", "analytic_weight", "optimizer_rescale"]
_INT_COLUMNS = {"seed", "chunk", "env_steps", "grad_steps", "actor_grad_steps", "critic_grad_steps"}
_TEXT_COLUMNS = {"algo", "task"}


def write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ----- configuration -------------------------------------------------------------------------------
def prepare(config: TrainConfig, num_seeds: int, out_dir: str) -> None:
    """Create ``out_dir`` with ``config.json``; refuse to resume a directory of another configuration."""
    os.makedirs(out_dir, exist_ok=True)
    record = json.loads(json.dumps({**dataclasses.asdict(config), "num_seeds": num_seeds}))
    path = os.path.join(out_dir, CONFIG)
    if os.path.exists(path):
        with open(path) as f:
            existing = json.load(f)
        if not same_config(existing, record):
            diff = sorted(k for k in set(record) | set(existing) if existing.get(k) != record.get(k))
            raise ConfigError(f"{out_dir} holds a run with a different configuration (fields {diff}); "
                              "use another --out directory or the same settings to resume it")
    write_atomic(path, json.dumps(record, indent=2).encode())


def same_config(existing: dict, record: dict) -> bool:
    """Whether a stored configuration record is ``record``; a field the stored one lacks (added to
    ``TrainConfig`` after it was written) matches when ``record`` holds that field's default."""
    defaults = json.loads(json.dumps(dataclasses.asdict(TrainConfig())))
    record = json.loads(json.dumps(record))
    return set(existing) <= set(record) and all(existing.get(k, defaults.get(k)) == v for k, v in record.items())


def read_config(run_dir: str) -> tuple[TrainConfig, int]:
    """``(config, num_seeds)`` of a run directory."""
    path = os.path.join(run_dir, CONFIG)
    if not os.path.exists(path):
        raise ValueError(f"{run_dir} is not a run directory (no {CONFIG})")
    with open(path) as f:
        record = json.load(f)
    return TrainConfig.from_dict(record), int(record.get("num_seeds", 1))


# ----- metrics -------------------------------------------------------------------------------------
def metric_row(config: TrainConfig, seed: int, chunk: int, counts: dict, wall: float, values: dict) -> dict:
    """One ``metrics.csv`` row: every column present (NaN where a value is missing), then the task's own
    evaluation metrics (``eval_<name>`` of ``DiffEnv.episode_metrics``, e.g. tblock's
    ``eval_max_coverage``)."""
    row = {"algo": config.algo, "task": config.task, "seed": seed, "chunk": chunk, **counts,
           "grad_steps": counts["actor_grad_steps"], "wall_time_s": round(wall, 4)}
    for name in COLUMNS:
        if name not in row:
            row[name] = float(values[name]) if name in values else float("nan")
    for name in sorted(values):
        if name.startswith("eval_") and name not in row:
            row[name] = float(values[name])
    return row


def write_metrics(run_dir: str, rows: list[dict]) -> None:
    path = os.path.join(run_dir, METRICS)
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="") as f:
        extra = [k for k in (rows[0] if rows else {}) if k not in COLUMNS]
        writer = csv.DictWriter(f, fieldnames=COLUMNS + extra)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def read_metrics(path: str) -> list[dict]:
    """Rows of a ``metrics.csv`` (a file path, or a run directory holding one)."""
    if os.path.isdir(path):
        path = os.path.join(path, METRICS)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    convert = lambda k, v: v if k in _TEXT_COLUMNS else int(v) if k in _INT_COLUMNS else float(v)
    missing = {c: float("nan") for c in COLUMNS}  # files written before a column was added
    return [{**missing, **{k: convert(k, v) for k, v in r.items()}} for r in rows]


# ----- checkpoints ---------------------------------------------------------------------------------
def save_checkpoint(run_dir: str, state, chunk: int, wall_time_s: float) -> None:
    payload = {"state": state, "chunk": np.int64(chunk), "wall_time_s": np.float64(wall_time_s)}
    write_atomic(os.path.join(run_dir, CHECKPOINT), serialization.to_bytes(payload))


def load_checkpoint(run_dir: str, target_state):
    """Returns ``(state, chunks_done, wall_time_s)`` or ``None`` when the run has no checkpoint."""
    path = os.path.join(run_dir, CHECKPOINT)
    if not os.path.exists(path):
        return None
    target = {"state": target_state, "chunk": np.int64(0), "wall_time_s": np.float64(0)}
    with open(path, "rb") as f:
        raw = serialization.msgpack_restore(f.read())
    state = raw["state"]
    if "pending_index" not in state and "length_index" in state:  # written before the adaptive rule's
        state["pending_index"] = np.asarray(state["length_index"])  # confirmations: nothing pending
        state["pending_count"] = np.zeros_like(state["length_index"])
    payload = serialization.from_state_dict(target, raw)
    return payload["state"], int(payload["chunk"]), float(payload["wall_time_s"])


def load_checkpoint_policy(run_dir: str) -> dict | None:
    """The actor parameters and observation statistics (leading axis = seed) of the run's last checkpoint,
    as plain arrays, without rebuilding its training state (so checkpoints of older state layouts load);
    ``None`` when the run has no checkpoint."""
    path = os.path.join(run_dir, CHECKPOINT)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        learner = serialization.msgpack_restore(f.read())["state"]["learner"]
    return {"actor_params": learner["actor_params"], "obs_stats": learner["obs_stats"]}


# ----- policy and end-of-run artifacts -------------------------------------------------------------
def save_policy(run_dir: str, actor_params, obs_stats, seeds) -> None:
    """Actor parameters and observation statistics of every seed (leading axis = seed)."""
    import jax

    payload = {"actor_params": serialization.to_state_dict(actor_params),
               "obs_stats": serialization.to_state_dict(obs_stats), "seeds": np.asarray(seeds)}
    payload = jax.tree.map(np.asarray, payload)
    write_atomic(os.path.join(run_dir, POLICY), serialization.msgpack_serialize(payload))


def load_policy_arrays(run_dir: str) -> dict:
    path = os.path.join(run_dir, POLICY)
    if not os.path.exists(path):
        raise ValueError(f"{run_dir} has no {POLICY}: the run has not finished (resume it to the end)")
    with open(path, "rb") as f:
        return serialization.msgpack_restore(f.read())


def write_summary(run_dir: str, summary: dict) -> None:
    write_atomic(os.path.join(run_dir, SUMMARY), json.dumps(summary, indent=2).encode())


def final_numbers(rows: list[dict]) -> tuple[float, float]:
    """Mean over seeds of the last evaluation's return and success."""
    last_chunk = max(r["chunk"] for r in rows)
    last = [r for r in rows if r["chunk"] == last_chunk]
    return (float(np.mean([r["eval_return"] for r in last])), float(np.mean([r["eval_success"] for r in last])))


def write_artifacts(run_dir: str, config: TrainConfig, rows: list[dict], actor, actor_params, obs_stats,
                    summary: dict, label: str | None = None) -> None:
    """``policy.msgpack``, ``learning_curves.png``, ``policy.gif`` (seed ``config.seed``) and
    ``summary.json``. ``actor_params`` / ``obs_stats`` carry a leading seed axis."""
    import jax

    from apg_jax import envs
    from apg_jax.envs.render import pick_episodes
    from apg_jax.evaluation import episode_success, rollout
    from apg_jax.plots import plot_learning_curves
    from apg_jax.networks import deterministic_action

    num_seeds = jax.tree.leaves(actor_params)[0].shape[0]
    label = label or config.algo
    save_policy(run_dir, actor_params, obs_stats, config.seed + np.arange(num_seeds))
    plot_learning_curves(rows, os.path.join(run_dir, CURVES), f"{label} on {config.task}")
    env = envs.make(config.task, **config.env_params)
    first_params, first_stats = jax.tree.map(lambda x: x[0], (actor_params, obs_stats))
    act = lambda obs: deterministic_action(actor, first_params, first_stats, obs)
    # four evaluation episodes side by side: successes and failures where both occur
    qs, _, success = jax.jit(lambda k: rollout(env, act, k, 16))(jax.random.PRNGKey(config.seed + 7))
    won = np.asarray(episode_success(env, success))
    chosen = pick_episodes(won)
    titles = [f"{label} seed {config.seed}, episode {i}: {'success' if won[i] else 'failure'}" for i in chosen]
    envs.write_animation(env, np.swapaxes(np.asarray(qs), 0, 1)[chosen], os.path.join(run_dir, ANIMATION),
                         every=max(1, env.episode_length // 100), titles=titles)
    write_summary(run_dir, summary)
