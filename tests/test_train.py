"""Tests of the training stack (slnl_jax/steps.py, evaluation.py, train.py): optimiser and schedule formulas,
overfitting real data, evaluation counts, bit-exact resume and the NaN stop. A tiny model (T = 8, N' = 8, K = 2,
channels (8, 8)) keeps them quick."""

import functools
import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import tensorflow as tf
from flax import struct

from configs import demo
from slnl_jax import checkpointing, evaluation, inference, input_pipeline, losses, models, sharding, steps, train
from slnl_jax.config_checks import ConfigError
from slnl_jax.data import msr_action3d, synthetic


def tiny_config(**dataset):
  config = demo.get_config()
  config.dataset.num_frames = 8
  config.dataset.update(dataset)
  config.model.num_joints_out = 8
  config.model.num_systems = 2
  config.model.channels = (8, 8)
  config.model.kernel_sizes = (3, 3)
  config.model.num_slnl_blocks = 1
  config.train.batch_size = 4
  config.train.eval_batch_size = 4
  return config


@pytest.fixture(scope="module")
def synthetic_config(tmp_path_factory):
  """The tiny config on a small synthetic NTU-format set built once for this module."""
  root = tmp_path_factory.mktemp("synthetic")
  synthetic.write_dataset(root / "raw", num_clips=32, seed=0, min_frames=10, max_frames=20)
  config = tiny_config(manual_dir=str(root / "raw"), data_dir=str(root / "tfds"))
  config.train.steps_per_epoch = 3
  config.train.num_epochs = 2
  config.train.log_every_steps = 1
  config.train.checkpoint_every_steps = 2
  return config


def test_optimizer_is_adam_on_gradient_plus_l2():
  """Two steps against a hand-written Adam whose gradient includes weight_decay * params."""
  config = tiny_config()
  config.train.learning_rate, config.train.weight_decay = 0.1, 0.5
  tx = steps.create_optimizer(config, lambda step: config.train.learning_rate)
  params = {"w": jnp.array([1.0, -2.0, 0.5])}
  grads = [np.array([0.3, 0.0, -1.0]), np.array([-0.2, 0.4, 0.1])]
  opt_state = tx.init(params)
  p, m, v = np.array([1.0, -2.0, 0.5]), np.zeros(3), np.zeros(3)
  b1, b2, eps = 0.9, 0.999, 1e-8
  for t, g in enumerate(grads, 1):
    updates, opt_state = tx.update({"w": jnp.asarray(g)}, opt_state, params)
    params = optax.apply_updates(params, updates)
    g = g + 0.5 * p  # coupled L2
    m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
    p = p - 0.1 * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
  np.testing.assert_allclose(params["w"], p, rtol=1e-5)


def test_sgd_is_nesterov_momentum_on_gradient_plus_l2():
  """Two steps against a hand-written Nesterov SGD (PyTorch's form) whose gradient includes weight_decay * params."""
  config = tiny_config()
  config.train.optimizer, config.train.momentum = "sgd", 0.9
  config.train.learning_rate, config.train.weight_decay = 0.1, 0.5
  tx = steps.create_optimizer(config, lambda step: config.train.learning_rate)
  params = {"w": jnp.array([1.0, -2.0, 0.5])}
  opt_state = tx.init(params)
  p, buf = np.array([1.0, -2.0, 0.5]), np.zeros(3)
  for g in [np.array([0.3, 0.0, -1.0]), np.array([-0.2, 0.4, 0.1])]:
    updates, opt_state = tx.update({"w": jnp.asarray(g)}, opt_state, params)
    params = optax.apply_updates(params, updates)
    g = g + 0.5 * p
    buf = 0.9 * buf + g
    p = p - 0.1 * (g + 0.9 * buf)
  np.testing.assert_allclose(params["w"], p, rtol=1e-5)


def test_warmup_ramps_the_decayed_rate_over_the_first_epochs():
  config = tiny_config()
  config.train.learning_rate, config.train.lr_decay, config.train.warmup_epochs = 0.1, 0.9, 4
  schedule = steps.create_learning_rate_fn(config, steps_per_epoch=10)
  for step, epoch in [(0, 0), (9, 0), (10, 1), (35, 3), (40, 4), (75, 7)]:
    np.testing.assert_allclose(schedule(step), 0.1 * 0.9**epoch * min(1, (epoch + 1) / 4), rtol=1e-6)


