"""The shim brax 0.14.2's trainers need on current JAX (>= 0.10), which removed
``jax.device_put_replicated`` and ``jax.device_put_sharded``: both are rebuilt from ``jax.device_put``
with the ``[devices, ...]`` leading axis that brax's ``pmap``-based trainers expect. Nothing else of brax
is changed. ``install()`` adds them only where JAX lacks them."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def device_put_replicated(x, devices):
    """Every leaf of ``x`` stacked ``len(devices)`` times along a new leading axis, one slice per device."""
    return jax.tree.map(lambda a: device_put_sharded([a] * len(devices), devices), x)


def device_put_sharded(shards, devices):
    """``shards`` (a list of equal pytrees, one per device) stacked along a new leading axis and split
    over ``devices``."""
    if len(shards) != len(devices):
        raise ValueError(f"device_put_sharded needs one shard per device: {len(shards)} shards, {len(devices)} devices")
    stacked = jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *shards)
    mesh = jax.sharding.Mesh(list(devices), ("devices",))
    return jax.device_put(stacked, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("devices")))


def install() -> None:
    for name, fn in (("device_put_replicated", device_put_replicated), ("device_put_sharded", device_put_sharded)):
        if not hasattr(jax, name):
            setattr(jax, name, fn)
