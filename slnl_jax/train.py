"""Training, evaluation and prediction for SLnL-rFA (Sec. 4.1 of the paper).

The train state is replicated on every device and each global batch is split over the "data" axis of one
device mesh (slnl_jax/sharding.py); `jax.jit` compiles the pure `train_step` / `eval_step` for that layout,
so one CPU, one GPU, a TPU slice and several hosts run the same code. Optimisation follows the paper: Adam
with an L2 penalty added to the gradient (coupled weight decay, as in Adam with `weight_decay`), learning
rate decayed by `lr_decay` after every epoch, and the sum of the three heads' losses (Eq. 17-18).

Everything a resumed run needs is a function of the checkpointed state: the dropout key is
`fold_in(state.rng, state.step)` and the data order is a function of (seed, epoch), so a run stopped at any
step and restarted continues bit-exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tensorflow as tf
from absl import logging
from clu import metric_writers
from flax.training import train_state
from tqdm import tqdm

from slnl_jax import checkpointing, input_pipeline, losses, models, sharding, visualize
from slnl_jax.data import builders, readers

Batch = Mapping[str, jax.Array]
Metrics = dict[str, jax.Array]
HEADS = ("position", "velocity", "concat")


class TrainState(train_state.TrainState):
  """Params, optimiser state and step (from flax), BatchNorm statistics and the run's base PRNG key."""

  batch_stats: Any
  rng: jax.Array


def create_learning_rate_fn(config: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
  """lr * lr_decay ** epoch, constant within an epoch (Sec. 4.1)."""
  return optax.exponential_decay(
    init_value=config.train.learning_rate,
    transition_steps=steps_per_epoch,
    decay_rate=config.train.lr_decay,
    staircase=True,
  )


def create_optimizer(
  config: ml_collections.ConfigDict, learning_rate_fn: optax.Schedule
) -> optax.GradientTransformation:
  """Adam on the gradient plus weight_decay * params (the paper's L2 weight decay, coupled)."""
  return optax.chain(
    optax.add_decayed_weights(config.train.weight_decay),
    optax.scale_by_adam(),
    optax.scale_by_learning_rate(learning_rate_fn),
  )


def input_shape(config: ml_collections.ConfigDict, batch_size: int = 1) -> tuple[int, ...]:
  """(B, M, T, V, C) of the model's input under `config`."""
  data = config.dataset
  return (batch_size, data.num_persons, data.num_frames, data.num_joints, data.num_channels)


def abstract_batch(
  config: ml_collections.ConfigDict, batch_size: int, mesh: jax.sharding.Mesh, *, with_mask: bool = False
) -> dict[str, jax.ShapeDtypeStruct]:
  """Shapes, dtypes and shardings of a global input batch (eval batches carry a "mask"), for compiling."""

  def spec(shape, dtype):
    return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding.batch_sharding(mesh))

  batch = {"skeleton": spec(input_shape(config, batch_size), jnp.float32), "label": spec((batch_size,), jnp.int32)}
  if with_mask:
    batch["mask"] = spec((batch_size,), jnp.bool_)
  return batch


def create_train_state(
  config: ml_collections.ConfigDict,
  model: models.SLnLrFA,
  tx: optax.GradientTransformation,
  mesh: jax.sharding.Mesh,
) -> TrainState:
  """Initialises the model from `config.seed`, directly replicated over `mesh`."""

  def init(rng: jax.Array) -> TrainState:
    params_rng, dropout_rng, state_rng = jax.random.split(rng, 3)
    x = jnp.zeros(input_shape(config), jnp.float32)
    variables = model.init({"params": params_rng, "dropout": dropout_rng}, x, train=False)
    return TrainState.create(
      apply_fn=model.apply,
      params=variables["params"],
      batch_stats=variables.get("batch_stats", {}),
      tx=tx,
      rng=state_rng,
    )

  # A raw uint32 key (not a typed key array) so that orbax saves it like any other array.
  return jax.jit(init, out_shardings=sharding.replicated(mesh))(jax.random.PRNGKey(config.seed))


