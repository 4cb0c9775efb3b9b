"""A trained SLnL-rFA without the training stack: restore, classify clips and streams, export.

`Predictor.from_workdir(workdir, checkpoint="best" | "latest" | step)` restores only what inference needs: the
parameters and BatchNorm statistics of the checkpoint's train state (their moving averages for a run with
`config.train.ema_decay` > 0, as its evaluation used; not the optimiser's moments), and the model
config and class names saved beside it (`checkpointing.MODEL_INFO`). Neither TensorFlow nor the dataset is read.

One compiled program takes raw frames to probabilities, so that `predict`, `stream` and the exported file
(`export`, tools/export.py) compute the same function:

  skeleton (B, T, M_in, V, C) float32 raw frames, num_frames (B,) int32 valid frames of each clip
    -> persons cut or zero-padded to the model's M
    -> the evaluation pipeline's centred crop (ratio `eval_crop`) linearly resized to the model's T'
       (input_pipeline.crop_and_resize with offset 0.5, here in jax.numpy) and the optional turn to face +x
       (`align_joints`), centring and min-max normalisation; with `eval_clips` / `eval_offsets` / `eval_turns` > 1,
       S such views: crops of several ratios and starts, each at several turns about the vertical axis
       (config_checks.eval_views)
    -> SLnL-rFA -> softmax of the concatenated head (Eq. 17), or the mean of every head's softmax
       (`eval_heads` "all"), averaged over the S views  ->  (B, K) probabilities.

The exported program keeps B, T and M_in symbolic, so one file serves any batch, clip length and person count.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import math
import os
import pathlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from slnl_jax import checkpointing, config_checks, models, steps

TopK = list[tuple[str, float]]
EXPORT_PLATFORMS = ("cpu", "cuda", "tpu")
_FRAME_BUCKET = 64  # clips are zero-padded to a multiple of this many frames: few compiled shapes


def crop_and_resize(
  skeleton: jax.Array, num_frames: jax.Array, *, out_frames: int, ratio: float, offset_fraction: float = 0.5
) -> jax.Array:
  """An evaluation crop of input_pipeline.crop_and_resize (centred by default), in jax.numpy.

  The same float32 and integer arithmetic: `L = clip(floor(ratio * n + 0.5), 1, n)` frames starting at
  `min(floor(offset_fraction * (n - L + 1)), n - L)`, output frame i at crop position
  `i (L - 1) / (out_frames - 1)` as an exact quotient and remainder, linear interpolation between the two nearest
  frames.

  Args:
    skeleton: (T, M, V, C); frames from `num_frames` on are ignored.
    num_frames: int32 scalar, 1 <= num_frames <= T.

  Returns:
    (out_frames, M, V, C) float32.
  """
  n = num_frames.astype(jnp.float32)
  crop_len = jnp.clip(jnp.floor(jnp.float32(ratio) * n + 0.5).astype(jnp.int32), 1, num_frames)
  free = num_frames - crop_len
  start = jnp.minimum(jnp.floor(jnp.float32(offset_fraction) * (free + 1).astype(jnp.float32)).astype(jnp.int32), free)
  scaled = jnp.arange(out_frames, dtype=jnp.int32) * (crop_len - 1)
  denominator = max(out_frames - 1, 1)
  lo = scaled // denominator
  hi = jnp.minimum(lo + 1, crop_len - 1)
  weight = ((scaled % denominator).astype(jnp.float32) / denominator).reshape(-1, 1, 1, 1)
  before = skeleton[start + lo]
  after = skeleton[start + hi]
  return before + weight * (after - before)


def _clip_mean(skeleton: jax.Array, channels: int) -> tuple[jax.Array, jax.Array]:
  """input_pipeline._clip_mean in jax.numpy: the weight of the persons present and their mean over `channels`."""
  present = jnp.any(skeleton != 0.0, axis=(0, 2, 3))
  weight = present.astype(jnp.float32).reshape(1, -1, 1, 1)
  count = jnp.maximum(jnp.sum(weight) * (skeleton.shape[0] * skeleton.shape[2]), 1.0)
  return weight, jnp.sum(skeleton[..., :channels] * weight, axis=(0, 1, 2)) / count


def center_clip(skeleton: jax.Array, channels: int) -> jax.Array:
  """input_pipeline.center_clip in jax.numpy: the clip's mean position off the persons present."""
  weight, mean = _clip_mean(skeleton, channels)
  return jnp.concatenate([skeleton[..., :channels] - weight * mean, skeleton[..., channels:]], axis=-1)


