r"""Command line: train, evaluate, apply or export SLnL-rFA (installed as `slnl-jax MODE ...`).

  python -m slnl_jax.main --config=configs/ntu60_xsub.py --workdir=workdirs/ntu60_xsub
  python -m slnl_jax.main --config=configs/demo.py --workdir=workdirs/demo --config.train.num_epochs=2
  python -m slnl_jax.main --config=configs/demo.py --workdir=workdirs/demo --mode=eval
  python -m slnl_jax.main --workdir=workdirs/demo --mode=predict --input=S001C001P001R001A001.skeleton [--stream]
  python -m slnl_jax.main --workdir=workdirs/demo --mode=predict --input='clips/*.skeleton' --out=predictions.csv
  python -m slnl_jax.main --workdir=workdirs/demo --mode=export --out=model.jaxexport
  slnl-jax train --config=configs/demo.py --workdir=workdirs/demo    # the same, mode first

predict and export need no --config: the model config and class names are stored with the checkpoint.

Training resumes from the latest checkpoint in --workdir; a SIGTERM saves one and exits with code 75
(PREEMPTED_EXIT_CODE: requeue the job on it). A user mistake is one `error:` line and exit code 1. On several
hosts run the same command on each, adding --coordinator_address=HOST0:PORT --num_processes=N --process_id=I
(or let SLURM / Open MPI / Cloud TPU provide them).
"""

from __future__ import annotations

import os
import pathlib
import sys
from collections.abc import Sequence

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from slnl_jax import config_checks
from slnl_jax.config_checks import ConfigError

_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "Path to a config file, e.g. configs/ntu60_xsub.py.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and plots.")
MODES = ("train", "eval", "predict", "export")
_MODE = flags.DEFINE_enum("mode", "train", MODES, "What to do.")
_INPUT = flags.DEFINE_string(
  "input", None, "--mode=predict: one raw skeleton file, or a pattern (quoted: 'dir/*.json') for a line per file."
)
_CHECKPOINT = flags.DEFINE_string(
  "checkpoint", "best", "--mode=eval|predict|export: 'best' (by eval top-1), 'latest' or a step number."
)
_TOP_K = flags.DEFINE_integer("top_k", 5, "--mode=predict: classes to print per clip or window.")
_STREAM = flags.DEFINE_bool("stream", False, "--mode=predict: play --input as a live stream and print the timeline.")
_WINDOW = flags.DEFINE_integer("window", None, "--stream: frames per prediction (default: the model's T).")
_STRIDE = flags.DEFINE_integer("stride", None, "--stream: frames between predictions (default: half the window).")
_OUT = flags.DEFINE_string(
  "out", None, "--mode=export: the file to write (and OUT's stem + .json); --mode=predict: also a CSV of the top-1."
)
_PLATFORMS = flags.DEFINE_list("platforms", ["cpu", "cuda", "tpu"], "--mode=export: platforms to lower for.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "Multi-host: host:port of process 0 (jax.distributed).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Multi-host: number of processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Multi-host: index of this process.")
_CACHE_DIR = flags.DEFINE_string(
  "jax_cache_dir",
  os.path.join(os.path.expanduser("~"), ".cache", "slnl_jax", "xla"),
  "Persistent XLA compilation cache ('' disables it); repeated runs skip most compile time.",
)
flags.mark_flags_as_required(["workdir"])
flags.register_validator(
  "checkpoint", lambda value: value in ("best", "latest") or value.isdigit(), "must be 'best', 'latest' or a number"
)
_CONFIG_FILE_ERROR = "Error whilst parsing config file"
# A preempted (SIGTERM) run saved a checkpoint and stopped early: EX_TEMPFAIL of sysexits.h, "try again later".
# Requeue on it; the same command resumes.
PREEMPTED_EXIT_CODE = 75
_FILES_PER_CHUNK = 256  # --mode=predict over a pattern: files read and predicted at a time


def _parse_flags(argv: list[str]) -> list[str]:
  """absl parsing, with a one-line error (not a traceback) for a mistyped --config.<key> or a bad config file."""
  try:
    return flags.FLAGS(argv)
  except ConfigError as e:
    sys.exit(f"error: {e}")
  except (AttributeError, KeyError) as e:
    # ml_collections raises AttributeError(KeyError("'key'\nDid you mean ...?")).
    while e.args and isinstance(e.args[0], BaseException):
      e = e.args[0]
    message = str(e.args[0]) if e.args else str(e)
    name, _, hint = message.partition("\n")
    name = name.strip("'")
    overrides = [arg.split("=")[0] for arg in argv if arg.startswith("--config.")]
    culprit = next((arg for arg in overrides if name in arg.split(".")), ", ".join(overrides))
    sys.exit(f"error: {culprit}: unknown config key {name!r}. {hint}".rstrip())
  except flags.Error as e:
    message = str(e)
    if _CONFIG_FILE_ERROR in message:  # ml_collections put the config file's traceback in the message
      config = next((arg for arg in argv if arg.startswith("--config=")), "--config")
      sys.exit(f"error: {config}: {message.rstrip().splitlines()[-1]}")
    sys.exit(f"error: {message}\nPass --helpshort to see the flags.")


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  # Before anything touches a device.
  from slnl_jax import checkpointing, sharding

  checkpointing.quiet_orbax_logs()
  sharding.quiet_platform_logs()

  sharding.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  needs_config = _MODE.value in ("train", "eval")
  if needs_config and _CONFIG.value is None:
    raise app.UsageError(f"--mode={_MODE.value} needs --config=FILE")
  try:
    if _CONFIG.value is not None:
      config_checks.validate(_CONFIG.value)
  except config_checks.ConfigError as e:
    sys.exit(f"error: {e}")
  if _CACHE_DIR.value:
    jax.config.update("jax_compilation_cache_dir", _CACHE_DIR.value)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)

  from slnl_jax.data.errors import SkeletonFormatError

  # Errors whose message says all (file, step, head); a traceback would only bury it.
  errors: tuple[type[Exception], ...] = (
    checkpointing.CheckpointError,
    checkpointing.NonFiniteStateError,
    SkeletonFormatError,
    ConfigError,
  )
  if needs_config:  # predict and export import neither TensorFlow nor the trainer
    from slnl_jax import train

    errors = train.USER_ERRORS
  if _MODE.value == "predict" and not _INPUT.value:
    raise app.UsageError("--mode=predict needs --input=FILE")
  if _MODE.value == "export" and not _OUT.value:
    raise app.UsageError("--mode=export needs --out=FILE")
  try:
    if _MODE.value == "train" and jax.process_index() == 0:
      checkpointing.check_writable(pathlib.Path(_WORKDIR.value))  # before the data is built, not after
    lines = _run_mode(_CONFIG.value, _WORKDIR.value)
  except errors as e:
    sys.exit(f"error: {e}")
  if lines and jax.process_index() == 0:
    print("\n".join(lines))
  logging.flush()


