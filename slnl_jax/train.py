"""The training loop of SLnL-rFA (Sec. 4.1 of the paper): `train_and_evaluate(config, workdir)`.

The pieces live one floor down: the state, optimiser and jitted steps in slnl_jax/steps.py, evaluation and
the metrics log in slnl_jax/evaluation.py. This module opens the dataset, runs the epochs, checkpoints,
evaluates, and stops on a non-finite loss or on preemption.

Everything a resumed run needs is a function of the checkpointed state: the dropout key is
`fold_in(state.rng, state.step)` and the data order is a function of (seed, epoch), so a run stopped at any
step and restarted continues bit-exactly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging
from tqdm import tqdm

from slnl_jax import checkpointing, config_checks, evaluation, input_pipeline, losses, models, sharding, steps
from slnl_jax.data import builders
from slnl_jax.data.errors import SkeletonFormatError


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
    raise config_checks.ConfigError(
      f"dataset {data.name!r} has {len(class_names)} classes but config.dataset.num_classes is {data.num_classes}"
    )
  return Data(
    train=builder.as_dataset(split="train", shuffle_files=False),
    test=builder.as_dataset(split="test", shuffle_files=False),
    num_train=builder.info.splits["train"].num_examples,
    class_names=class_names,
  )


class NonFiniteLossError(FloatingPointError):
  """A training loss became NaN or Inf; the message names the step and the head."""


def _check_finite(metrics: Mapping[str, Any], step: int, checkpoints: checkpointing.Checkpointer) -> None:
  """Raises unless every head's loss and the gradient (hence the new parameters) are finite."""
  problems = [
    f"the {head!r} head's loss is {loss}"
    for head in models.HEADS
    if not np.isfinite(loss := float(metrics[f"{head}_loss"]))
  ]
  if not np.isfinite(metrics["grad_norm"]):
    problems.append(f"the gradient norm is {float(metrics['grad_norm'])}")
  if problems:
    last = checkpoints.latest_step()
    where = f"the last good checkpoint is {checkpoints.directory / str(last)}" if last is not None else None
    raise NonFiniteLossError(
      f"non-finite training loss at step {step}: {'; '.join(problems)}. Training stopped without "
      f"saving this step; {where or 'no checkpoint was saved yet'}. Lower config.train.learning_rate, or use "
      "config.dtype='float32' (to go on from that checkpoint with them, move the workdir's config.json aside)."
    )


# Errors whose message says all (the file, key, step or head): the command-line tools that train or evaluate
# print them as one `error:` line instead of a traceback.
USER_ERRORS: tuple[type[Exception], ...] = (
  checkpointing.CheckpointError,
  checkpointing.NonFiniteStateError,
  SkeletonFormatError,
  config_checks.ConfigError,
  NonFiniteLossError,
  builders.StaleBuildError,
  builders.UnknownDatasetError,
  builders.DataNotFoundError,
)


class _TrainMetrics:
  """The train metrics of one log interval: kept on device after each step, fetched in one transfer when logged.

  Fetching only at log steps and before a checkpoint keeps the host from waiting on the device every step; the
  fetched per-step values still name the first non-finite step exactly, and no non-finite state is ever saved.
  """

  def __init__(self, checkpoints: checkpointing.Checkpointer):
    self._checkpoints = checkpoints
    self._pending: list[tuple[int, steps.Metrics]] = []
    self._sums: dict[str, float] = {}
    self._count = 0

  def add(self, step: int, metrics: steps.Metrics) -> None:
    self._pending.append((step, metrics))

  def check(self) -> None:
    """Fetches the pending steps' metrics; raises NonFiniteLossError at the first step with a non-finite loss."""
    fetched = jax.device_get([metrics for _, metrics in self._pending])
    for (step, _), metrics in zip(self._pending, fetched, strict=True):
      _check_finite(metrics, step, self._checkpoints)
      for name, value in metrics.items():
        self._sums[name] = self._sums.get(name, 0.0) + float(value)
      self._count += 1
    self._pending = []

  def pop_means(self) -> dict[str, float]:
    """The interval's mean of each metric; starts the next interval."""
    self.check()
    means = {name: total / self._count for name, total in self._sums.items()}
    self._sums, self._count = {}, 0
    return means