def test_learning_rate_decays_once_per_epoch():
  config = tiny_config()
  config.train.learning_rate, config.train.lr_decay = 1e-3, 0.98
  schedule = steps.create_learning_rate_fn(config, steps_per_epoch=10)
  for step, epoch in [(0, 0), (9, 0), (10, 1), (25, 2), (300, 30)]:
    np.testing.assert_allclose(schedule(step), 1e-3 * 0.98**epoch, rtol=1e-6)


def test_steps_per_epoch_checks_the_split():
  config = tiny_config()
  assert steps.steps_per_epoch(config, 10) == 2  # batch 4, remainder dropped
  config.train.steps_per_epoch = 3
  with pytest.raises(ConfigError, match="steps_per_epoch=3 exceeds the 2 full batches"):
    steps.steps_per_epoch(config, 10)


def _msr_batch(shared_data, config):
  """Four real MSR Action3D clips of four classes, centre-cropped and resized like evaluation."""
  folder = shared_data / "msr_action3d" / "MSRAction3DSkeletonReal3D"
  names = ["a01_s01_e01", "a05_s03_e01", "a10_s05_e02", "a16_s07_e01"]
  clips = [msr_action3d.read_sequence(folder / f"{name}_skeleton3D.txt") for name in names]
  skeleton = np.concatenate([inference.prepare_clip(clip.skeleton, config) for clip in clips])
  return {"skeleton": skeleton, "label": np.array([clip.label for clip in clips], np.int32)}


def test_overfits_a_real_batch(shared_data):
  config = tiny_config(num_classes=20, num_joints=20, num_persons=1)
  config.model.dropout_rate = 0.0
  config.train.weight_decay = 0.0
  config.train.learning_rate = 3e-3
  batch = _msr_batch(shared_data, config)
  assert batch["skeleton"].shape == (4, 1, 8, 20, 3)
  np.testing.assert_array_equal(batch["label"], [0, 4, 9, 15])
  mesh = sharding.make_mesh()
  learning_rate_fn = steps.create_learning_rate_fn(config, 1000)
  model = models.create_model(config)
  state = steps.create_train_state(config, model, steps.create_optimizer(config, learning_rate_fn), mesh)
  step = steps.jit_train_step(mesh, losses.get_loss_fn(config.loss), learning_rate_fn)
  batch = sharding.shard_batch(batch, mesh)
  first = None
  for _ in range(300):
    state, metrics = step(state, batch)
    first = first or float(metrics["loss"])
  assert float(metrics["loss"]) < 0.02 * first
  assert float(metrics["loss"]) < 0.05
  for head in models.HEADS:
    assert float(metrics[f"{head}_top1"]) == 1.0


def _examples(skeletons, labels):
  return tf.data.Dataset.from_tensor_slices(
    {
      "skeleton": skeletons,
      "label": np.asarray(labels, np.int64),
      "num_frames": np.full(len(labels), skeletons.shape[1], np.int32),
    }
  )


