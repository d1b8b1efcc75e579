"""Replica meshes: where the replica axis lives on devices and hosts.

Only :mod:`jaxticket.core.loop` places work on a mesh. Inputs are placed by
host transfers and outputs fetched back by transfers (never an XLA
collective inside one host: on simulated CPU devices a collective can stall
when the shared thread pool is busy), so everything outside the compiled
programs sees ordinary single-device arrays. A host-spanning job
(:func:`jaxticket.core.runtime.spans_hosts`) gathers results with
``process_allgather``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxticket.core import runtime

PyTree = Any

REPLICA_AXIS = "replica"


def replica_mesh(num_replicas: int, devices: list | None = None
                 ) -> Mesh | None:
  """A 1-D mesh (axis ``replica``) over ``min(num_replicas, #devices)``
  local devices; None when that is one. Replicas that do not divide evenly
  over it are padded (:func:`to_global`)."""
  devices = list(devices if devices is not None else jax.local_devices())
  d = min(num_replicas, len(devices))
  return None if d <= 1 else Mesh(np.array(devices[:d]), (REPLICA_AXIS,))


def devices_per_process(num_replicas: int, processes: int,
                        local_devices: int) -> int:
  """Devices each process gives a host-spanning program: as many as the
  replicas can use (``ceil(R / processes)``), at most ``local_devices``,
  at least one (every process takes part)."""
  return max(1, min(local_devices, -(-num_replicas // processes)))


def host_spanning_mesh(num_replicas: int) -> Mesh:
  """A 1-D mesh (axis ``replica``) over the same number of devices of
  *every* process (:func:`devices_per_process`), for a host-spanning job
  (:func:`jaxticket.runtime.spans_hosts`)."""
  by_process: dict[int, list] = {}
  for d in jax.devices():
    by_process.setdefault(d.process_index, []).append(d)
  q = devices_per_process(num_replicas, len(by_process),
                          min(len(v) for v in by_process.values()))
  return Mesh(np.array([d for p in sorted(by_process)
                        for d in by_process[p][:q]]), (REPLICA_AXIS,))


def padded_count(num_replicas: int, mesh: Mesh) -> int:
  """The replica count rounded up to a multiple of the mesh's size."""
  return -(-num_replicas // mesh.size) * mesh.size


def _is_key(x: jax.Array) -> bool:
  return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_global(tree: PyTree, mesh: Mesh, spec: P,
              replicas: int | None = None) -> PyTree:
  """Arrays (the same values in every process) placed on ``mesh`` as laid
  out by ``spec``, each process filling its own devices' shards from host
  memory: plain transfers, never a collective. ``replicas``: first grow the
  leading axis to that size by repeating the last replica (padding to a
  multiple of the mesh; the copies are dropped by :func:`to_host_local`),
  so e.g. 9 replicas run as 5 + 5 on two devices instead of 9 on one."""
  sharding = NamedSharding(mesh, spec)

  def put(x):
    if _is_key(x):
      return jax.random.wrap_key_data(put(jax.random.key_data(x)),
                                      impl=jax.random.key_impl(x))
    host = np.asarray(jax.device_get(x))
    if replicas is not None and replicas > host.shape[0]:
      host = np.concatenate(
          [host, np.repeat(host[-1:], replicas - host.shape[0], axis=0)])
    return jax.make_array_from_callback(host.shape, sharding,
                                        lambda index: host[index])

  return jax.tree.map(put, tree)


def to_host_local(tree: PyTree, replicas: int | None = None) -> PyTree:
  """Arrays laid out over a mesh, fetched whole into this process (shard
  by shard; across processes with ``process_allgather``, a collective every
  process must call), keeping the first ``replicas`` (inverse of
  :func:`to_global`). The results live on the default device, so whatever
  runs on them next needs no cross-device communication."""
  leaves, treedef = jax.tree.flatten(tree)
  impls = [jax.random.key_impl(x) if _is_key(x) else None for x in leaves]
  data = [jax.random.key_data(x) if i else x for x, i in zip(leaves, impls)]
  if all(x.is_fully_addressable for x in data):
    gathered = jax.device_get(data)
  else:
    gathered = multihost_utils.process_allgather(data, tiled=True)
  cut = slice(None) if replicas is None else slice(0, replicas)
  out = [jnp.asarray(np.asarray(g)[cut]) for g in gathered]
  out = [jax.random.wrap_key_data(g, impl=i) if i else g
         for g, i in zip(out, impls)]
  return jax.tree.unflatten(treedef, out)


def mesh_for(num_replicas: int, shard: bool = True) -> Mesh | None:
  """The mesh a program of ``num_replicas`` replicas runs on: the
  host-spanning mesh in a host-spanning job, else the local replica mesh;
  None without sharding or with a single device."""
  if not shard:
    return None
  if runtime.spans_hosts():
    return host_spanning_mesh(num_replicas)
  return replica_mesh(num_replicas)


__all__ = ["REPLICA_AXIS", "replica_mesh", "devices_per_process",
           "host_spanning_mesh", "padded_count", "to_global", "to_host_local",
           "mesh_for"]