def train_step(
  state: TrainState,
  batch: Batch,
  *,
  loss_fn: losses.LossFn,
  learning_rate_fn: optax.Schedule,
) -> tuple[TrainState, Metrics]:
  """One optimiser step on a global batch; metrics are means over the whole batch.

  Returns:
    The new state and {"loss" (the sum), "<head>_loss", "<head>_top1" for each head, "grad_norm", "learning_rate"}.
  """
  dropout_rng = jax.random.fold_in(state.rng, state.step)

  def compute_loss(params):
    outputs, updates = state.apply_fn(
      {"params": params, "batch_stats": state.batch_stats},
      batch["skeleton"],
      train=True,
      rngs={"dropout": dropout_rng},
      mutable=["batch_stats"],
    )
    total, per_head = losses.multitask_loss(outputs, batch["label"], loss_fn)
    return total, (outputs, per_head, updates["batch_stats"])

  grads, (outputs, per_head, batch_stats) = jax.grad(compute_loss, has_aux=True)(state.params)
  new_state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  metrics = {
    "loss": sum(per_head.values()),
    "grad_norm": optax.global_norm(grads),
    "learning_rate": learning_rate_fn(state.step),
  }
  for head, logits in outputs.items():
    metrics[f"{head}_loss"] = per_head[head]
    metrics[f"{head}_top1"] = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
  return new_state, metrics


def eval_step(state: TrainState, batch: Batch, *, loss_fn: losses.LossFn, num_classes: int) -> Metrics:
  """Sums over the real (mask True) examples of a padded batch, to be added up over the eval split.

  Returns:
    {"count", "<head>_loss" (sum), "<head>_top1", "<head>_top5" (numbers correct), "confusion" (K, K) counts
    of (true label, concat-head prediction)}.
  """
  outputs = state.apply_fn({"params": state.params, "batch_stats": state.batch_stats}, batch["skeleton"], train=False)
  labels, mask = batch["label"], batch["mask"]
  sums = {"count": jnp.sum(mask, dtype=jnp.int32)}
  for head, logits in outputs.items():
    _, top_k = jax.lax.top_k(logits, min(5, num_classes))
    top1 = jnp.argmax(logits, -1) == labels
    top5 = jnp.any(top_k == labels[:, None], axis=-1)
    sums[f"{head}_loss"] = jnp.sum(jnp.where(mask, loss_fn(logits, labels), 0.0))
    sums[f"{head}_top1"] = jnp.sum(top1 & mask, dtype=jnp.int32)
    sums[f"{head}_top5"] = jnp.sum(top5 & mask, dtype=jnp.int32)
  predictions = jnp.argmax(outputs["concat"], -1)
  sums["confusion"] = (
    jnp.zeros((num_classes, num_classes), jnp.int32).at[labels, predictions].add(mask.astype(jnp.int32))
  )
  return sums


def jit_train_step(
  mesh: jax.sharding.Mesh, loss_fn: losses.LossFn, learning_rate_fn: optax.Schedule
) -> Callable[[TrainState, Batch], tuple[TrainState, Metrics]]:
  """`train_step` compiled for a batch split over the data axis and a replicated, donated state."""
  return jax.jit(
    functools.partial(train_step, loss_fn=loss_fn, learning_rate_fn=learning_rate_fn),
    in_shardings=(sharding.replicated(mesh), sharding.batch_sharding(mesh)),
    out_shardings=(sharding.replicated(mesh), sharding.replicated(mesh)),
    donate_argnums=(0,),
  )


def jit_eval_step(
  mesh: jax.sharding.Mesh, loss_fn: losses.LossFn, num_classes: int
) -> Callable[[TrainState, Batch], Metrics]:
  """`eval_step` compiled for a batch split over the data axis; the sums come back replicated."""
  return jax.jit(
    functools.partial(eval_step, loss_fn=loss_fn, num_classes=num_classes),
    in_shardings=(sharding.replicated(mesh), sharding.batch_sharding(mesh)),
    out_shardings=sharding.replicated(mesh),
  )


def _compile_eval_step(
  config: ml_collections.ConfigDict, state: TrainState, mesh: jax.sharding.Mesh
) -> Callable[[TrainState, Batch], Metrics]:
  jitted = jit_eval_step(mesh, losses.get_loss_fn(config.loss), config.dataset.num_classes)
  batch = abstract_batch(config, config.train.eval_batch_size, mesh, with_mask=True)
  return sharding.compile_everywhere(jitted, state, batch)


@dataclasses.dataclass(frozen=True)
class EvalResult:
  """Metrics over a whole eval split (each example counted once) and the concat head's confusion matrix."""

  metrics: dict[str, float]
  confusion: np.ndarray  # (K, K) int: rows = true class, columns = predicted class