@pytest.mark.parametrize(("eval_clips", "eval_heads"), [(1, "concat"), (3, "concat"), (3, "all")])
def test_evaluate_counts_every_example_once(eval_clips, eval_heads):
  """7 examples in batches of 4 (one padded): metrics equal a per-example loop over the model, with the class
  probabilities of each example's crops averaged (eval_clips = 3: ratios 0.5, 0.75, 1.0); the prediction ("top1",
  the confusion matrix) is the concat head's, or for eval_heads "all" the mean of the three heads' probabilities."""
  config = tiny_config(num_classes=8, num_persons=2, num_joints=25)
  config.dataset.train_crop_min = 0.5
  config.dataset.eval_clips = eval_clips
  config.dataset.eval_heads = eval_heads
  rng = np.random.default_rng(0)
  skeletons = rng.normal(size=(7, 12, 2, 25, 3)).astype(np.float32)
  labels = np.array([0, 1, 2, 3, 4, 5, 1])
  mesh = sharding.make_mesh()
  model = models.create_model(config)
  state = steps.create_train_state(config, model, optax.sgd(0.1), mesh)
  loss_fn = losses.get_loss_fn(config.loss)
  ds = input_pipeline.eval_dataset(_examples(skeletons, labels), config=config, global_batch_size=4)
  eval_step = steps.jit_eval_step(mesh, loss_fn, 8, eval_heads)
  result = evaluation.evaluate(eval_step, state, input_pipeline.as_numpy(ds), mesh)

  variables = {"params": state.params, "batch_stats": state.batch_stats}
  expected_confusion = np.zeros((8, 8), int)
  correct = {head: [0, 0] for head in models.HEADS}
  loss_sum = dict.fromkeys(models.HEADS, 0.0)
  # Per crop ratio one unpadded forward pass (evaluation mode: examples do not interact), then a loop per example.
  probabilities = dict.fromkeys(models.HEADS, 0.0)
  for ratio in (0.95,) if eval_clips == 1 else (0.5, 0.75, 1.0):
    single = config.copy_and_resolve_references()
    single.dataset.eval_crop, single.dataset.eval_clips = ratio, 1
    x = np.concatenate([inference.prepare_clip(skeleton, single) for skeleton in skeletons])
    outputs = jax.jit(functools.partial(model.apply, train=False))(variables, x)
    for head in models.HEADS:
      probabilities[head] += np.asarray(jax.nn.softmax(outputs[head], -1)) / eval_clips
  for i, label in enumerate(labels):
    for head in models.HEADS:
      ranking = list(np.argsort(-probabilities[head][i]))
      correct[head][0] += ranking[0] == label
      correct[head][1] += label in ranking[:5]
      # The loss of the averaged prediction: every loss reads its logits through a softmax.
      loss_sum[head] += float(loss_fn(jnp.log(probabilities[head][i : i + 1]), jnp.array([label]))[0])
  if eval_heads == "all":
    prediction = sum(probabilities[head] for head in models.HEADS) / len(models.HEADS)
  else:
    prediction = probabilities["concat"]
  for i, label in enumerate(labels):
    expected_confusion[label, int(np.argmax(prediction[i]))] += 1
  np.testing.assert_array_equal(result.confusion, expected_confusion)
  assert result.metrics["num_examples"] == 7
  for head in models.HEADS:
    assert result.metrics[f"{head}_top1"] == pytest.approx(correct[head][0] / 7)
    assert result.metrics[f"{head}_top5"] == pytest.approx(correct[head][1] / 7)
    assert result.metrics[f"{head}_loss"] == pytest.approx(loss_sum[head] / 7, rel=1e-4)
  assert result.metrics["top1"] == pytest.approx(np.trace(expected_confusion) / 7)
  assert result.metrics["top5"] == pytest.approx(
    np.mean([y in np.argsort(-prediction[i])[:5] for i, y in enumerate(labels)])
  )


def test_moving_averages_follow_the_formula_and_leave_training_alone(shared_data):
  """Three real train steps with ema_decay = 0.5 against a numpy loop of the formula over the steps' weights
  (decay min(0.5, (1 + t) / (10 + t)): 2/11, 3/12, 4/13), and the same weights as a run without averages."""
  config = tiny_config(num_classes=20, num_joints=20, num_persons=1)
  mesh = sharding.make_mesh()
  learning_rate_fn = steps.create_learning_rate_fn(config, 1000)
  batch = sharding.shard_batch(_msr_batch(shared_data, config), mesh)

  def run(ema_decay):
    config.train.ema_decay = ema_decay
    state = steps.initial_state(config, learning_rate_fn, mesh)
    step = steps.jit_train_step(mesh, losses.get_loss_fn(config.loss), learning_rate_fn)
    seen = [jax.device_get({"params": state.params, "batch_stats": state.batch_stats})]
    for _ in range(3):
      state, _ = step(state, batch)
      seen.append(jax.device_get({"params": state.params, "batch_stats": state.batch_stats}))
    return jax.device_get(state), seen

  averaged, seen = run(0.5)
  plain, plain_seen = run(0.0)
  assert not isinstance(plain, steps.AveragedTrainState)
  jax.tree.map(np.testing.assert_array_equal, seen, plain_seen)
  expected = seen[0]
  for t, current in enumerate(seen[1:], 1):
    d = min(0.5, (1 + t) / (10 + t))
    expected = jax.tree.map(lambda a, c, d=d: d * a + (1 - d) * c, expected, current)
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-6, atol=1e-7), averaged.ema, expected)
  pairs = zip(jax.tree.leaves(averaged.ema["params"]), jax.tree.leaves(seen[-1]["params"]), strict=True)
  assert not all(np.allclose(a, b) for a, b in pairs)  # the averages are not the last weights


