"""Files of a run directory: checkpoints (whole batched train state) and the trained policy.

Both are written atomically (temporary file + rename), so an interrupted run never leaves a torn file."""
from __future__ import annotations

import os

import numpy as np
from flax import serialization

CHECKPOINT = "checkpoint.msgpack"
POLICY = "policy.msgpack"
CONFIG = "config.json"
METRICS = "metrics.csv"


def write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
        payload = serialization.from_bytes(target, f.read())
    return payload["state"], int(payload["chunk"]), float(payload["wall_time_s"])


def save_policy(run_dir: str, actor_params, obs_stats, seeds) -> None:
    """Actor parameters and observation statistics of every seed (leading axis = seed)."""
    payload = {"actor_params": serialization.to_state_dict(actor_params),
               "obs_stats": serialization.to_state_dict(obs_stats), "seeds": np.asarray(seeds)}
    payload = __import__("jax").tree.map(np.asarray, payload)
    write_atomic(os.path.join(run_dir, POLICY), serialization.msgpack_serialize(payload))


def load_policy_arrays(run_dir: str) -> dict:
    with open(os.path.join(run_dir, POLICY), "rb") as f:
        return serialization.msgpack_restore(f.read())
