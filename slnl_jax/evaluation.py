"""Evaluation of SLnL-rFA on a whole split, its artifacts and the metrics log (Sec. 4.1-4.2 of the paper).

`steps.eval_step` returns per-batch sums over the real examples of padded batches; `evaluate` adds them up
over the split, so every example counts once whatever the batch size or device count, and reports top-1 /
top-5 / mean loss of each head, and the model's prediction (the concat head's, or the mean of the heads'
probabilities: config.dataset.eval_heads) under "top1" / "top5".
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from collections.abc import Callable, Iterable, Mapping

import jax
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging
from clu import metric_writers

from slnl_jax import config_checks, input_pipeline, models, sharding, steps, visualize


@dataclasses.dataclass(frozen=True)
class EvalResult:
  """Metrics over a whole eval split (each example counted once) and the prediction's confusion matrix."""

  metrics: dict[str, float]
  confusion: np.ndarray  # (K, K) int: rows = true class, columns = predicted class


def evaluate(
  eval_step_fn: Callable[[steps.TrainState, steps.Batch], steps.Metrics],
  state: steps.TrainState,
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
  for head in models.HEADS:
    for name in ("loss", "top1", "top5"):
      metrics[f"{head}_{name}"] = float(totals[f"{head}_{name}"]) / count
  # The summed loss, as in training, and the model's prediction under short names.
  metrics["loss"] = sum(metrics[f"{head}_loss"] for head in models.HEADS)
  metrics["top1"], metrics["top5"] = float(totals["top1"]) / count, float(totals["top5"]) / count
  return EvalResult(metrics=metrics, confusion=np.asarray(totals["confusion"]))


def save_eval_artifacts(result: EvalResult, class_names: list[str], out_dir: pathlib.Path) -> None:
  """Writes confusion_matrix.{npy,png} and per_class_accuracy.npy into `out_dir`."""
  out_dir.mkdir(parents=True, exist_ok=True)
  np.save(out_dir / "confusion_matrix.npy", result.confusion)
  np.save(out_dir / "per_class_accuracy.npy", visualize.per_class_accuracy(result.confusion))
  visualize.plot_confusion_matrix(result.confusion, class_names, out_dir / "confusion_matrix.png")


def write_atomic(path: pathlib.Path, text: str) -> None:
  """Writes `text` to `path` through a temporary file and a rename: a crash (or a SIGTERM) while writing leaves
  the old file or the new one, never half of one."""
  partial = path.with_name(path.name + ".tmp")
  partial.write_text(text)
  partial.replace(path)


class MetricsLog:
  """TensorBoard scalars (clu) and `workdir/metrics.jsonl`; only process 0 writes.

  Each line of metrics.jsonl is one flat JSON object: {"step", "epoch", "split", and the metrics by name}, e.g.
  "loss", "concat_top1"; split "train", "eval" (the trainer's evaluations: the learning curve) or
  "checkpoint_eval" (`--mode=eval` of a saved checkpoint, maybe with other evaluation settings); evaluation
  lines also carry "top1" / "top5" of the model's prediction (`evaluate`).
  The scalars are not echoed to the log (`evaluate_and_log` logs one line per evaluation, tqdm shows the loss).
  """

  def __init__(self, workdir: pathlib.Path):
    self._primary = jax.process_index() == 0
    self._writer = metric_writers.SummaryWriter(str(workdir)) if self._primary else None
    self._path = workdir / "metrics.jsonl"

  def write(self, step: int, epoch: int, split: str, metrics: Mapping[str, float]) -> None:
    metrics = {name: float(value) for name, value in metrics.items()}
    if self._primary:
      self._writer.write_scalars(step, {f"{split}/{name}": value for name, value in metrics.items()})
      record = {"step": step, "epoch": epoch, "split": split, **metrics}
      with self._path.open("a") as f:
        f.write(json.dumps(record) + "\n")

  def write_config(self, config: ml_collections.ConfigDict) -> None:
    """The run's config as TensorBoard hyperparameters (its HPARAMS tab), keys flattened as in `--config.*`."""
    if self._primary:
      self._writer.write_hparams(config)

  def drop_after(self, step: int) -> None:
    """Removes the lines of steps after `step` (a run resumed there logs them again, instead of twice)."""
    if not (self._primary and self._path.exists()):
      return
    lines = self._path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line)["step"] <= step]
    if len(kept) < len(lines):
      write_atomic(self._path, "".join(kept))

  def close(self) -> None:
    if self._primary:
      self._writer.flush()
      self._writer.close()


def evaluate_and_log(
  config: ml_collections.ConfigDict,
  p_eval_step: Callable[[steps.TrainState, steps.Batch], steps.Metrics],
  state: steps.TrainState,
  test: tf.data.Dataset,
  class_names: list[str],
  mesh: jax.sharding.Mesh,
  workdir: pathlib.Path,
  log: MetricsLog,
  step: int,
  epoch: int,
  split: str = "eval",
) -> dict[str, float]:
  """Evaluates `state` on the unbatched `test` split; logs the metrics under `split` and writes the confusion
  matrix and per-class accuracy to `workdir/<split>/` (a rescoring, "checkpoint_eval", keeps the trainer's)."""
  start = time.perf_counter()
  batches = input_pipeline.eval_dataset(
    test,
    config=config,
    global_batch_size=config.train.eval_batch_size,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
  )
  result = evaluate(p_eval_step, state, input_pipeline.as_numpy(batches), mesh)
  log.write(step, epoch, split, result.metrics)
  if jax.process_index() == 0:
    save_eval_artifacts(result, class_names, workdir / split)
  m = result.metrics
  logging.info(
    "step %d eval on %d examples (%.1fs): top-1 %.2f%% top-5 %.2f%% (%s); concat %.2f%%, position %.2f%%, "
    "velocity %.2f%%",
    step,
    int(m["num_examples"]),
    time.perf_counter() - start,
    100 * m["top1"],
    100 * m["top5"],
    config_checks.SCORED_BY[config.dataset.eval_heads],
    100 * m["concat_top1"],
    100 * m["position_top1"],
    100 * m["velocity_top1"],
  )
  return result.metrics