def test_evaluation_uses_the_moving_averages():
  config = tiny_config()
  mesh = sharding.make_mesh()
  learning_rate_fn = steps.create_learning_rate_fn(config, 1)
  plain = steps.initial_state(config, learning_rate_fn, mesh)
  config.train.ema_decay = 0.9
  averaged = steps.initial_state(config, learning_rate_fn, mesh)  # the same seed: the same params
  shifted = jax.tree.map(lambda x: x + 0.3, averaged.params)
  averaged = averaged.replace(ema={"params": shifted, "batch_stats": averaged.batch_stats})
  rng = np.random.default_rng(0)
  batch = {
    "skeleton": rng.normal(size=(4, 1, *steps.input_shape(config)[1:])).astype(np.float32),
    "label": np.arange(4, dtype=np.int32) % config.dataset.num_classes,
    "mask": np.ones(4, bool),
  }
  evaluate = functools.partial(
    steps.eval_step, loss_fn=losses.get_loss_fn(config.loss), num_classes=config.dataset.num_classes
  )
  with_averages, with_shifted_params = evaluate(averaged, batch), evaluate(plain.replace(params=shifted), batch)
  np.testing.assert_array_equal(with_averages["concat_loss"], with_shifted_params["concat_loss"])
  assert with_averages["concat_loss"] != evaluate(plain, batch)["concat_loss"]


@struct.dataclass
class _OlderTrainState:
  """The pytree fields of `steps.TrainState` before moving averages existed."""

  step: Any
  params: Any
  opt_state: Any
  batch_stats: Any
  rng: Any


def test_a_checkpoint_of_the_layout_before_moving_averages_still_restores(tmp_path):
  """A checkpoint as runs wrote it before `ema_decay` existed (exactly these five entries) restores into today's
  state of a run without averages: resuming or rescoring an older run keeps working (orbax compares the trees)."""
  config = tiny_config()
  state = steps.initial_state(config, steps.create_learning_rate_fn(config, 1), sharding.make_mesh())
  older = _OlderTrainState(
    step=state.step,
    params=jax.tree.map(lambda x: x + 1.0, state.params),
    opt_state=state.opt_state,
    batch_stats=state.batch_stats,
    rng=state.rng,
  )
  checkpoints = checkpointing.Checkpointer(tmp_path / "checkpoints")
  checkpoints.save(older)
  checkpoints.wait()
  restored = checkpoints.restore(state, checkpoints.latest_step())
  checkpoints.close()
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(restored.params), jax.device_get(older.params))


def _final_params(config, workdir):
  checkpoints = checkpointing.Checkpointer(workdir / "checkpoints")
  step = checkpoints.latest_step()
  mesh = sharding.make_mesh()
  target = steps.create_train_state(
    config,
    models.create_model(config),
    steps.create_optimizer(config, steps.create_learning_rate_fn(config, 1)),
    mesh,
  )
  state = checkpoints.restore(target, step)
  checkpoints.close()
  return step, jax.device_get(state)


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_resume_is_bit_exact(synthetic_config, tmp_path, ema_decay):
  """6 steps straight equal 4 steps (stopping mid-epoch 2), a restart, and 2 more; with moving averages too.

  Checkpoint 4 is truncated before the restart (a crash while writing it): the restart moves it aside, resumes
  from checkpoint 2 and logs steps 3-4 again, once each.
  """
  config = synthetic_config.copy_and_resolve_references()
  config.train.ema_decay = ema_decay
  straight = train.train_and_evaluate(config, tmp_path / "straight")
  config_a = config.copy_and_resolve_references()
  config_a.train.max_steps = 4
  train.train_and_evaluate(config_a, tmp_path / "resumed")
  for path in (tmp_path / "resumed" / "checkpoints" / "4").rglob("*"):
    if path.is_file() and path.parent.name == "d":
      path.write_bytes(b"garbage")
  resumed = train.train_and_evaluate(config, tmp_path / "resumed")
  assert (tmp_path / "resumed" / "checkpoints" / "4.unreadable").is_dir()  # kept, not deleted

  step_a, state_a = _final_params(config, tmp_path / "straight")
  step_b, state_b = _final_params(config, tmp_path / "resumed")
  assert step_a == step_b == 6
  assert isinstance(state_a, steps.AveragedTrainState) == (ema_decay > 0)
  for a, b in zip(jax.tree.leaves(state_a), jax.tree.leaves(state_b), strict=True):
    np.testing.assert_array_equal(a, b)
  assert straight == resumed
  # The resumed run logged steps 1-4, then 5-6: nothing repeated, nothing skipped.
  records = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3, 4, 5, 6]
  straight_records = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
  train_losses = [json.loads(line)["loss"] for line in straight_records if '"train"' in line]
  assert train_losses == [r["loss"] for r in records if r["split"] == "train"]


