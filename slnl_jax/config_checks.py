"""The config checked once at start-up: every error is one `error:` line naming the key and the allowed range.
Also the values derived from a config that several modules share (`num_pools`, `eval_views`), and a config
compared with the one a run saved (`changed_settings`; `check_resumable` before a run resumes, `check_evaluable`
before --mode=eval scores its checkpoints).

ml_collections re-raises a ValueError or TypeError from a config file as `type(e)(message)` (which loses
the message, or fails for exception types that need more arguments) and defers an OSError until the config
is read. Config files therefore raise `ConfigError`, which passes through unchanged to `main`.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections.abc import Mapping
from typing import Any

import ml_collections
from flax import traverse_util


class ConfigError(Exception):
  """A config (file or override) the run cannot use; the message names the file or key and says what is wrong."""


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
  if not ok:
    raise ConfigError(f"config.{key}={value!r}: must be {allowed} (set it with --config.{key}=...)")


def _integer(
  config: ml_collections.ConfigDict, key: str, low: int, *, or_minus_one: bool = False, why: str = ""
) -> None:
  value = _get(config, key)
  ok = isinstance(value, int) and not isinstance(value, bool) and (value >= low or (or_minus_one and value == -1))
  _require(ok, key, value, f"an integer >= {low}" + (" or -1" if or_minus_one else "") + why)


def _real(config: ml_collections.ConfigDict, key: str, low: float, high: float, *, low_open: bool, high_open: bool):
  value = _get(config, key)
  ok = isinstance(value, int | float) and math.isfinite(value)
  ok = ok and (low < value if low_open else low <= value) and (value < high if high_open else value <= high)
  interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
  _require(ok, key, value, f"a number in {interval}")


def _joint_pairs(pairs: Any, key: str, joints: int, *, distinct: bool = False) -> None:
  ok = len(pairs) % 2 == 0 and all(isinstance(j, int) and 0 <= j < joints for j in pairs)
  ok = ok and (not distinct or len(set(pairs)) == len(pairs))
  _require(
    ok, key, pairs, f"() or (left, right, ...) pairs of {'distinct ' if distinct else ''}joints in [0, {joints})"
  )


def _get(config: ml_collections.ConfigDict, key: str) -> Any:
  for part in key.split("."):
    config = config[part]
  return config


def num_pools(model: ml_collections.ConfigDict) -> int:
  """2x2 max-pools in the network: one after every `pool_every` blocks but the last (see `slnl_rfa.Stream`)."""
  blocks = len(model.channels)
  return sum((i + 1) % model.pool_every == 0 and i + 1 < blocks for i in range(blocks))


OPTIMIZERS = ("adam", "sgd")
# config.dataset.eval_heads -> what scores a clip, as logs and reports name it (steps.scored_heads: which heads).
SCORED_BY = {"concat": "concat head", "all": "mean of the three heads"}
EVAL_HEADS = tuple(SCORED_BY)

# The value each setting had before the code gained it: a config saved earlier (a workdir's config.json, which
# Predictor and tools/ablate.py read) lacks the key and computed as this value says.
BEFORE_THE_KEY = {
  "dataset.eval_clips": 1,
  "dataset.eval_turns": 1,
  "dataset.eval_offsets": 1,
  "dataset.eval_heads": "concat",
  "dataset.center_joint": -1,
  "dataset.minmax_normalize": False,
  "dataset.minmax_isotropic": False,
  "dataset.align_joints": (),
  "dataset.train_mirror_pairs": (),
  "dataset.train_shear": 0.0,
  "loss.label_smoothing": 0.0,
  "train.ema_decay": 0.0,
  "train.mixup_alpha": 0.0,
  "model.transform_network": True,
  "train.optimizer": "adam",
  "train.momentum": 0.9,
  "train.warmup_epochs": 0,
}


# Settings that do not change what a run computes: where data lives, how often it logs, evaluates and checkpoints
# (evaluation draws nothing from the training randomness), the evaluation batch (its metrics are sums over the real
# examples).
NOT_COMPARED = frozenset(
  {
    "dataset.data_dir",
    "dataset.manual_dir",
    "train.log_every_steps",
    "train.eval_every_epochs",
    "train.checkpoint_every_steps",
    "train.keep_checkpoints",
    "train.keep_best_checkpoints",
    "train.eval_batch_size",
  }
)
# Settings that only change how a checkpoint is scored.
EVAL_SETTINGS = (
  "dataset.eval_crop",
  "dataset.eval_clips",
  "dataset.eval_turns",
  "dataset.eval_offsets",
  "dataset.eval_heads",
)
# What a run may be resumed with other values of: the above, where it stops (the learning rate is a function of
# the epoch, not of the run's length, so a longer run repeats the shorter one's steps) and how the same function is
# computed (e.g. on another platform).
RESUMABLE = (
  NOT_COMPARED
  | frozenset(EVAL_SETTINGS)
  | {
    "train.num_epochs",
    "train.max_steps",
    "model.nonlocal_impl",
    "model.conv_kernel_grad",
    "model.remat",
  }
)

# What only shapes training: --mode=eval may score a run's checkpoint with other values of these, besides
# RESUMABLE and the split it is scored on (`dataset.name`). Every `loss.` and `train.` setting counts here but
# `train.ema_decay`, which chooses the weights scored; the training crops' and turns' ranges do not, as they set
# the evaluation views (`eval_views`).
TRAINING_ONLY = frozenset(
  {
    "seed",
    "dataset.name",
    "dataset.train_tilt_deg",
    "dataset.train_scale_range",
    "dataset.train_shear",
    "dataset.train_mirror_pairs",
    "dataset.shuffle_buffer",
  }
)
_TRAINING_ONLY_SECTIONS = ("loss.", "train.")
_SCORED_WEIGHTS = "train.ema_decay"

# BEFORE_THE_KEY as config.json stores it (tuples as lists).
_SAVED_BEFORE_THE_KEY = json.loads(json.dumps(BEFORE_THE_KEY))


def flat_settings(config: ml_collections.ConfigDict) -> dict[str, object]:
  """`config` as config.json stores it (tuples as lists), by flat key ("train.batch_size")."""
  return traverse_util.flatten_dict(json.loads(config.to_json_best_effort()), sep=".")


def read_saved_config(workdir: pathlib.Path) -> dict[str, object] | None:
  """A run's config.json (written by `train.train_and_evaluate`) by flat key, a setting it predates at the value it
  had before (`BEFORE_THE_KEY`); None if there is none."""
  path = workdir / "config.json"
  if not path.exists():
    return None
  return with_earlier_settings(traverse_util.flatten_dict(json.loads(path.read_text()), sep="."))


def with_earlier_settings(saved: Mapping[str, object]) -> dict[str, object]:
  """Settings by flat key as a run recorded them (config.json, result.json), plus each setting the record predates
  at the value it had before (`BEFORE_THE_KEY`, as JSON stores it)."""
  return {**_SAVED_BEFORE_THE_KEY, **saved}


def changed_settings(config: ml_collections.ConfigDict, workdir: pathlib.Path, ignore: frozenset[str]) -> list[str]:
  """`key = <saved> there, <config's> now` for each setting, but `ignore`, that `config` and `workdir`'s config.json
  both hold with different values (a setting the code gained after the run: compared with `BEFORE_THE_KEY`'s)."""
  saved = read_saved_config(workdir)
  if saved is None:
    return []
  wanted = flat_settings(config)
  differ = sorted(k for k in saved.keys() & wanted.keys() - ignore if saved[k] != wanted[k])
  return [f"{k} = {saved[k]!r} there, {wanted[k]!r} now" for k in differ]


def _refuse_changes(
  config: ml_collections.ConfigDict, workdir: pathlib.Path, ignore: frozenset[str], trained_with: str, advice: str
) -> None:
  """Raises `ConfigError` naming each setting (but `ignore`) that `workdir`'s config.json records otherwise."""
  differ = changed_settings(config, workdir, ignore)
  if differ:
    raise ConfigError(f"{workdir} holds a run trained with {trained_with} ({'; '.join(differ)}): {advice}")


def check_resumable(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
  """Raises `ConfigError` if `workdir`'s config.json records other settings than `config` (but `RESUMABLE`):
  resuming its checkpoints would continue the run under settings that file does not record."""
  _refuse_changes(
    config,
    workdir,
    RESUMABLE,
    "other settings",
    f"resume it with the settings of {workdir / 'config.json'}, give this run its own --workdir, or move that "
    "file aside to go on from the run's checkpoints under the new settings",
  )


def check_evaluable(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
  """Raises `ConfigError` if `workdir`'s config.json records another model or preprocessing than `config`: its
  checkpoints would be scored on clips prepared unlike the ones they were trained on (but `TRAINING_ONLY` and
  `RESUMABLE` may differ)."""
  training_only = {k for k in flat_settings(config) if k.startswith(_TRAINING_ONLY_SECTIONS)} - {_SCORED_WEIGHTS}
  _refuse_changes(
    config,
    workdir,
    RESUMABLE | TRAINING_ONLY | training_only,
    "another model or data preparation",
    f"evaluate it with the settings of {workdir / 'config.json'} (only the evaluation settings, the split "
    "(dataset.name), the loss and the training schedule may differ)",
  )


def saved_setting(section: ml_collections.ConfigDict, key: str) -> Any:
  """Setting `key` ("dataset.eval_clips") of a (possibly saved) config's `section` (its `config.dataset`), or the
  value it had before the key existed."""
  return section.get(key.rpartition(".")[2], BEFORE_THE_KEY[key])


def eval_views(data: ml_collections.ConfigDict) -> tuple[tuple[float, float, float], ...]:
  """(crop ratio, crop offset fraction, turn about the vertical axis in degrees) of each of a clip's evaluation
  views (`config.dataset`).

  Crops: (eval_crop,) for eval_clips = 1, else eval_clips crops with ratios evenly spaced over [train_crop_min, 1],
  the range the model was trained on. Offsets: each crop centred (0.5) for eval_offsets = 1, else taken at
  eval_offsets starts evenly spaced over [0, 1] of the frames it leaves out (the first at the clip's start, the
  last at its end), as training crops start anywhere; a whole-clip crop (ratio 1) is taken once. Turns: none for
  eval_turns = 1, else eval_turns angles evenly spaced over [-train_rotation_deg, train_rotation_deg], the turns it
  was trained on. Every crop is taken at every turn.
  """

  def spaced(low: float, high: float, count: int) -> list[float]:
    return [low + (high - low) * i / (count - 1) for i in range(count)]

  clips, turns, offsets = (saved_setting(data, f"dataset.{k}") for k in ("eval_clips", "eval_turns", "eval_offsets"))
  ratios = [float(data.eval_crop)] if clips == 1 else spaced(float(data.train_crop_min), 1.0, clips)
  starts = [0.5] if offsets == 1 else spaced(0.0, 1.0, offsets)
  crops = [(ratio, start) for ratio in ratios for start in (starts if ratio < 1.0 else [0.5])]
  angles = [0.0] if turns == 1 else spaced(-float(data.train_rotation_deg), float(data.train_rotation_deg), turns)
  return tuple((ratio, start, angle) for ratio, start in crops for angle in angles)


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises `ConfigError` for the first setting the run cannot use (types are checked by ml_collections)."""
  from slnl_jax import losses, sharding
  from slnl_jax.models import frequency_attention, nonlocal_attention, slnl_rfa

  for key in ("dataset.num_classes", "dataset.num_joints", "dataset.num_persons", "dataset.num_channels"):
    _integer(config, key, 1)
  _integer(config, "dataset.shuffle_buffer", 1)
  _integer(config, "dataset.eval_clips", 1)
  _integer(config, "dataset.eval_turns", 1)
  _integer(config, "dataset.eval_offsets", 1)
  heads = config.dataset.eval_heads
  _require(heads in EVAL_HEADS, "dataset.eval_heads", heads, f"one of {EVAL_HEADS}")
  for key in ("dataset.train_crop_min", "dataset.eval_crop"):
    _real(config, key, 0, 1, low_open=True, high_open=False)
  channels = config.dataset.num_channels
  for key in ("dataset.train_rotation_deg", "dataset.train_tilt_deg"):
    _real(config, key, 0, 180, low_open=False, high_open=False)
  _real(config, "dataset.train_scale_range", 0, 1, low_open=False, high_open=True)
  _real(config, "dataset.train_shear", 0, 1, low_open=False, high_open=True)
  center = config.dataset.center_channels
  _require(0 <= center <= channels, "dataset.center_channels", center, f"an integer in [0, {channels}] (the channels)")
  joints = config.dataset.num_joints
  joint = config.dataset.center_joint
  _require(
    isinstance(joint, int) and -1 <= joint < joints, "dataset.center_joint", joint, f"-1 or a joint in [0, {joints})"
  )
  data = config.dataset
  align, mirror = data.align_joints, data.train_mirror_pairs
  _joint_pairs(align, "dataset.align_joints", joints)
  _joint_pairs(mirror, "dataset.train_mirror_pairs", joints, distinct=True)
  xyz_only = {
    "align_joints": bool(align),
    "train_mirror_pairs": bool(mirror),
    "center_joint": joint != -1,
    "minmax_normalize": data.minmax_normalize,
    "train_rotation_deg": data.train_rotation_deg != 0,
    "train_tilt_deg": data.train_tilt_deg != 0,
    "train_scale_range": data.train_scale_range != 0,
    "train_shear": data.train_shear != 0,
  }
  for key, used in xyz_only.items():
    _require(not used or channels >= 3, f"dataset.{key}", data[key], "off for data of fewer than 3 (xyz) channels")
  _require(
    not data.minmax_isotropic or data.minmax_normalize,
    "dataset.minmax_isotropic",
    data.minmax_isotropic,
    "False unless dataset.minmax_normalize is True (it is a kind of min-max)",
  )
  _require(
    data.eval_turns == 1 or data.train_rotation_deg > 0,
    "dataset.eval_turns",
    data.eval_turns,
    "1 when training clips are not turned (the turns span [-train_rotation_deg, train_rotation_deg])",
  )

  model = config.model
  _integer(config, "model.pool_every", 1)
  _require(
    len(model.channels) >= 1 and all(isinstance(c, int) and c >= 1 for c in model.channels),
    "model.channels",
    model.channels,
    "a non-empty tuple of integers >= 1",
  )
  _require(
    all(isinstance(k, int) and k >= 1 for k in model.kernel_sizes),
    "model.kernel_sizes",
    model.kernel_sizes,
    "a tuple of integers >= 1",
  )
  # Each max-pool halves frames and joints (rounding down): fewer than 2**pools leaves nothing to convolve.
  smallest = 2 ** num_pools(model)
  why = f" (the model max-pools {num_pools(model)} times by 2)" if num_pools(model) else ""
  _integer(config, "dataset.num_frames", smallest, why=why)
  _integer(config, "model.num_joints_out", smallest, why=why)
  for key in ("model.num_systems", "model.fa_reduction"):
    _integer(config, key, 1)
  _real(config, "model.embed_ratio", 0, 1, low_open=True, high_open=False)
  _real(config, "model.dropout_rate", 0, 1, low_open=False, high_open=True)
  variants = frequency_attention.VARIANTS
  fa = model.frequency_attention
  _require(fa in variants, "model.frequency_attention", fa, f"one of {variants}")
  kinds = nonlocal_attention.KINDS
  _require(set(model.nonlocal_kinds) <= set(kinds), "model.nonlocal_kinds", model.nonlocal_kinds, f"among {kinds}")
  impls = nonlocal_attention.IMPLS
  _require(model.nonlocal_impl in impls, "model.nonlocal_impl", model.nonlocal_impl, f"one of {impls}")
  try:  # the model's and the loss's own checks (dtype, block counts, kernel gradient, loss name)
    slnl_rfa.create_model(config)
    losses.get_loss_fn(config.loss)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  for key in ("loss.gamma", "loss.margin"):
    _real(config, key, 0, math.inf, low_open=False, high_open=True)
  _real(config, "loss.label_smoothing", 0, 1, low_open=False, high_open=True)

  for key in ("train.batch_size", "train.eval_batch_size", "train.num_epochs", "train.log_every_steps"):
    _integer(config, key, 1)
  for key in ("train.checkpoint_every_steps", "train.keep_checkpoints", "train.eval_every_epochs"):
    _integer(config, key, 1)
  _integer(config, "train.keep_best_checkpoints", 0)
  for key in ("train.steps_per_epoch", "train.max_steps"):
    _integer(config, key, 1, or_minus_one=True)
  _real(config, "train.learning_rate", 0, math.inf, low_open=True, high_open=True)
  _real(config, "train.weight_decay", 0, math.inf, low_open=False, high_open=True)
  _real(config, "train.lr_decay", 0, 1, low_open=True, high_open=False)
  _real(config, "train.ema_decay", 0, 1, low_open=False, high_open=True)
  alpha = config.train.mixup_alpha
  _require(
    isinstance(alpha, int | float) and math.isfinite(alpha) and alpha >= 0,
    "train.mixup_alpha",
    alpha,
    "a number >= 0 (0: off)",
  )
  optimizer = config.train.optimizer
  _require(optimizer in OPTIMIZERS, "train.optimizer", optimizer, f"one of {OPTIMIZERS}")
  _real(config, "train.momentum", 0, 1, low_open=False, high_open=True)
  _integer(config, "train.warmup_epochs", 0)
  try:
    sharding.check_batch_size(config.train.batch_size)
    sharding.check_batch_size(config.train.eval_batch_size, "config.train.eval_batch_size")
  except ValueError as e:
    raise ConfigError(str(e)) from None