def evaluate(
  eval_step_fn: Callable[[TrainState, Batch], Metrics],
  state: TrainState,
  batches: Iterable[Mapping[str, np.ndarray]],
  mesh: jax.sharding.Mesh,
) -> EvalResult:
  """Runs `eval_step_fn` over every batch and turns the sums into top-1 / top-5 / mean loss per head."""
  totals = None
  for batch in batches:
    sums = jax.device_get(eval_step_fn(state, sharding.shard_batch(batch, mesh)))
    totals = sums if totals is None else jax.tree.map(np.add, totals, sums)
  if totals is None or totals["count"] == 0:
    raise ValueError("the evaluation split yielded no examples")
  count = int(totals["count"])
  metrics = {"num_examples": float(count)}
  for head in HEADS:
    for name in ("loss", "top1", "top5"):
      metrics[f"{head}_{name}"] = float(totals[f"{head}_{name}"]) / count
  # The summed loss, as in training, and the model's prediction (the concat head) under short names.
  metrics["loss"] = sum(metrics[f"{head}_loss"] for head in HEADS)
  metrics["top1"], metrics["top5"] = metrics["concat_top1"], metrics["concat_top5"]
  return EvalResult(metrics=metrics, confusion=np.asarray(totals["confusion"]))


def save_eval_artifacts(result: EvalResult, class_names: list[str], out_dir: pathlib.Path) -> None:
  """Writes confusion_matrix.{npy,png} and per_class_accuracy.npy into `out_dir`."""
  out_dir.mkdir(parents=True, exist_ok=True)
  np.save(out_dir / "confusion_matrix.npy", result.confusion)
  np.save(out_dir / "per_class_accuracy.npy", visualize.per_class_accuracy(result.confusion))
  visualize.plot_confusion_matrix(result.confusion, class_names, out_dir / "confusion_matrix.png")


class MetricsLog:
  """TensorBoard scalars (clu) and `workdir/metrics.jsonl`; only process 0 writes.

  Each line of metrics.jsonl is one flat JSON object: {"step", "epoch", "split": "train" | "eval", and the
  metrics by name}, e.g. "loss", "concat_top1"; eval lines also carry "top1" / "top5" of the concat head.
  """

  def __init__(self, workdir: pathlib.Path):
    self._primary = jax.process_index() == 0
    self._writer = metric_writers.create_default_writer(
      str(workdir), just_logging=not self._primary, asynchronous=False
    )
    self._path = workdir / "metrics.jsonl"

  def write(self, step: int, epoch: int, split: str, metrics: Mapping[str, float]) -> None:
    metrics = {name: float(value) for name, value in metrics.items()}
    self._writer.write_scalars(step, {f"{split}/{name}": value for name, value in metrics.items()})
    if self._primary:
      record = {"step": step, "epoch": epoch, "split": split, **metrics}
      with self._path.open("a") as f:
        f.write(json.dumps(record) + "\n")

  def close(self) -> None:
    self._writer.flush()
    self._writer.close()


@dataclasses.dataclass(frozen=True)
class Data:
  """The TFDS splits of `config.dataset` (unbatched, in a fixed order) and their metadata."""

  train: tf.data.Dataset
  test: tf.data.Dataset
  num_train: int
  class_names: list[str]