def test_resuming_with_other_settings_is_refused(synthetic_config, tmp_path):
  """A workdir with checkpoints resumes only under the settings it was trained with (but where it stops, how it is
  evaluated and logged); a refusal names each setting with both values and leaves config.json as it was."""
  config = synthetic_config.copy_and_resolve_references()
  config.train.max_steps = 2
  train.train_and_evaluate(config, tmp_path)
  saved = (tmp_path / "config.json").read_text()
  other = config.copy_and_resolve_references()
  other.train.learning_rate = 2e-3
  other.model.channels = (8, 16)
  with pytest.raises(ConfigError) as refused:
    train.train_and_evaluate(other, tmp_path)
  assert "model.channels = [8, 8] there, [8, 16] now; train.learning_rate = 0.001 there, 0.002 now" in str(
    refused.value
  )
  assert (tmp_path / "config.json").read_text() == saved
  longer = config.copy_and_resolve_references()
  longer.train.max_steps, longer.train.num_epochs, longer.dataset.eval_clips = 3, 5, 2
  longer.model.remat = True  # the same function, computed with less memory
  train.train_and_evaluate(longer, tmp_path)
  assert json.loads((tmp_path / "config.json").read_text())["train"]["max_steps"] == 3


def test_evaluating_with_another_model_or_preparation_is_refused(synthetic_config, tmp_path):
  """--mode=eval scores a run's checkpoint only with the model and clip preparation it was trained with; the
  evaluation settings and what only shapes training (loss, optimiser, seed, training-only augmentation) may differ."""
  config = synthetic_config.copy_and_resolve_references()
  config.train.max_steps = 2
  train.train_and_evaluate(config, tmp_path)
  other = config.copy_and_resolve_references()
  other.dataset.minmax_normalize = True
  other.model.dropout_rate = 0.5
  with pytest.raises(ConfigError) as refused:
    train.evaluate_checkpoint(other, tmp_path, "latest")
  assert "(dataset.minmax_normalize = False there, True now; model.dropout_rate = 0.2 there, 0.5 now)" in str(
    refused.value
  )
  allowed = config.copy_and_resolve_references()
  allowed.seed, allowed.loss.margin, allowed.train.learning_rate = 7, 0.1, 0.5
  allowed.dataset.train_tilt_deg, allowed.dataset.eval_clips = 30.0, 2
  assert train.evaluate_checkpoint(allowed, tmp_path, "latest")["num_examples"] > 0
  with_average = config.copy_and_resolve_references()
  with_average.train.ema_decay = 0.9  # other weights than the run has: scored only if the run kept them
  with pytest.raises(ConfigError, match=r"train\.ema_decay = 0\.0 there, 0\.9 now"):
    train.evaluate_checkpoint(with_average, tmp_path, "latest")


def test_mix_with_neighbour_by_hand():
  clips = jnp.array([[0.0], [10.0], [20.0]])
  # 0.25 of clip i + 0.75 of clip i - 1 (clip 0's neighbour is the last).
  np.testing.assert_allclose(steps.mix_with_neighbour(clips, jnp.float32(0.25)), [[15.0], [2.5], [12.5]])


def test_mixup_pairs_each_clip_with_its_neighbours_label():
  """With alpha -> 0 each step's weight is ~0 or ~1: every clip is either itself or its neighbour, with that clip's
  label, a permutation of the batch, which (a mean loss, batch statistics) trains as the batch itself; with alpha
  0.4 the clips are blends and the same steps end elsewhere."""
  config = tiny_config(num_classes=3, num_joints=5, num_persons=1)
  config.model.dropout_rate = 0.0
  # SGD: an update linear in the gradient (Adam's first steps are about lr * sign(g), which would turn float
  # rounding in a near-zero gradient into a full step).
  config.train.optimizer = "sgd"
  mesh = sharding.make_mesh()
  learning_rate_fn = steps.create_learning_rate_fn(config, 10)
  model = models.create_model(config)
  loss_fn = losses.get_loss_fn(config.loss)
  batch = {
    "skeleton": np.random.default_rng(0).normal(size=(4, 1, 8, 5, 3)).astype(np.float32),
    "label": np.array([0, 1, 2, 0], np.int32),
  }

  def params_after_six_steps(alpha):
    state = steps.create_train_state(config, model, steps.create_optimizer(config, learning_rate_fn), mesh)
    step = steps.jit_train_step(mesh, loss_fn, learning_rate_fn, alpha)
    for _ in range(6):
      state, _ = step(state, sharding.shard_batch(batch, mesh))
    return jax.tree.leaves(state.params)

  plain = params_after_six_steps(0.0)
  for got, want in zip(params_after_six_steps(1e-3), plain, strict=True):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
  moved = [np.max(np.abs(got - want)) for got, want in zip(params_after_six_steps(0.4), plain, strict=True)]
  assert max(moved) > 1e-3


