"""Tests of slnl_jax/checkpointing.py: exact round trip, which checkpoints are kept, clear errors, SIGTERM."""

import os
import signal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from slnl_jax import checkpointing, steps


def small_state(seed: int = 0, step: int = 0) -> steps.TrainState:
  """A TrainState of a Dense layer (same structure as the trainer's, cheap to build)."""
  model = nn.Dense(3)
  variables = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, 4)))
  state = steps.TrainState.create(
    apply_fn=model.apply,
    params=variables["params"],
    batch_stats={"mean": jnp.arange(3.0) + seed},
    tx=optax.adam(1e-3),
    rng=jax.random.PRNGKey(seed + 100),
  )
  return state.replace(step=jnp.asarray(step, jnp.int32))


def leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state))]


def test_round_trip_is_exact(tmp_path):
  state = small_state(seed=1, step=7)
  state = state.apply_gradients(grads=jax.tree.map(jnp.ones_like, state.params))  # non-trivial Adam state
  checkpoints = checkpointing.Checkpointer(tmp_path)
  checkpoints.save(state)
  checkpoints.wait()
  restored = checkpoints.restore(small_state(seed=2), 8)
  checkpoints.close()
  assert int(restored.step) == 8
  for a, b in zip(leaves(state), leaves(restored), strict=True):
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)


def test_keeps_the_latest_and_the_best(tmp_path):
  """keep=2, keep_best=1: steps 1-6, eval top-1 at 2 (0.9), 4 (0.5), 6 (0.7) -> 2 (best), 5 and 6 (latest)."""
  checkpoints = checkpointing.Checkpointer(tmp_path, keep=2, keep_best=1)
  top1 = {2: 0.9, 4: 0.5, 6: 0.7}
  for step in range(1, 7):
    metrics = {checkpointing.BEST_METRIC: top1[step]} if step in top1 else None
    checkpoints.save(small_state(step=step), metrics=metrics)
  checkpoints.wait()
  assert checkpoints.latest_step() == 6
  assert checkpoints.best_step() == 2
  checkpoints.close()
  assert sorted(int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()) == [2, 5, 6]


def test_corrupt_checkpoint_is_named(tmp_path):
  checkpoints = checkpointing.Checkpointer(tmp_path)
  checkpoints.save(small_state(step=3))
  checkpoints.wait()
  # Truncate every data file of the saved arrays.
  data_files = [p for p in (tmp_path / "3").rglob("*") if p.is_file() and p.parent.name == "d"]
  assert data_files
  for path in data_files:
    path.write_bytes(b"garbage")
  with pytest.raises(checkpointing.CheckpointError, match=f"cannot restore checkpoint {tmp_path / '3'}"):
    checkpoints.restore(small_state(), 3)
  checkpoints.close()


def test_mismatched_model_is_named(tmp_path):
  checkpoints = checkpointing.Checkpointer(tmp_path)
  checkpoints.save(small_state(step=1))
  checkpoints.wait()
  other = small_state().replace(params={"kernel": jnp.zeros((5, 3))})
  with pytest.raises(checkpointing.CheckpointError, match="different model config"):
    checkpoints.restore(other, 1)
  checkpoints.close()


def test_keep_must_be_positive(tmp_path):
  with pytest.raises(ValueError, match="keep_checkpoints must be >= 1"):
    checkpointing.Checkpointer(tmp_path, keep=0)


def test_sigterm_sets_the_preemption_flag_and_close_restores_the_handler():
  previous = signal.getsignal(signal.SIGTERM)
  watcher = checkpointing.PreemptionWatcher()
  assert not watcher.reached(1)
  os.kill(os.getpid(), signal.SIGTERM)
  assert watcher.reached(2)
  watcher.close()
  assert signal.getsignal(signal.SIGTERM) is previous


# --- Faults: an unwritable or full folder, non-finite states ----------------------------------------