def load_data(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Data:
  """Builds (once) and opens the dataset named by `config.dataset`.

  An empty `config.dataset.data_dir` means `workdir/tfds`; an empty `manual_dir` is passed on as None
  (the synthetic builder then writes its own files).
  """
  data = config.dataset
  builder = builders.build(
    data.name,
    manual_dir=os.path.expanduser(data.manual_dir) if data.manual_dir else None,
    data_dir=os.path.expanduser(data.data_dir) if data.data_dir else os.fspath(workdir / "tfds"),
  )
  class_names = list(builder.info.features["label"].names)
  if len(class_names) != data.num_classes:
    raise ValueError(
      f"dataset {data.name!r} has {len(class_names)} classes but config.dataset.num_classes is {data.num_classes}"
    )
  return Data(
    train=builder.as_dataset(split="train", shuffle_files=False),
    test=builder.as_dataset(split="test", shuffle_files=False),
    num_train=builder.info.splits["train"].num_examples,
    class_names=class_names,
  )


def steps_per_epoch(config: ml_collections.ConfigDict, num_train: int) -> int:
  """Full global batches in the train split, or `config.train.steps_per_epoch` when set (must be <=)."""
  available = num_train // config.train.batch_size
  if available == 0:
    raise ValueError(
      f"the train split has {num_train} examples, fewer than config.train.batch_size={config.train.batch_size}"
    )
  requested = config.train.steps_per_epoch
  if requested <= 0:
    return available
  if requested > available:
    raise ValueError(
      f"config.train.steps_per_epoch={requested} exceeds the {available} full batches of the train "
      f"split ({num_train} examples, batch {config.train.batch_size})"
    )
  return requested


def last_epoch(step: int, steps_per_epoch: int) -> int:
  """The 0-based epoch whose steps include `step` (the epoch that a checkpoint at `step` finished or is in)."""
  return max(step - 1, 0) // steps_per_epoch


class NonFiniteLossError(FloatingPointError):
  """A training loss became NaN or Inf; the message names the step and the head."""


def _check_finite(metrics: Mapping[str, Any], step: int, checkpoint: str) -> None:
  """Raises unless every head's loss and the gradient (hence the new parameters) are finite."""
  problems = [
    f"the {head!r} head's loss is {loss}" for head in HEADS if not np.isfinite(loss := float(metrics[f"{head}_loss"]))
  ]
  if not np.isfinite(metrics["grad_norm"]):
    problems.append(f"the gradient norm is {float(metrics['grad_norm'])}")
  if problems:
    raise NonFiniteLossError(
      f"non-finite training loss at step {step}: {'; '.join(problems)}. Training stopped without "
      f"saving this step; {checkpoint}. Lower config.train.learning_rate, or use config.dtype='float32'."
    )


@dataclasses.dataclass
class _Mean:
  """Running mean of per-step metric dicts between two log lines."""

  sums: dict[str, float] = dataclasses.field(default_factory=dict)
  count: int = 0

  def add(self, metrics: Mapping[str, Any]) -> None:
    for name, value in metrics.items():
      self.sums[name] = self.sums.get(name, 0.0) + float(value)
    self.count += 1

  def pop(self) -> dict[str, float]:
    means = {name: total / self.count for name, total in self.sums.items()}
    self.sums, self.count = {}, 0
    return means


def _initial_state(
  config: ml_collections.ConfigDict, learning_rate_fn: optax.Schedule, mesh: jax.sharding.Mesh
) -> TrainState:
  model = models.create_model(config)
  return create_train_state(config, model, create_optimizer(config, learning_rate_fn), mesh)


def _checkpointer(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> checkpointing.Checkpointer:
  return checkpointing.Checkpointer(
    workdir / "checkpoints",
    keep=config.train.keep_checkpoints,
    keep_best=config.train.keep_best_checkpoints,
  )


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> dict[str, float]:
  """Trains (resuming from the latest checkpoint in `workdir`), evaluating after every eval epoch.

  Writes `workdir/checkpoints/<step>`, `metrics.jsonl`, TensorBoard events, `config.json` and `eval/`
  (confusion matrix, per-class accuracy). Stops early, after saving, on SIGTERM.

  Returns:
    The last evaluation's metrics ({} when preempted).

  Raises:
    NonFiniteLossError: a head's loss became NaN/Inf (the last good checkpoint is kept).
    checkpointing.CheckpointError: the latest checkpoint cannot be restored.
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  if jax.process_index() == 0:
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")
  sharding.check_batch_size(config.train.batch_size)
  sharding.check_batch_size(config.train.eval_batch_size, "config.train.eval_batch_size")
  mesh = sharding.make_mesh()
  data = load_data(config, workdir)
  spe = steps_per_epoch(config, data.num_train)
  learning_rate_fn = create_learning_rate_fn(config, spe)
  state = _initial_state(config, learning_rate_fn, mesh)
  loss_fn = losses.get_loss_fn(config.loss)
  p_train_step = sharding.compile_everywhere(
    jit_train_step(mesh, loss_fn, learning_rate_fn), state, abstract_batch(config, config.train.batch_size, mesh)
  )
  p_eval_step = _compile_eval_step(config, state, mesh)

  total_steps = config.train.num_epochs * spe
  if config.train.max_steps > 0:
    total_steps = min(total_steps, config.train.max_steps)
  checkpoints = _checkpointer(config, workdir)
  latest = checkpoints.latest_step()
  if latest is not None:
    state = checkpoints.restore(state, latest)
    logging.info("resumed from %s", checkpoints.directory / str(latest))
  step = int(jax.device_get(state.step))
  logging.info(
    "%d devices, %d steps per epoch of %d examples, %d steps to go",
    jax.device_count(),
    spe,
    config.train.batch_size,
    max(total_steps - step, 0),
  )
  log = MetricsLog(workdir)
  preemption = checkpointing.PreemptionWatcher()
  eval_metrics: dict[str, float] = {}
  try:
    if step >= total_steps:  # already trained: report the final model again
      logging.info("training already finished at step %d", step)
      epoch = last_epoch(step, spe)
      eval_metrics = _evaluate_and_log(config, p_eval_step, state, data, mesh, workdir, log, step, epoch)
    while step < total_steps:
      epoch, done_in_epoch = divmod(step, spe)
      epoch_steps = min(spe, total_steps - epoch * spe)
      ds = input_pipeline.train_dataset(
        data.train,
        config=config,
        global_batch_size=config.train.batch_size,
        seed=config.seed,
        epoch=epoch,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
      )
      ds = ds.take(epoch_steps).skip(done_in_epoch)
      running = _Mean()
      with tqdm(
        total=epoch_steps,
        initial=done_in_epoch,
        desc=f"epoch {epoch + 1}/{config.train.num_epochs}",
        disable=jax.process_index() != 0,
        unit="step",
      ) as bar:
        for batch in input_pipeline.as_numpy(ds):
          state, metrics = p_train_step(state, sharding.shard_batch(batch, mesh))
          metrics = jax.device_get(metrics)
          step += 1
          last = checkpoints.latest_step()
          _check_finite(
            metrics,
            step,
            f"the last good checkpoint is {checkpoints.directory / str(last)}"
            if last is not None
            else "no checkpoint was saved yet",
          )
          running.add(metrics)
          bar.update()
          bar.set_postfix(loss=f"{float(metrics['loss']):.4f}")
          epoch_end = step == epoch * spe + epoch_steps
          if step % config.train.log_every_steps == 0 or epoch_end:
            log.write(step, epoch, "train", running.pop())
          if epoch_end:
            break
          if preemption.reached(step):
            checkpoints.save(state)
            logging.warning("preempted: saved step %d; run the same command again to resume", step)
            return {}
          if step % config.train.checkpoint_every_steps == 0:
            checkpoints.save(state)
      if step != epoch * spe + epoch_steps:
        raise RuntimeError(
          f"epoch {epoch} of the train split ended after step {step}, expected {epoch * spe + epoch_steps}"
        )

      epochs_done = epoch + 1
      if epochs_done % config.train.eval_every_epochs == 0 or step == total_steps:
        eval_metrics = _evaluate_and_log(config, p_eval_step, state, data, mesh, workdir, log, step, epoch)
        checkpoints.save(state, metrics={checkpointing.BEST_METRIC: eval_metrics["concat_top1"]})
      else:
        checkpoints.save(state)
      if preemption.reached(step):
        logging.warning("preempted: saved step %d; run the same command again to resume", step)
        return {}
  finally:
    checkpoints.wait()
    checkpoints.close()
    preemption.close()
    log.close()
  return eval_metrics


def _evaluate_and_log(
  config: ml_collections.ConfigDict,
  p_eval_step: Callable[[TrainState, Batch], Metrics],
  state: TrainState,
  data: Data,
  mesh: jax.sharding.Mesh,
  workdir: pathlib.Path,
  log: MetricsLog,
  step: int,
  epoch: int,
) -> dict[str, float]:
  start = time.perf_counter()
  batches = input_pipeline.eval_dataset(
    data.test,
    config=config,
    global_batch_size=config.train.eval_batch_size,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
  )
  result = evaluate(p_eval_step, state, input_pipeline.as_numpy(batches), mesh)
  log.write(step, epoch, "eval", result.metrics)
  if jax.process_index() == 0:
    save_eval_artifacts(result, data.class_names, workdir / "eval")
  m = result.metrics
  logging.info(
    "step %d eval on %d examples (%.1fs): top-1 %.2f%% top-5 %.2f%% (concat head); position %.2f%%, velocity %.2f%%",
    step,
    int(m["num_examples"]),
    time.perf_counter() - start,
    100 * m["concat_top1"],
    100 * m["concat_top5"],
    100 * m["position_top1"],
    100 * m["velocity_top1"],
  )
  return result.metrics


def restore_for_inference(
  config: ml_collections.ConfigDict, workdir: str | os.PathLike, checkpoint: str, mesh: jax.sharding.Mesh
) -> TrainState:
  """The train state of checkpoint "best" | "latest" | "<step>" of `workdir` (the schedule does not matter here)."""
  workdir = pathlib.Path(workdir)
  state = _initial_state(config, create_learning_rate_fn(config, 1), mesh)
  checkpoints = _checkpointer(config, workdir)
  try:
    if checkpoint == "best":
      step = checkpoints.best_step()
    elif checkpoint == "latest":
      step = checkpoints.latest_step()
    elif checkpoint.isdigit():
      step = int(checkpoint)
    else:
      raise ValueError(f"--checkpoint must be 'best', 'latest' or a step number, got {checkpoint!r}")
    if step is None:
      raise checkpointing.CheckpointError(f"no checkpoint in {checkpoints.directory}: train first")
    logging.info("restoring %s", checkpoints.directory / str(step))
    return checkpoints.restore(state, step)
  finally:
    checkpoints.close()


def evaluate_checkpoint(
  config: ml_collections.ConfigDict, workdir: str | os.PathLike, checkpoint: str = "best"
) -> dict[str, float]:
  """Evaluates checkpoint "best" | "latest" | "<step>" of `workdir` on the test split (--mode=eval)."""
  workdir = pathlib.Path(workdir)
  sharding.check_batch_size(config.train.eval_batch_size, "config.train.eval_batch_size")
  mesh = sharding.make_mesh()
  data = load_data(config, workdir)
  state = restore_for_inference(config, workdir, checkpoint, mesh)
  p_eval_step = _compile_eval_step(config, state, mesh)
  step = int(jax.device_get(state.step))
  epoch = last_epoch(step, steps_per_epoch(config, data.num_train))
  log = MetricsLog(workdir)
  try:
    return _evaluate_and_log(config, p_eval_step, state, data, mesh, workdir, log, step, epoch)
  finally:
    log.close()


def prepare_clip(skeleton: np.ndarray, config: ml_collections.ConfigDict) -> np.ndarray:
  """One clip (T, M, V, C) -> the model's (1, M', T', V, C) input, exactly as evaluation prepares it.

  Centred crop (ratio `config.dataset.eval_crop`) resized to T' frames; persons zero-padded or cut to M'.
  """
  data = config.dataset
  num_frames, num_persons, joints, channels = skeleton.shape
  if (joints, channels) != (data.num_joints, data.num_channels):
    raise ValueError(
      f"the clip has {joints} joints x {channels} channels but the config's model expects "
      f"{data.num_joints} x {data.num_channels}"
    )
  skeleton = skeleton[:, : data.num_persons]
  if num_persons < data.num_persons:
    skeleton = np.pad(skeleton, ((0, 0), (0, data.num_persons - num_persons), (0, 0), (0, 0)))
  clip = input_pipeline.crop_and_resize(
    skeleton, num_frames, out_frames=data.num_frames, ratio=data.eval_crop, offset_fraction=0.5
  )
  return np.asarray(clip).transpose(1, 0, 2, 3)[None]


def predict(
  config: ml_collections.ConfigDict,
  workdir: str | os.PathLike,
  path: str | os.PathLike,
  checkpoint: str = "best",
  top_k: int = 5,
) -> list[tuple[str, float]]:
  """The `top_k` (class name, probability) of the concat head for one raw skeleton file (--mode=predict)."""
  workdir = pathlib.Path(workdir)
  clip = readers.read_file(path)
  try:
    x = prepare_clip(clip.skeleton, config)
  except ValueError as e:
    raise ValueError(f"{path}: {e}") from e
  data = load_data(config, workdir)
  mesh = sharding.make_mesh()
  state = restore_for_inference(config, workdir, checkpoint, mesh)
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  logits = jax.jit(functools.partial(state.apply_fn, train=False))(variables, x)["concat"]
  probabilities = np.asarray(jax.nn.softmax(logits[0]))
  best = np.argsort(-probabilities, kind="stable")[:top_k]
  return [(data.class_names[i], float(probabilities[i])) for i in best]
