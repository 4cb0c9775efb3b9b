"""Checkpoints (orbax `CheckpointManager`) and preemption handling.

A checkpoint holds the whole `TrainState` (params, batch stats, optimiser state, step, rng) as its "default" item
and, when the trainer gives it, a JSON item "model" with the model config and class names, so that inference
(slnl_jax/inference.py) restores only params + batch stats and builds the model without the dataset. Checkpoints
saved before the "model" item existed still restore. Together with data order being a function of (seed, epoch),
restoring the latest checkpoint continues a run bit-exactly. Saves are
atomic (orbax writes to a temporary directory and renames it) and asynchronous; we keep the last `keep`
checkpoints plus the `keep_best` best ones by evaluation top-1.

Faults stop the run at once with one `CheckpointError` naming the folder, and never cost an earlier checkpoint:
the folder is checked to be writable when opened, a failed (e.g. disk full) asynchronous save is raised at the
next save or wait, and a state holding NaN/Inf is never saved (`NonFiniteStateError`), so the latest
checkpoint is always one to resume from.
"""

from __future__ import annotations

import logging as logging_lib
import os
import pathlib
import re
import signal
import threading
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from absl import logging

from slnl_jax import models

BEST_METRIC = f"{models.PREDICTION_HEAD}_top1"  # eval top-1 of the head that makes the model's prediction
STATE_ITEM, MODEL_INFO = "default", "model"  # "default": the name orbax gave the single item of older checkpoints


# Orbax warns at every save without metrics once a best-k policy is set; the trainer saves between evaluations
# (and on preemption) without metrics on purpose.
_EXPECTED_ORBAX_WARNINGS = ("Requested `tracked_metric`; did not provide metrics.",)


class _DropOrbaxInfo(logging_lib.Filter):
  def filter(self, record: logging_lib.LogRecord) -> bool:
    if f"{os.sep}orbax{os.sep}" not in record.pathname:
      # asyncio reports each of orbax's failed writes again ("Task exception was never retrieved").
      return not (record.name == "asyncio" and "orbax" in record.getMessage() + str(record.exc_info))
    # A failed save raises a CheckpointError that names the folder and the reason: one line each here.
    record.exc_info = record.exc_text = None
    return record.levelno >= logging_lib.WARNING and record.getMessage() not in _EXPECTED_ORBAX_WARNINGS


def quiet_orbax_logs() -> None:
  """Drops orbax's per-save INFO chatter (dozens of lines per checkpoint) from absl's log; keeps its warnings
  but the expected one of every save between evaluations, each without its traceback."""
  logging.get_absl_handler().addFilter(_DropOrbaxInfo())


class CheckpointError(RuntimeError):
  """A checkpoint that cannot be read, written or does not fit the current config."""


class NonFiniteStateError(FloatingPointError):
  """A train state holding NaN/Inf was not saved; the message names the latest (finite) checkpoint."""


@jax.jit
def _all_finite(tree: Any) -> jax.Array:
  leaves = [jnp.isfinite(x).all() for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)


def _reason(e: BaseException) -> str:
  """An exception as one short line: the operating system's reason when there is one (orbax's messages run over
  several lines and quote whole tensorstore specs)."""
  text = " ".join(str(e).split())
  code = re.search(r"os_error_code='?(\d+)", text)
  if code:
    return os.strerror(int(code[1]))
  cause = e
  while cause is not None and not isinstance(cause, OSError):
    cause = cause.__cause__ or cause.__context__
  if isinstance(cause, OSError) and cause.strerror:
    return cause.strerror
  return f"{type(e).__name__}: {text[:300]}"


def directory_of(workdir: pathlib.Path) -> pathlib.Path:
  """Where a run's checkpoints live: `workdir/checkpoints` (the trainer's, inference's and the ablation tool's)."""
  return workdir / "checkpoints"


def saved_steps(directory: pathlib.Path) -> list[int]:
  """The finalized checkpoints' steps in `directory` (orbax's listing); [] when there is no such directory."""
  return ocp.utils.checkpoint_steps(directory) if directory.is_dir() else []


def check_writable(directory: pathlib.Path) -> None:
  """Creates `directory` and writes a file in it, so that a read-only or missing place fails before training."""
  probe = directory / f".write_test_{os.getpid()}"
  try:
    directory.mkdir(parents=True, exist_ok=True)
    probe.write_bytes(b"")
    probe.unlink()
  except OSError as e:
    raise CheckpointError(
      f"cannot write to {directory}: {_reason(e)}; make it writable or use another --workdir"
    ) from e


