"""Two processes on 127.0.0.1 (CPU, jax.distributed) train on one global batch, each feeding its half, and
get the single-process result; they also save and restore one shared checkpoint."""

import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np

from slnl_jax import losses, models, sharding, steps

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
NUM_STEPS = 2

WORKER = r"""
import sys
import jax, numpy as np
process_id, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
from slnl_jax import sharding
sharding.initialize_distributed(f"127.0.0.1:{port}", num_processes=2, process_id=process_id)
jax.config.update("jax_compilation_cache_dir", CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
from tests.test_multihost import global_batch, run
from slnl_jax import checkpointing

assert jax.process_count() == 2 and jax.device_count() == 2
batch = global_batch()
local = {name: value[2 * process_id : 2 * process_id + 2] for name, value in batch.items()}
mesh = sharding.make_mesh()
state, history = run(mesh, local)
checkpoints = checkpointing.Checkpointer(f"{out}/checkpoints")
checkpoints.save(state)
checkpoints.wait()
restored = checkpoints.restore(state, int(state.step))
checkpoints.close()
for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored), strict=True):
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
leaves = {f"leaf{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(state))}
metrics = {f"{name}_{i}": value for i, m in enumerate(history) for name, value in m.items()}
np.savez(f"{out}/process{process_id}.npz", **leaves, **metrics)
"""


def tiny_config():
  from configs import demo

  config = demo.get_config()
  config.dataset.num_frames = 8
  config.model.update(num_joints_out=8, num_systems=2, channels=(8, 8), kernel_sizes=(3, 3), num_slnl_blocks=1)
  return config


def global_batch():
  rng = np.random.default_rng(1)
  return {
    "skeleton": rng.normal(size=(4, 2, 8, 25, 3)).astype(np.float32),
    "label": np.array([1, 2, 6, 7], np.int32),
  }


def run(mesh, local_batch):
  """NUM_STEPS train steps on the global batch assembled from every process's `local_batch`."""
  config = tiny_config()
  loss_fn = losses.get_loss_fn(config.loss)
  lr_fn = steps.create_learning_rate_fn(config, 10)
  model = models.create_model(config)
  state = steps.create_train_state(config, model, steps.create_optimizer(config, lr_fn), mesh)
  batch = sharding.shard_batch(local_batch, mesh)
  step = sharding.compile_everywhere(steps.jit_train_step(mesh, loss_fn, lr_fn), state, batch)
  history = []
  for _ in range(NUM_STEPS):
    state, metrics = step(state, batch)
    history.append(jax.device_get(metrics))
  return state, history


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path):
  code = f"CACHE = {str(REPO_ROOT / '.jax_cache')!r}\n" + WORKER
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO_ROOT)}
  env.pop("XLA_FLAGS", None)
  port = str(_free_port())
  workers = [
    subprocess.Popen(
      [sys.executable, "-c", code, str(i), port, str(tmp_path)],
      cwd=REPO_ROOT,
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
    )
    for i in range(2)
  ]
  outputs = []
  try:
    for worker in workers:
      outputs.append(worker.communicate(timeout=600)[0])
  finally:
    for worker in workers:
      if worker.poll() is None:
        worker.kill()
  for i, worker in enumerate(workers):
    assert worker.returncode == 0, f"process {i}:\n{outputs[i][-5000:]}"

  state, history = run(sharding.make_mesh(), global_batch())
  expected = jax.tree.leaves(jax.device_get(state))
  for process in range(2):
    with np.load(tmp_path / f"process{process}.npz") as got:
      for i, leaf in enumerate(expected):
        np.testing.assert_allclose(got[f"leaf{i}"], leaf, rtol=2e-5, atol=2e-6, err_msg=f"leaf {i}")
      for i, metrics in enumerate(history):
        for name, value in metrics.items():
          np.testing.assert_allclose(got[f"{name}_{i}"], value, rtol=2e-5, atol=1e-6, err_msg=name)