def test_an_unwritable_checkpoint_folder_fails_at_once(tmp_path):
  (tmp_path / "a_file").write_text("not a folder")  # (root ignores read-only modes; this fails for everyone)
  with pytest.raises(checkpointing.CheckpointError, match=f"cannot write to {tmp_path / 'a_file' / 'checkpoints'}"):
    checkpointing.Checkpointer(tmp_path / "a_file" / "checkpoints")


def test_a_failed_save_is_one_error_and_the_earlier_checkpoint_stays(tmp_path):
  import resource

  checkpoints = checkpointing.Checkpointer(tmp_path)
  checkpoints.save(small_state(seed=1, step=1))
  checkpoints.wait()
  soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
  resource.setrlimit(resource.RLIMIT_FSIZE, (100, hard))  # a full disk: writes past 100 bytes fail (EFBIG)
  try:
    with pytest.raises(checkpointing.CheckpointError, match=f"cannot write checkpoint {tmp_path / '2'}") as e:
      checkpoints.save(small_state(step=2))
      checkpoints.wait()
    with pytest.raises(checkpointing.CheckpointError, match="resumes from checkpoint 1"):
      checkpoints.close()  # the disk is still full
  finally:
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
  assert "\n" not in str(e.value) and "File too large" in str(e.value)
  reopened = checkpointing.Checkpointer(tmp_path)
  assert reopened.latest_step() == 1
  for a, b in zip(leaves(small_state(seed=1, step=1)), leaves(reopened.restore(small_state(), 1)), strict=True):
    np.testing.assert_array_equal(a, b)
  reopened.close()


def test_a_non_finite_state_is_never_saved(tmp_path):
  checkpoints = checkpointing.Checkpointer(tmp_path)
  checkpoints.save(small_state(step=1))
  poisoned = small_state(step=2)
  poisoned = poisoned.replace(params=jax.tree.map(lambda x: x.at[0].set(jnp.nan), poisoned.params))
  with pytest.raises(checkpointing.NonFiniteStateError, match=r"step 2: .*NaN/Inf") as e:
    checkpoints.save(poisoned)
  assert f"the last checkpoint is {tmp_path / '1'}" in str(e.value)
  checkpoints.wait()
  assert checkpoints.latest_step() == 1
  checkpoints.close()


def _corrupt(folder):
  data_files = [p for p in folder.rglob("*") if p.is_file() and p.parent.name == "d"]
  assert data_files
  for path in data_files:
    path.write_bytes(b"garbage")


def test_an_unreadable_newest_checkpoint_falls_back_to_the_previous(tmp_path):
  checkpoints = checkpointing.Checkpointer(tmp_path)
  for step in (1, 2, 3):
    checkpoints.save(small_state(seed=step, step=step))
  checkpoints.wait()
  checkpoints.close()
  _corrupt(tmp_path / "3")
  checkpoints = checkpointing.Checkpointer(tmp_path)
  state, step = checkpoints.restore_latest(small_state())
  assert step == 2 and checkpoints.latest_step() == 2
  for a, b in zip(leaves(small_state(seed=2, step=2)), leaves(state), strict=True):
    np.testing.assert_array_equal(a, b)
  assert (tmp_path / "3.unreadable").is_dir() and not (tmp_path / "3").exists()  # kept aside, not deleted
  checkpoints.save(small_state(seed=5, step=3))  # the resumed run writes step 3 again
  checkpoints.wait()
  assert checkpoints.latest_step() == 3
  checkpoints.close()
  for step in (1, 2, 3):
    _corrupt(tmp_path / str(step))
  checkpoints = checkpointing.Checkpointer(tmp_path)
  with pytest.raises(checkpointing.CheckpointError, match=f"cannot restore checkpoint {tmp_path / '3'}"):
    checkpoints.restore_latest(small_state())  # nothing restores: the newest one's error, nothing moved
  assert (tmp_path / "3").is_dir()
  checkpoints.close()
  assert checkpointing.Checkpointer(tmp_path / "empty").restore_latest(small_state())[1] is None
