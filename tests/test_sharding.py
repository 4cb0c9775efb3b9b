"""Tests of slnl_jax/sharding.py: the batch is split over every device and the sharded step equals the
single-device step (2 forced CPU devices, in a subprocess since XLA_FLAGS must precede jax's start)."""

import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from slnl_jax import sharding

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

TWO_DEVICES = r"""
import jax, numpy as np
jax.config.update("jax_compilation_cache_dir", CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
from jax.sharding import Mesh
from configs import demo
from slnl_jax import losses, models, sharding, steps

assert jax.device_count() == 2, jax.devices()
config = demo.get_config()
config.dataset.num_frames = 8
config.model.update(num_joints_out=8, num_systems=2, channels=(8, 8), kernel_sizes=(3, 3), num_slnl_blocks=1)
rng = np.random.default_rng(0)
batch = {
    "skeleton": rng.normal(size=(4, 2, 8, 25, 3)).astype(np.float32),
    "label": np.array([0, 3, 5, 7], np.int32),
}
loss_fn = losses.get_loss_fn(config.loss)
lr_fn = steps.create_learning_rate_fn(config, 10)

def run(mesh):
  model = models.create_model(config)
  state = steps.create_train_state(config, model, steps.create_optimizer(config, lr_fn), mesh)
  step = steps.jit_train_step(mesh, loss_fn, lr_fn)
  sharded = sharding.shard_batch(batch, mesh)
  history = []
  for _ in range(2):
    state, metrics = step(state, sharded)
    history.append(jax.device_get(metrics))
  # An evaluation batch: one view per clip (B, S = 1, M, T, V, C), the last clip padding.
  evaluation = {**batch, "skeleton": batch["skeleton"][:, None], "mask": np.array([1, 1, 1, 0], bool)}
  masked = sharding.shard_batch(evaluation, mesh)
  sums = steps.jit_eval_step(mesh, loss_fn, 8)(state, masked)
  return sharded, jax.device_get(state), history, jax.device_get(sums)

two = sharding.make_mesh()
one = Mesh(np.array(jax.devices()[:1]), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
sharded, state2, history2, sums2 = run(two)
# Each device holds its own half of the batch.
shards = sorted(sharded["skeleton"].addressable_shards, key=lambda s: s.device.id)
assert [s.data.shape[0] for s in shards] == [2, 2], [s.data.shape for s in shards]
np.testing.assert_array_equal(np.asarray(shards[1].data), batch["skeleton"][2:])
_, state1, history1, sums1 = run(one)
for a, b in zip(jax.tree.leaves(state2), jax.tree.leaves(state1), strict=True):
  np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
for m2, m1 in zip(history2, history1, strict=True):
  for name in m1:
    np.testing.assert_allclose(m2[name], m1[name], rtol=2e-5, atol=1e-6, err_msg=name)
for name in sums1:
  np.testing.assert_allclose(sums2[name], sums1[name], rtol=2e-5, err_msg=name)
assert int(sums2["count"]) == 3
print("OK")
"""


def test_sharded_step_equals_single_device_step():
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
  code = f"CACHE = {str(REPO_ROOT / '.jax_cache')!r}\n" + TWO_DEVICES
  result = subprocess.run(
    [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
  )
  assert result.returncode == 0, result.stderr[-5000:]
  assert result.stdout.strip().endswith("OK")


def test_shard_batch_keeps_the_values():
  mesh = sharding.make_mesh()
  batch = {"skeleton": np.arange(24, dtype=np.float32).reshape(4, 6), "label": np.arange(4, dtype=np.int32)}
  out = sharding.shard_batch(batch, mesh)
  assert out["skeleton"].sharding == sharding.batch_sharding(mesh)
  np.testing.assert_array_equal(out["skeleton"], batch["skeleton"])
  np.testing.assert_array_equal(out["label"], batch["label"])


def test_batch_size_must_split_over_devices(monkeypatch):
  monkeypatch.setattr(jax, "device_count", lambda: 8)
  sharding.check_batch_size(16)
  with pytest.raises(ValueError, match=r"config\.train\.batch_size=12 must be a multiple of the number of devices \(8"):
    sharding.check_batch_size(12)


def test_single_process_needs_no_distributed_setup(monkeypatch):
  for name in ("JAX_COORDINATOR_ADDRESS", "OMPI_MCA_orte_hnp_uri", "SLURM_NTASKS"):
    monkeypatch.delenv(name, raising=False)
  called = []
  monkeypatch.setattr(jax.distributed, "initialize", lambda **kwargs: called.append(kwargs))
  sharding.initialize_distributed()
  assert not called
  monkeypatch.setenv("SLURM_NTASKS", "4")
  sharding.initialize_distributed()
  assert called == [{"coordinator_address": None, "num_processes": None, "process_id": None}]
  with pytest.raises(ValueError, match="needs --num_processes and --process_id"):
    sharding.initialize_distributed("127.0.0.1:1234", num_processes=2)