def _run_mode(config, workdir: str) -> list[str]:
  """Runs --mode and returns what to print."""
  if _MODE.value in ("predict", "export"):
    from slnl_jax.inference import Predictor

    predictor = Predictor.from_workdir(workdir, _CHECKPOINT.value)
    if _MODE.value == "export":
      predictor.export(_OUT.value, _PLATFORMS.value)
      return [f"wrote {_OUT.value} ({', '.join(_PLATFORMS.value)}) and {os.path.splitext(_OUT.value)[0]}.json"]
    return _predict(predictor)
  from slnl_jax import train

  if _MODE.value == "train":
    metrics, what = train.train_and_evaluate(config, workdir), "final eval"
  else:
    metrics, what = train.evaluate_checkpoint(config, workdir, _CHECKPOINT.value), "eval"
  if not metrics:  # preempted: the log says where it stopped
    logging.flush()
    sys.exit(PREEMPTED_EXIT_CODE)
  return [
    f"{what} on {int(metrics['num_examples'])} examples: top-1 {100 * metrics['top1']:.2f}%, "
    f"top-5 {100 * metrics['top5']:.2f}% ({config_checks.SCORED_BY[config.dataset.eval_heads]})"
  ]


def _predict(predictor) -> list[str]:
  """--mode=predict: the top-k of --input, its timeline with --stream, or for a pattern a line per file."""
  from slnl_jax.data import readers
  from slnl_jax.data.errors import SkeletonFormatError

  if not os.path.isfile(_INPUT.value):
    if _STREAM.value:
      raise app.UsageError("--stream plays one file: --input must name one")
    return _predict_files(predictor, _INPUT.value)
  clip = readers.read_file(_INPUT.value)
  try:
    if not _STREAM.value:
      (top,) = predictor.predict([clip.skeleton], top_k=_TOP_K.value)
      if _OUT.value:
        _write_predictions(
          [_INPUT.value], [clip.num_frames], [top[:1]], [readers.class_among(_INPUT.value, clip, predictor.class_names)]
        )
      return [f"top-{len(top)} classes for {_INPUT.value}:"] + [
        f"  {rank}. {name:<30s} {p:.4f}" for rank, (name, p) in enumerate(top, 1)
      ]
    window = _WINDOW.value or predictor.config.dataset.num_frames
    stride = _STRIDE.value or max(window // 2, 1)
    lines = [f"{_INPUT.value}: {clip.num_frames} frames, a prediction every {stride} over the last {window}:"]
    for w in predictor.stream(iter(clip.skeleton), window=window, stride=stride, top_k=_TOP_K.value):
      lines.append(f"  frames {w.start:5d}-{w.end - 1:<5d} " + "  ".join(f"{n} {p:.3f}" for n, p in w.top))
    if len(lines) == 1:
      lines.append(f"  no prediction: the clip is shorter than one window ({window} frames); lower --window")
    return lines
  except ValueError as e:  # a clip of another skeleton than the model's
    raise SkeletonFormatError(_INPUT.value, str(e)) from e


def _predict_files(predictor, pattern: str) -> list[str]:
  """The top-1 of every file matching `pattern`, and the share right of those whose label the model knows."""
  from tqdm import tqdm

  from slnl_jax.data import readers

  paths = readers.matching_files([pattern])
  data = predictor.config.dataset
  frames, tops, truths = [], [], []
  with tqdm(total=len(paths), desc="predicting", unit="file", disable=len(paths) < 100) as bar:
    for first in range(0, len(paths), _FILES_PER_CHUNK):  # a chunk of clips in memory at a time, not the dataset
      chunk = paths[first : first + _FILES_PER_CHUNK]
      clips = [readers.read_for_model(path, data.num_joints, data.num_channels) for path in chunk]
      for path, clip in zip(chunk, clips, strict=True):
        frames.append(clip.num_frames)
        truths.append(readers.class_among(path, clip, predictor.class_names))
      tops.extend(predictor.predict([clip.skeleton for clip in clips], top_k=1))
      bar.update(len(chunk))
  if _OUT.value:
    _write_predictions(paths, frames, tops, truths)
  lines = []
  for path, ((name, p),), truth in zip(paths, tops, truths, strict=True):
    verdict = "" if truth is None else "  right" if truth == name else f"  WRONG: it is {truth}"
    lines.append(f"{path}: {name} {p:.3f}{verdict}")
  scored = [(top[0][0], truth) for top, truth in zip(tops, truths, strict=True) if truth is not None]
  if scored:
    right = sum(name == truth for name, truth in scored)
    lines.append(
      f"top-1 {100 * right / len(scored):.2f}% ({right} of the {len(scored)} files whose label the model knows)"
    )
  if len(scored) < len(paths):
    lines.append(f"{len(paths) - len(scored)} of {len(paths)} files carry no label among the model's classes")
  if _OUT.value:
    lines.append(f"wrote {_OUT.value}")
  return lines


def _write_predictions(paths, frames, tops, truths) -> None:
  """--out: one CSV row per file: file, frames, label (the model's class name, or empty), top1, probability."""
  import csv
  import io

  text = io.StringIO()
  writer = csv.writer(text)
  writer.writerow(["file", "frames", "label", "top1", "probability"])
  for path, count, ((name, p),), truth in zip(paths, frames, tops, truths, strict=True):
    writer.writerow([path, count, truth or "", name, f"{p:.6f}"])
  pathlib.Path(_OUT.value).write_text(text.getvalue())


def run() -> None:
  app.run(main, flags_parser=_parse_flags)


def cli(argv: Sequence[str] | None = None) -> None:
  """The `slnl-jax` console script: `slnl-jax MODE --flag=...` is `python -m slnl_jax.main --mode=MODE ...`."""
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] not in MODES:
    sys.exit(
      f"usage: slnl-jax {{{','.join(MODES)}}} --workdir=DIR [--config=FILE] [flags] "
      "(the flags: python -m slnl_jax.main --helpshort)"
    )
  sys.argv = [f"slnl-jax {argv[0]}", f"--mode={argv[0]}", *argv[1:]]
  run()


if __name__ == "__main__":
  run()