def create_checkpointer(
  config: ml_collections.ConfigDict, workdir: pathlib.Path, class_names: Sequence[str] | None = None
) -> checkpointing.Checkpointer:
  """The checkpoint manager of `workdir/checkpoints` with `config.train`'s retention.

  With `class_names`, every checkpoint also stores the config and the class names, all that
  slnl_jax/inference.py needs besides the weights.
  """
  info = None
  if class_names is not None:
    info = {"config": json.loads(config.to_json_best_effort()), "class_names": list(class_names)}
  return checkpointing.Checkpointer(
    checkpointing.directory_of(workdir),
    keep=config.train.keep_checkpoints,
    keep_best=config.train.keep_best_checkpoints,
    model_info=info,
  )


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> dict[str, float]:
  """Trains (resuming from the latest checkpoint in `workdir`), evaluating after every eval epoch.

  Writes `workdir/checkpoints/<step>`, `metrics.jsonl`, TensorBoard events, `config.json` and `eval/`
  (confusion matrix, per-class accuracy). Stops early, after saving, on SIGTERM.

  Returns:
    The last evaluation's metrics ({} when preempted).

  Raises:
    NonFiniteLossError: a head's loss became NaN/Inf (the last good checkpoint is kept).
    checkpointing.CheckpointError: no checkpoint can be restored (an unreadable newest one is moved aside,
      with a warning, and the previous one resumed).
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  if checkpointing.saved_steps(checkpointing.directory_of(workdir)):
    config_checks.check_resumable(config, workdir)
  if jax.process_index() == 0:
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")
  sharding.check_batch_size(config.train.batch_size)
  sharding.check_batch_size(config.train.eval_batch_size, "config.train.eval_batch_size")
  mesh = sharding.make_mesh()
  data = load_data(config, workdir)
  spe = steps.steps_per_epoch(config, data.num_train)
  learning_rate_fn = steps.create_learning_rate_fn(config, spe)
  state = steps.initial_state(config, learning_rate_fn, mesh)
  loss_fn = losses.get_loss_fn(config.loss)
  p_train_step = sharding.compile_everywhere(
    steps.jit_train_step(mesh, loss_fn, learning_rate_fn, config.train.mixup_alpha),
    state,
    steps.abstract_batch(config, config.train.batch_size, mesh),
  )
  p_eval_step = steps.compile_eval_step(config, state, mesh)

  total_steps = steps.total_steps(config, data.num_train)
  checkpoints = create_checkpointer(config, workdir, data.class_names)
  state, latest = checkpoints.restore_latest(state)
  if latest is not None:
    logging.info("resumed from %s", checkpoints.directory / str(latest))
  step = int(jax.device_get(state.step))
  logging.info(
    "%d devices, %d steps per epoch of %d examples, %d steps to go",
    jax.device_count(),
    spe,
    config.train.batch_size,
    max(total_steps - step, 0),
  )
  log = evaluation.MetricsLog(workdir)
  log.write_config(config)
  log.drop_after(step)  # lines logged after the checkpoint (a crash, a fallback) are logged again below
  preemption = checkpointing.PreemptionWatcher()
  eval_metrics: dict[str, float] = {}
  try:
    if step >= total_steps:  # already trained: report the final model again
      logging.info("training already finished at step %d", step)
      epoch = steps.last_epoch(step, spe)
      eval_metrics = evaluation.evaluate_and_log(
        config, p_eval_step, state, data.test, data.class_names, mesh, workdir, log, step, epoch
      )
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
      interval = _TrainMetrics(checkpoints)
      with tqdm(
        total=epoch_steps,
        initial=done_in_epoch,
        desc=f"epoch {epoch + 1}/{config.train.num_epochs}",
        disable=jax.process_index() != 0,
        unit="step",
      ) as bar:
        for batch in input_pipeline.as_numpy(ds):
          state, metrics = p_train_step(state, sharding.shard_batch(batch, mesh))
          step += 1
          interval.add(step, metrics)
          bar.update()
          epoch_end = step == epoch * spe + epoch_steps
          if step % config.train.log_every_steps == 0 or epoch_end:
            means = interval.pop_means()
            log.write(step, epoch, "train", means)
            bar.set_postfix(loss=f"{means['loss']:.4f}")
          if epoch_end:
            break
          if preemption.reached(step):
            interval.check()
            checkpoints.save(state)
            logging.warning("preempted: saved step %d; run the same command again to resume", step)
            return {}
          if step % config.train.checkpoint_every_steps == 0:
            interval.check()
            checkpoints.save(state)
      if step != epoch * spe + epoch_steps:
        raise RuntimeError(
          f"epoch {epoch} of the train split ended after step {step}, expected {epoch * spe + epoch_steps}"
        )

      epochs_done = epoch + 1
      if epochs_done % config.train.eval_every_epochs == 0 or step == total_steps:
        eval_metrics = evaluation.evaluate_and_log(
          config, p_eval_step, state, data.test, data.class_names, mesh, workdir, log, step, epoch
        )
        checkpoints.save(state, metrics={checkpointing.BEST_METRIC: eval_metrics[checkpointing.BEST_METRIC]})
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
  logging.info(
    "wrote checkpoints to %s, metrics to %s (TensorBoard: --logdir=%s) and the confusion matrix to %s",
    checkpoints.directory,
    workdir / "metrics.jsonl",
    workdir,
    workdir / "eval",
  )
  return eval_metrics


def evaluate_checkpoint(
  config: ml_collections.ConfigDict, workdir: str | os.PathLike, checkpoint: str = "best"
) -> dict[str, float]:
  """Evaluates checkpoint "best" | "latest" | "<step>" of `workdir` on the test split (--mode=eval).

  Logged to metrics.jsonl as split "checkpoint_eval", apart from the trainer's own evaluations ("eval"), so that
  a checkpoint scored again with other settings (e.g. `eval_clips`) does not change the learning curve.
  """
  workdir = pathlib.Path(workdir)
  config_checks.check_evaluable(config, workdir)
  sharding.check_batch_size(config.train.eval_batch_size, "config.train.eval_batch_size")
  mesh = sharding.make_mesh()
  data = load_data(config, workdir)
  # The whole train state (the schedule does not matter here): the compiled eval step takes one.
  state = steps.initial_state(config, steps.create_learning_rate_fn(config, 1), mesh)
  checkpoints = create_checkpointer(config, workdir)
  try:
    step = checkpoints.find_step(checkpoint)
    logging.info("restoring %s", checkpoints.directory / str(step))
    state = checkpoints.restore(state, step)
  finally:
    checkpoints.close()
  p_eval_step = steps.compile_eval_step(config, state, mesh)
  epoch = steps.last_epoch(step, steps.steps_per_epoch(config, data.num_train))
  log = evaluation.MetricsLog(workdir)
  try:
    return evaluation.evaluate_and_log(
      config, p_eval_step, state, data.test, data.class_names, mesh, workdir, log, step, epoch, "checkpoint_eval"
    )
  finally:
    log.close()
