"""Device mesh, shardings and multi-host start-up.

Every device of every process sits on one mesh axis, "data". A global batch is split along that axis (each
device holds `global_batch / device_count` examples); the train state is replicated. `jax.jit` then runs the
same program everywhere and inserts the gradient all-reduce itself, so one code path serves one CPU, one GPU, a
TPU slice or several hosts (no pmap).
"""

from __future__ import annotations

import itertools
import logging as logging_lib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"

_barrier_ids = itertools.count()
_COMPILE_TIMEOUT_S = 3600  # how long processes wait for the slowest one to compile

# Environment variables that mean "this process is one of several": jax's own, SLURM and Open MPI.
_MULTIHOST_ENV = ("JAX_COORDINATOR_ADDRESS", "OMPI_MCA_orte_hnp_uri")


class _DropPlatformProbing(logging_lib.Filter):
  def filter(self, record: logging_lib.LogRecord) -> bool:
    return record.levelno >= logging_lib.WARNING or record.name != "jax._src.xla_bridge"


def quiet_platform_logs() -> None:
  """Drops jax's INFO lines about the platforms it probes (e.g. "Unable to initialize backend 'tpu'") and, when
  called before TensorFlow is imported, TensorFlow's C++ INFO lines (CPU instruction sets, oneDNN)."""
  logging.get_absl_handler().addFilter(_DropPlatformProbing())
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")


def _launched_by_cluster() -> bool:
  if any(name in os.environ for name in _MULTIHOST_ENV):
    return True
  return int(os.environ.get("SLURM_NTASKS", "1")) > 1


def initialize_distributed(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
) -> None:
  """Calls `jax.distributed.initialize` when there are several processes, else does nothing.

  Explicit arguments win; otherwise jax's cluster auto-detection (SLURM, Open MPI, Cloud TPU with
  `JAX_COORDINATOR_ADDRESS`, ...) fills them in. Must run before anything touches a device.

  Args:
    coordinator_address: "host:port" of process 0, e.g. "10.0.0.1:1234".
    num_processes: the number of processes (hosts) taking part.
    process_id: this process's index in [0, num_processes).
  """
  explicit = coordinator_address is not None
  if not explicit and not _launched_by_cluster():
    return
  if explicit and (num_processes is None or process_id is None):
    raise ValueError(
      "--coordinator_address needs --num_processes and --process_id as well "
      f"(got num_processes={num_processes}, process_id={process_id})"
    )
  jax.distributed.initialize(
    coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
  )
  logging.info(
    "process %d of %d, %d local / %d global devices",
    jax.process_index(),
    jax.process_count(),
    jax.local_device_count(),
    jax.device_count(),
  )


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A one-axis mesh ("data",) over `devices` (default: all devices of all processes).

  The axis is `Auto` (the compiler propagates shardings from the jit's in/out shardings), not jax's newer
  `Explicit` default, under which every op of the model would need sharding-aware inputs.
  """
  devices = jax.devices() if devices is None else list(devices)
  return jax.make_mesh((len(devices),), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,), devices=devices)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over the data axis, the rest replicated."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  """The same full copy on every device (train state, metrics)."""
  return NamedSharding(mesh, PartitionSpec())


def check_batch_size(global_batch_size: int, what: str = "config.train.batch_size") -> None:
  """Raises when a global batch cannot be split evenly over processes and devices."""
  if global_batch_size % jax.device_count():
    raise ValueError(
      f"{what}={global_batch_size} must be a multiple of the number of devices "
      f"({jax.device_count()} over {jax.process_count()} process(es))"
    )


def shard_batch(batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Assembles this process's part of a global batch into global arrays sharded on the data axis.

  Args:
    batch: this process's examples, each array with leading size global_batch / process_count, in process
      order (process p holds the p-th contiguous slice of the global batch).
    mesh: from `make_mesh`.

  Returns:
    Global `jax.Array`s of leading size global_batch, laid out by `batch_sharding(mesh)`.
  """
  sharding = batch_sharding(mesh)
  return {name: jax.make_array_from_process_local_data(sharding, np.asarray(value)) for name, value in batch.items()}


def compile_everywhere(jitted: Any, *args: Any) -> Any:
  """`jitted.lower(*args).compile()`, returning only once every process has compiled it.

  Processes compile at different speeds, and on CPU the first collective of a program gives its peers only
  30 s to join (gloo's context set-up), less than a compile can take on a busy host. Compiling ahead and
  meeting at a barrier of the coordination service (not a collective) removes that race.

  Args:
    jitted: a `jax.jit`-wrapped function.
    *args: its arguments, as arrays or `jax.ShapeDtypeStruct`s with shardings.

  Returns:
    The compiled executable, called like `jitted`.
  """
  compiled = jitted.lower(*args).compile()
  barrier = ocp.multihost.get_barrier_sync_fn()  # a no-op with one process
  barrier(key=f"slnl_jax_compiled_{next(_barrier_ids)}", timeout_ms=_COMPILE_TIMEOUT_S * 1000)
  return compiled
