"""Restoring a trained checkpoint and running it: --mode=eval and --mode=predict of slnl_jax/main.py."""

from __future__ import annotations

import functools
import os
import pathlib

import jax
import ml_collections
import numpy as np
from absl import logging

from slnl_jax import checkpointing, evaluation, input_pipeline, sharding, steps, train
from slnl_jax.data import readers


def restore_for_inference(
  config: ml_collections.ConfigDict, workdir: str | os.PathLike, checkpoint: str, mesh: jax.sharding.Mesh
) -> steps.TrainState:
  """The train state of checkpoint "best" | "latest" | "<step>" of `workdir` (the schedule does not matter here)."""
  workdir = pathlib.Path(workdir)
  state = steps.initial_state(config, steps.create_learning_rate_fn(config, 1), mesh)
  checkpoints = train.create_checkpointer(config, workdir)
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
  data = train.load_data(config, workdir)
  state = restore_for_inference(config, workdir, checkpoint, mesh)
  p_eval_step = steps.compile_eval_step(config, state, mesh)
  step = int(jax.device_get(state.step))
  epoch = steps.last_epoch(step, steps.steps_per_epoch(config, data.num_train))
  log = evaluation.MetricsLog(workdir)
  try:
    return evaluation.evaluate_and_log(
      config, p_eval_step, state, data.test, data.class_names, mesh, workdir, log, step, epoch
    )
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
  data = train.load_data(config, workdir)
  mesh = sharding.make_mesh()
  state = restore_for_inference(config, workdir, checkpoint, mesh)
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  logits = jax.jit(functools.partial(state.apply_fn, train=False))(variables, x)["concat"]
  probabilities = np.asarray(jax.nn.softmax(logits[0]))
  best = np.argsort(-probabilities, kind="stable")[:top_k]
  return [(data.class_names[i], float(probabilities[i])) for i in best]