def _best_fn(metrics: Mapping[str, float]) -> float:
  return float(metrics[BEST_METRIC])


class Checkpointer:
  """Saves and restores train states under `directory` (one sub-folder per step)."""

  def __init__(
    self,
    directory: str | os.PathLike,
    *,
    keep: int = 3,
    keep_best: int = 1,
    model_info: Mapping[str, Any] | None = None,
    create: bool = True,
  ):
    """`model_info` (JSON-serialisable, e.g. {"config", "class_names"}) is saved with every checkpoint;
    `create=False` opens an existing directory for reading (CheckpointError when there is none)."""
    if keep < 1:
      raise ValueError(f"config.train.keep_checkpoints must be >= 1, got {keep}")
    self.directory = pathlib.Path(directory).absolute()
    if not create and not self.directory.is_dir():
      raise CheckpointError(f"no checkpoint in {self.directory}: train first")
    self._model_info = None if model_info is None else dict(model_info)
    if create and jax.process_index() == 0:
      check_writable(self.directory)
    policy = ocp.checkpoint_managers.AnyPreservationPolicy(
      [
        ocp.checkpoint_managers.LatestN(n=keep),
        # Only checkpoints saved with eval metrics compete for "best"; the others follow LatestN.
        ocp.checkpoint_managers.BestN(get_metric_fn=_best_fn, n=keep_best, keep_checkpoints_without_metrics=False),
      ]
    )
    options = ocp.CheckpointManagerOptions(best_fn=_best_fn, best_mode="max", preservation_policy=policy, create=create)
    self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=(STATE_ITEM, MODEL_INFO))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def best_step(self) -> int | None:
    """The step with the best eval top-1, or the latest step when none was saved with metrics."""
    return self._manager.best_step()

  def find_step(self, checkpoint: str | int) -> int:
    """The step of checkpoint "best" | "latest" | a step number (CheckpointError when there is none)."""
    if checkpoint == "best":
      step = self.best_step()
    elif checkpoint == "latest":
      step = self.latest_step()
    elif isinstance(checkpoint, int) or str(checkpoint).isdigit():
      step = int(checkpoint)
      if step not in self._manager.all_steps():
        raise CheckpointError(f"no checkpoint {self.directory / str(step)}; saved steps: {self._manager.all_steps()}")
    else:
      raise ValueError(f"--checkpoint must be 'best', 'latest' or a step number, got {checkpoint!r}")
    if step is None:
      raise CheckpointError(f"no checkpoint in {self.directory}: train first")
    return step

  def save(self, state: Any, *, metrics: Mapping[str, float] | None = None) -> None:
    """Saves `state` under its own step (asynchronously; `wait` or `close` to block).

    Raises:
      NonFiniteStateError: `state` holds NaN/Inf (nothing is saved).
      CheckpointError: this or the previous asynchronous save could not be written.
    """
    step = int(jax.device_get(state.step))
    if not bool(jax.device_get(_all_finite(state))):
      last = self.latest_step()
      where = f"the last checkpoint is {self.directory / str(last)}" if last is not None else "no checkpoint yet"
      raise NonFiniteStateError(f"not saving step {step}: its train state holds NaN/Inf values; {where}")
    metrics = None if metrics is None else {k: float(v) for k, v in metrics.items()}
    items = {STATE_ITEM: ocp.args.StandardSave(state)}
    if self._model_info is not None:
      items[MODEL_INFO] = ocp.args.JsonSave(self._model_info)
    try:
      # orbax first waits for the previous save, and raises its error.
      self._manager.save(step, args=ocp.args.Composite(**items), metrics=metrics, force=True)
    except Exception as e:
      raise self._write_error(e) from e

  def restore(self, target: Any, step: int) -> Any:
    """Restores checkpoint `step` into the structure, dtypes and shardings of `target`.

    Raises:
      CheckpointError: naming the checkpoint folder when it is unreadable, truncated or does not match
        `target` (e.g. a config with a different model).
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    return self._restore(step, ocp.args.StandardRestore(abstract))

  def restore_latest(self, target: Any) -> tuple[Any, int | None]:
    """The newest checkpoint that restores, as (state, step); (target, None) when there is none.

    A checkpoint that cannot be restored (e.g. truncated by a crash) is renamed `<step>.unreadable` (kept, not
    deleted) with a warning, and the one before it is tried; when none restores, the newest one's error is raised.
    """
    unreadable: list[tuple[int, CheckpointError]] = []
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        state = self.restore(target, step)
      except CheckpointError as e:
        unreadable.append((step, e))
        continue
      for bad, error in unreadable:
        aside = self.directory / f"{bad}.unreadable"
        if jax.process_index() == 0:
          (self.directory / str(bad)).rename(aside)
        logging.warning("%s; moved it to %s and resumed from checkpoint %d", error, aside, step)
      if unreadable:
        self._manager.reload()
      return state, step
    if unreadable:
      raise unreadable[0][1]
    return target, None

  def restore_variables(self, step: int, abstract: Mapping[str, Any], *, averaged: bool = False) -> dict[str, Any]:
    """Only the model variables of checkpoint `step` ({"params", "batch_stats"}, not the optimiser's moments).

    Args:
      abstract: {"params": ..., "batch_stats": ...} trees of arrays or `jax.ShapeDtypeStruct`s (e.g. from
        `jax.eval_shape(model.init, ...)`); they are restored onto the first local device.
      averaged: restore the moving averages of a run with `config.train.ema_decay` > 0
        (`steps.AveragedTrainState.ema`).
    """
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = {
      name: jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), abstract[name])
      for name in ("params", "batch_stats")
    }
    if averaged:
      target = {"ema": target}
    restore_args = ocp.checkpoint_utils.construct_restore_args(target)
    restored = self._restore(step, ocp.args.PyTreeRestore(target, restore_args=restore_args, partial_restore=True))
    return restored["ema"] if averaged else restored

  def model_info(self, step: int) -> dict[str, Any] | None:
    """The JSON item saved with checkpoint `step` (see `__init__`), or None for a checkpoint saved without it."""
    if not (self.directory / str(step) / MODEL_INFO).is_dir():
      return None
    try:
      return self._manager.restore(step, args=ocp.args.Composite(**{MODEL_INFO: ocp.args.JsonRestore()}))[MODEL_INFO]
    except Exception as e:
      raise CheckpointError(f"cannot read {self.directory / str(step) / MODEL_INFO}: {type(e).__name__}: {e}") from e

  def _restore(self, step: int, args: ocp.args.CheckpointArgs) -> Any:
    try:
      return self._manager.restore(step, args=ocp.args.Composite(**{STATE_ITEM: args}))[STATE_ITEM]
    except Exception as e:  # orbax raises many types (ValueError, KeyError, OSError, ...) for bad files.
      raise CheckpointError(
        f"cannot restore checkpoint {self.directory / str(step)}: {type(e).__name__}: {e}. "
        "It is corrupt or was written with a different model config; delete that folder to resume "
        "from an earlier checkpoint, or use another --workdir."
      ) from e

  def wait(self) -> None:
    """Blocks until every pending asynchronous save is on disk (CheckpointError when one failed)."""
    try:
      self._manager.wait_until_finished()
    except Exception as e:
      raise self._write_error(e) from e

  def _write_error(self, e: Exception) -> CheckpointError:
    # The step being written is the newest folder orbax started (it leaves a `*.orbax-checkpoint-tmp*` one).
    pending = [p.name.split(".")[0] for p in self.directory.glob("*.orbax-checkpoint-tmp*")]
    steps = [int(name) for name in pending if name.isdigit()]
    folder = self.directory / str(max(steps)) if steps else self.directory
    last = self.latest_step()
    resume = f"it resumes from checkpoint {last}" if last is not None else "there is no earlier checkpoint"
    return CheckpointError(
      f"cannot write checkpoint {folder}: {_reason(e)}. Free space in or fix {self.directory}, then run the same "
      f"command again: {resume}"
    )

  def close(self) -> None:
    """Waits for pending saves and releases the manager (CheckpointError when a save failed)."""
    try:
      self._manager.close()
    except Exception as e:
      raise self._write_error(e) from e


class PreemptionWatcher:
  """Tells the train loop when to save and stop because the job is being preempted (SIGTERM).

  With one process a SIGTERM handler sets a flag. With several, jax's preemption service (started by
  `jax.distributed.initialize`) catches the signal and `reached_preemption_sync_point` makes every process
  agree on the same step, so that they all save the same checkpoint.
  """

  def __init__(self):
    self._event = threading.Event()
    self._multihost = jax.process_count() > 1
    self._previous = None
    if not self._multihost and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)

  def _on_sigterm(self, signum: int, frame: Any) -> None:
    del signum, frame
    logging.warning("SIGTERM received: saving a checkpoint and stopping after this step")
    self._event.set()

  def reached(self, step: int) -> bool:
    """True once preemption was requested; call it after every step (on every process)."""
    if self._multihost:
      return ocp.multihost.reached_preemption(step)
    return self._event.is_set()

  def close(self) -> None:
    """Restores the SIGTERM handler that was installed before."""
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None