@pytest.mark.parametrize("log_every_steps", [1, 100])
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(synthetic_config, tmp_path, monkeypatch, log_every_steps):
  """A NaN in the velocity head's loss at step 5 names step and head; checkpoint 4 stays the latest.

  With logs every 100 steps the metrics stay on device until the epoch ends at step 6: the NaN is still named at
  step 5, and step 6 is not saved.
  """
  config = synthetic_config.copy_and_resolve_references()
  config.train.log_every_steps = log_every_steps

  def poisoned(mesh, loss_fn, learning_rate_fn, mixup_alpha):
    def step(state, batch):
      state, metrics = steps.train_step(state, batch, loss_fn=loss_fn, learning_rate_fn=learning_rate_fn)
      metrics["velocity_loss"] = jnp.where(state.step == 5, jnp.nan, metrics["velocity_loss"])
      return state, metrics

    return jax.jit(step, donate_argnums=(0,))

  monkeypatch.setattr(steps, "jit_train_step", poisoned)
  with pytest.raises(train.NonFiniteLossError, match=r"step 5: the 'velocity' head's loss is nan") as error:
    train.train_and_evaluate(config, tmp_path)
  assert str(tmp_path / "checkpoints" / "4") in str(error.value)
  checkpoints = checkpointing.Checkpointer(tmp_path / "checkpoints")
  assert checkpoints.latest_step() == 4
  checkpoints.close()


def test_load_data_checks_the_class_count(synthetic_config, tmp_path):
  config = synthetic_config.copy_and_resolve_references()
  config.dataset.num_classes = 9
  with pytest.raises(ConfigError, match=r"has 8 classes but config\.dataset\.num_classes is 9"):
    train.load_data(config, tmp_path)


def test_prepare_clip_pads_persons_and_checks_joints():
  config = tiny_config(num_persons=2, num_joints=25, num_channels=3)
  clip = np.arange(5 * 1 * 25 * 3, dtype=np.float32).reshape(5, 1, 25, 3)
  x = inference.prepare_clip(clip, config)
  assert x.shape == (1, 2, 8, 25, 3)
  np.testing.assert_array_equal(x[0, 1], 0.0)  # the absent second person
  # Centre crop of 0.95 * 5 -> 5 frames, resized to 8: first and last frames kept exactly.
  np.testing.assert_array_equal(x[0, 0, 0], clip[0, 0])
  np.testing.assert_array_equal(x[0, 0, -1], clip[-1, 0])
  with pytest.raises(ValueError, match="20 joints x 3 channels but the config's model expects 25 x 3"):
    inference.prepare_clip(np.zeros((5, 1, 20, 3), np.float32), config)


def test_bfloat16_compute_keeps_float32_params_and_loss():
  config = tiny_config(num_classes=8)
  config.dtype = "bfloat16"
  mesh = sharding.make_mesh()
  learning_rate_fn = steps.create_learning_rate_fn(config, 10)
  model = models.create_model(config)
  state = steps.create_train_state(config, model, steps.create_optimizer(config, learning_rate_fn), mesh)
  rng = np.random.default_rng(0)
  batch = {"skeleton": rng.normal(size=(4, 2, 8, 25, 3)).astype(np.float32), "label": np.arange(4, dtype=np.int32)}
  state, metrics = steps.jit_train_step(mesh, losses.get_loss_fn(config.loss), learning_rate_fn)(
    state, sharding.shard_batch(batch, mesh)
  )
  assert {leaf.dtype for leaf in jax.tree.leaves(state.params)} == {jnp.dtype(jnp.float32)}
  assert metrics["loss"].dtype == jnp.float32
  assert np.isfinite(float(metrics["loss"]))