def center_on_joint(skeleton: jax.Array, joint: int) -> jax.Array:
  """input_pipeline.center_on_joint in jax.numpy: the first person's `joint` in frame 0 off every person present."""
  present = jnp.any(skeleton != 0.0, axis=(0, 2, 3)).astype(jnp.float32).reshape(1, -1, 1, 1)
  return jnp.concatenate([skeleton[..., :3] - present * skeleton[0, 0, joint, :3], skeleton[..., 3:]], axis=-1)


def minmax_normalize(skeleton: jax.Array, isotropic: bool = False) -> jax.Array:
  """input_pipeline.minmax_normalize in jax.numpy: x, y, z of the persons present each onto [-1, 1], or
  (`isotropic`) each centred on its range's midpoint and all divided by half the largest extent."""
  inside = jnp.any(skeleton != 0.0, axis=(0, 2, 3)).reshape(1, -1, 1, 1)
  xyz = skeleton[..., :3]
  low = jnp.min(jnp.where(inside, xyz, jnp.inf), axis=(0, 1, 2))
  high = jnp.max(jnp.where(inside, xyz, -jnp.inf), axis=(0, 1, 2))
  extent = high - low
  span = jnp.max(extent) if isotropic else extent
  has_span = span > 0
  safe = jnp.where(has_span, span, 1.0)
  normalized = jnp.where(has_span, 2.0 * (xyz - low) / safe - extent / safe, 0.0)
  return jnp.concatenate([normalized * inside.astype(jnp.float32), skeleton[..., 3:]], axis=-1)


def rotate_clip(skeleton: jax.Array, angle: float | jax.Array) -> jax.Array:
  """input_pipeline.rotate_clip about y in jax.numpy: the persons present turned by `angle` radians about the
  vertical axis through the clip's mean position."""
  weight, mean = _clip_mean(skeleton, 3)
  x, y, z = jnp.moveaxis(skeleton[..., :3] - weight * mean, -1, 0)
  cos, sin = jnp.cos(jnp.float32(angle)), jnp.sin(jnp.float32(angle))
  rotated = jnp.stack([cos * x + sin * z, y, cos * z - sin * x], axis=-1)
  return jnp.concatenate([rotated + weight * mean, skeleton[..., 3:]], axis=-1)


def align_facing(skeleton: jax.Array, joints: tuple[int, ...]) -> jax.Array:
  """input_pipeline.align_facing in jax.numpy: turned about y so that person 0's summed left -> right vectors
  point along +x."""
  pairs = np.reshape(np.asarray(joints, np.int32), (-1, 2))
  first = skeleton[:, 0, :, :3]
  side = jnp.sum(first[:, pairs[:, 1]] - first[:, pairs[:, 0]], axis=(0, 1))
  return rotate_clip(skeleton, jnp.arctan2(side[2], side[0]))


def preprocess(
  skeleton: jax.Array,
  num_frames: jax.Array,
  data: ml_collections.ConfigDict,
  ratio: float,
  offset: float = 0.5,
  turn_deg: float = 0.0,
) -> jax.Array:
  """Raw frames (B, T, M_in, V, C) + valid frames (B,) -> the model's (B, M, T', V, C), as evaluation prepares
  its view of crop ratio `ratio` starting at `offset` turned by `turn_deg` (one of `config_checks.eval_views(data)`)."""
  batch, frames, _, joints, channels = skeleton.shape
  padding = jnp.zeros((batch, frames, data.num_persons, joints, channels), jnp.float32)
  # Cut or zero-pad to M persons in one op that also holds for a symbolic M_in.
  skeleton = jnp.concatenate([skeleton.astype(jnp.float32), padding], axis=2)[:, :, : data.num_persons]

  align, joint, minmax, isotropic = (
    config_checks.saved_setting(data, f"dataset.{k}")
    for k in ("align_joints", "center_joint", "minmax_normalize", "minmax_isotropic")
  )

  def one(clip: jax.Array, n: jax.Array) -> jax.Array:
    clip = crop_and_resize(clip, n, out_frames=data.num_frames, ratio=ratio, offset_fraction=offset)
    if align:
      clip = align_facing(clip, tuple(align))
    if turn_deg:
      clip = rotate_clip(clip, math.radians(turn_deg))
    # The order of input_pipeline._to_model_input.
    if data.center_channels:
      clip = center_clip(clip, data.center_channels)
    if joint >= 0:
      clip = center_on_joint(clip, joint)
    if minmax:
      clip = minmax_normalize(clip, isotropic)
    return clip.transpose(1, 0, 2, 3)

  return jax.vmap(one)(skeleton, num_frames.astype(jnp.int32))


def prepare_clip(skeleton: np.ndarray, config: ml_collections.ConfigDict) -> np.ndarray:
  """One clip (T, M, V, C) -> the model's (1, M', T', V, C) input, as evaluation prepares its crop of ratio
  `config.dataset.eval_crop`, not turned (`preprocess`): the single view of the default eval_clips = eval_turns = 1,
  and the one the pictures of tools/visualize.py show."""
  data = config.dataset
  skeleton = np.asarray(skeleton, np.float32)
  if skeleton.shape[2:] != (data.num_joints, data.num_channels):
    raise ValueError(
      f"the clip has {skeleton.shape[2]} joints x {skeleton.shape[3]} channels but the config's model expects "
      f"{data.num_joints} x {data.num_channels}"
    )
  return np.asarray(preprocess(skeleton[None], np.array([len(skeleton)], np.int32), data, data.eval_crop))


@dataclasses.dataclass(frozen=True)
class WindowPrediction:
  """The top-k classes of the frames [start, end) of a stream."""

  start: int
  end: int
  top: TopK


class Predictor:
  """A trained model's function from raw skeleton frames to class probabilities (see the module docstring)."""

  def __init__(
    self, config: ml_collections.ConfigDict, variables: Any, class_names: Sequence[str], step: int | None = None
  ):
    """`variables` = {"params", "batch_stats"} of `models.create_model(config)`; `step`: the checkpoint's."""
    if len(class_names) != config.dataset.num_classes:
      raise ValueError(f"{len(class_names)} class names for a model of {config.dataset.num_classes} classes")
    self.config = config
    self.variables = variables
    self.class_names = list(class_names)
    self.step = step
    model = models.create_model(config)
    self._jitted = jax.jit(_probabilities_fn(model, variables, config.dataset))
    # nonlocal_impl="auto" runs Pallas flash attention on cuda/tpu, whose kernels need a concrete batch size; the
    # exported program keeps the batch symbolic, so it uses the chunked non-local (the same function, and what
    # "auto" runs on CPU) on every platform.
    exportable = model.clone(nonlocal_impl="chunked") if model.nonlocal_impl == "auto" else model
    self._exportable = _probabilities_fn(exportable, variables, config.dataset)

  @classmethod
  def from_workdir(cls, workdir: str | os.PathLike, checkpoint: str | int = "best") -> Predictor:
    """Restores checkpoint "best" (by eval top-1) | "latest" | a step number of a trained workdir.

    Raises:
      checkpointing.CheckpointError: no such checkpoint, or one that cannot be read.
    """
    workdir = pathlib.Path(workdir)
    checkpoints = checkpointing.Checkpointer(checkpointing.directory_of(workdir), create=False)
    try:
      step = checkpoints.find_step(checkpoint)
      info = checkpoint_info(checkpoints, step, workdir)
      config = ml_collections.ConfigDict(info["config"])
      init = functools.partial(models.create_model(config).init, train=False)
      abstract = jax.eval_shape(init, jax.random.PRNGKey(0), jnp.zeros(steps.input_shape(config)))
      averaged = config_checks.saved_setting(config.train, "train.ema_decay") > 0
      variables = checkpoints.restore_variables(step, {"batch_stats": {}, **abstract}, averaged=averaged)
    finally:
      checkpoints.close()
    return cls(config, variables, info["class_names"], step)

  def probabilities(self, skeleton: np.ndarray, num_frames: np.ndarray | None = None) -> np.ndarray:
    """(B, K) probabilities of a batch of raw clips (B, T, M_in, V, C) with `num_frames` (B,) valid frames each."""
    skeleton = np.asarray(skeleton, np.float32)
    data = self.config.dataset
    if skeleton.ndim != 5 or skeleton.shape[3:] != (data.num_joints, data.num_channels):
      raise ValueError(
        f"expected clips (B, T, M, {data.num_joints}, {data.num_channels}) (joints x channels of the model), "
        f"got {skeleton.shape}"
      )
    if num_frames is None:
      num_frames = np.full(skeleton.shape[0], skeleton.shape[1], np.int32)
    num_frames = np.asarray(num_frames, np.int32)
    frames = skeleton.shape[1]
    if num_frames.shape != skeleton.shape[:1] or not np.all((num_frames >= 1) & (num_frames <= frames)):
      raise ValueError(f"num_frames must be (B,) values in [1, T={frames}], got {num_frames}")
    return np.asarray(self._jitted(skeleton, num_frames))

  def top_k(self, probabilities: np.ndarray, k: int) -> TopK:
    """The k most probable (class name, probability) of one (K,) row, most probable first."""
    best = np.argsort(-probabilities, kind="stable")[:k]
    return [(self.class_names[i], float(probabilities[i])) for i in best]

  def predict(self, clips: Sequence[np.ndarray], *, top_k: int = 5, batch_size: int = 32) -> list[TopK]:
    """The top-k classes of each raw clip (T, M, V, C), in batches of `batch_size` (lengths may differ)."""
    return [self.top_k(row, top_k) for row in self.clip_probabilities(clips, batch_size=batch_size)]

  def clip_probabilities(self, clips: Sequence[np.ndarray], *, batch_size: int = 32) -> np.ndarray:
    """(len(clips), K) class probabilities of raw clips (T, M, V, C) of any lengths, in batches of `batch_size`."""
    data = self.config.dataset
    rows: list[np.ndarray] = [np.zeros((0, data.num_classes), np.float32)]
    for first in range(0, len(clips), batch_size):
      chunk = [np.asarray(clip, np.float32) for clip in clips[first : first + batch_size]]
      for i, clip in enumerate(chunk):
        if clip.ndim != 4 or clip.shape[0] == 0:
          raise ValueError(f"clip {first + i}: expected (T, M, V, C) with T >= 1, got {clip.shape}")
        if clip.shape[2:] != (data.num_joints, data.num_channels):
          raise ValueError(
            f"clip {first + i}: {clip.shape[2]} joints x {clip.shape[3]} channels, but the model takes "
            f"{data.num_joints} x {data.num_channels}"
          )
      frames = -(-max(len(clip) for clip in chunk) // _FRAME_BUCKET) * _FRAME_BUCKET
      persons = max(clip.shape[1] for clip in chunk)
      # The batch is padded to `batch_size` clips too, so that every batch runs one compiled shape.
      batch = np.zeros((batch_size, frames, persons, *chunk[0].shape[2:]), np.float32)
      num_frames = np.ones(batch_size, np.int32)
      for i, clip in enumerate(chunk):
        batch[i, : len(clip), : clip.shape[1]] = clip
        num_frames[i] = len(clip)
      rows.append(self.probabilities(batch, num_frames)[: len(chunk)])
    return np.concatenate(rows)

  def stream(
    self, frames: Iterable[np.ndarray], *, window: int, stride: int, top_k: int = 5
  ) -> Iterator[WindowPrediction]:
    """Classifies a live stream: every `stride` frames, the last `window` frames as one clip.

    Args:
      frames: per-frame skeletons (M_f, V, C); M_f, the persons seen in that frame, may change from frame to
        frame (each frame is zero-padded or cut to the model's M).
      window: frames per prediction (the clip is then centre-cropped and resized as in evaluation).
      stride: frames between two predictions.

    Yields:
      The first after `window` frames, then one every `stride` frames.
    """
    if window < 1 or stride < 1:
      raise ValueError(f"window and stride must be >= 1, got window={window}, stride={stride}")
    data = self.config.dataset
    buffer: collections.deque[np.ndarray] = collections.deque(maxlen=window)
    for index, frame in enumerate(frames):
      frame = np.asarray(frame, np.float32)
      if frame.ndim != 3 or frame.shape[1:] != (data.num_joints, data.num_channels):
        raise ValueError(
          f"frame {index}: expected (persons, {data.num_joints}, {data.num_channels}), got {frame.shape}"
        )
      people = np.zeros((data.num_persons, *frame.shape[1:]), np.float32)
      people[: len(frame)] = frame[: data.num_persons]
      buffer.append(people)
      end = index + 1
      if end >= window and (end - window) % stride == 0:
        probabilities = self.probabilities(np.stack(buffer)[None])[0]
        yield WindowPrediction(start=end - window, end=end, top=self.top_k(probabilities, top_k))

  def export(self, path: str | os.PathLike, platforms: Sequence[str] = EXPORT_PLATFORMS) -> jax.export.Exported:
    """Writes the probabilities function, weights included, as `path` (jax.export) + `path`.json (class names).

    Batch, frames and persons stay symbolic. The exported function: (skeleton (B, T, M_in, V, C) float32 raw
    frames, num_frames (B,) int32 valid frames) -> (B, K) float32 probabilities; run it with jax alone:
    `jax.export.deserialize(path.read_bytes()).call(skeleton, num_frames)`.
    """
    data = self.config.dataset
    batch, frames, persons = jax.export.symbolic_shape("b, t, m")
    args = (
      jax.ShapeDtypeStruct((batch, frames, persons, data.num_joints, data.num_channels), jnp.float32),
      jax.ShapeDtypeStruct((batch,), jnp.int32),
    )
    exported = jax.export.export(jax.jit(self._exportable), platforms=tuple(platforms))(*args)
    path = pathlib.Path(path)
    path.write_bytes(exported.serialize())
    scored_by = config_checks.SCORED_BY[config_checks.saved_setting(data, "dataset.eval_heads")]
    info = {
      "class_names": self.class_names,
      "inputs": {
        "skeleton": f"(batch, frames, persons, {data.num_joints}, {data.num_channels}) float32 raw frames",
        "num_frames": "(batch,) int32 valid frames of each clip, 1..frames",
      },
      "outputs": f"(batch, {data.num_classes}) float32 class probabilities ({scored_by})",
      "platforms": list(exported.platforms),
      "checkpoint_step": self.step,
    }
    path.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    return exported


def _probabilities_fn(
  model: models.SLnLrFA, variables: Any, data: ml_collections.ConfigDict
) -> Callable[[jax.Array, jax.Array], jax.Array]:
  views = config_checks.eval_views(data)
  eval_heads = config_checks.saved_setting(data, "dataset.eval_heads")

  def probabilities(skeleton: jax.Array, num_frames: jax.Array) -> jax.Array:
    # The S views of every clip in one batch through the model, probabilities averaged as steps.eval_step does.
    batch = jnp.concatenate([preprocess(skeleton, num_frames, data, *view) for view in views])
    probs = steps.scored_probabilities(model.apply(variables, batch, train=False), eval_heads)
    return probs.reshape(len(views), skeleton.shape[0], probs.shape[-1]).mean(axis=0)

  return probabilities


def checkpoint_info(checkpoints: checkpointing.Checkpointer, step: int, workdir: pathlib.Path) -> dict[str, Any]:
  """Model config and class names of checkpoint `step` of `workdir`: those stored with it, else (a checkpoint
  that predates them) `_info_from_workdir`'s."""
  return checkpoints.model_info(step) or _info_from_workdir(workdir, checkpoints.directory / str(step))


def _info_from_workdir(workdir: pathlib.Path, checkpoint: pathlib.Path) -> dict[str, Any]:
  """Model config and class names for a checkpoint saved before they were stored with it: the workdir's
  config.json, and the class names of the built dataset (class indices when it is not on this machine)."""
  config_path = workdir / "config.json"
  if not config_path.is_file():
    raise checkpointing.CheckpointError(
      f"{checkpoint} stores no model config or class names (it predates them) and {config_path} is missing: "
      "copy the config.json of the run that wrote the checkpoint into the workdir"
    )
  config = json.loads(config_path.read_text())
  num_classes = config["dataset"]["num_classes"]
  return {"config": config, "class_names": _tfds_class_names(config, workdir) or [str(i) for i in range(num_classes)]}


def _tfds_class_names(config: dict[str, Any], workdir: pathlib.Path) -> list[str] | None:
  """The class names TFDS wrote as `label.labels.txt` with the built dataset, read without TensorFlow."""
  data = config["dataset"]
  # An empty data_dir means the trainer built the dataset inside the workdir (train.load_data).
  data_dir = pathlib.Path(os.path.expanduser(data["data_dir"])) if data["data_dir"] else workdir / "tfds"
  builder, _, builder_config = data["name"].partition("/")
  found = sorted((data_dir / builder).glob(f"{builder_config or '*'}/*/label.labels.txt"))
  return found[-1].read_text().splitlines() if found else None
