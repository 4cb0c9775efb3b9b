"""tf.data input pipeline: random/centred temporal crop, linear resize in time, batching, sharding.

The paper (Sec. 4.1) trains on a contiguous random crop of each clip's valid frames, ratio ~ U[0.5, 1], resized
("bilinear" in time) to a fixed T, and evaluates on a centred crop of ratio 0.95. Optional, off by default
(`config.dataset`): several evaluation crops, starts and turns per clip (`eval_clips`, `eval_offsets`,
`eval_turns`), view
normalisation of the cropped clip (turned to face one way, centring, min-max to [-1, 1]) at training and
evaluation, and a random view (mirror image, turn, tilt, scale) of training clips, as the field's N-UCLA
pipelines do. Order: crop, `align_facing`, the random mirror image or turn or the evaluation turn, then
`_to_model_input`'s centring and min-max.

Input datasets are the TFDS splits of `slnl_jax/data/builders.py` (or anything with the same element
structure): dicts with `skeleton` (T, M, V, C) float32 of variable length T, `label` int and `num_frames` int;
other keys are dropped.

Training batches are `{"skeleton": (B, M, T, V, C) float32, "label": (B,) int32}`, B being the per-process
batch; evaluation batches hold each clip's S views, skeleton (B, S, M, T, V, C), and a `"mask": (B,) bool`.
Randomness is a pure function of (seed, epoch, example index), so a resumed run replays an epoch exactly by
rebuilding it and skipping the batches already done.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from slnl_jax import config_checks

Features = dict[str, tf.Tensor]


def _hide_accelerators_from_tf() -> None:
  """TF only feeds data here; leave every accelerator's memory to JAX."""
  try:
    tf.config.set_visible_devices([], "GPU")
  except RuntimeError:  # TF already initialised its devices: too late to change, nothing to do.
    pass


_hide_accelerators_from_tf()


def crop_and_resize(
  skeleton: tf.Tensor,
  num_frames: tf.Tensor | int,
  *,
  out_frames: int,
  ratio: tf.Tensor | float,
  offset_fraction: tf.Tensor | float,
) -> tf.Tensor:
  """A contiguous temporal crop of the valid frames, linearly resized to `out_frames` (Sec. 4.1).

  The crop has `L = clip(round(ratio * num_frames), 1, num_frames)` frames and starts at frame
  `min(floor(offset_fraction * (d + 1)), d)`, `d = num_frames - L`: every valid start is equally likely for
  offset_fraction ~ U[0, 1), and offset_fraction = 0.5 centres the crop (`d / 2` rounded half up). Output frame
  i samples the crop at position `i * (L - 1) / (out_frames - 1)` (first and last crop frames kept exactly)
  with linear interpolation between the two nearest frames; joints and channels are untouched.

  Args:
    skeleton: (T, M, V, C) clip; only its first `num_frames` frames are valid (the rest may be padding).
    num_frames: number of valid frames, 1 <= num_frames <= T.
    out_frames: number of output frames.
    ratio: crop length as a fraction of num_frames.
    offset_fraction: crop start as a fraction of the free frames `num_frames - L`, in [0, 1].

  Returns:
    (out_frames, M, V, C) float32.
  """
  skeleton = tf.convert_to_tensor(skeleton, tf.float32)
  num_frames = tf.cast(num_frames, tf.int32)
  tf.debugging.assert_rank(skeleton, 4, message="skeleton must be (T, M, V, C)")
  checks = [
    tf.debugging.assert_positive(num_frames, message="a clip needs at least one valid frame"),
    tf.debugging.assert_less_equal(
      num_frames, tf.shape(skeleton)[0], message="num_frames exceeds the skeleton's length"
    ),
  ]
  # Inside tf.data's graph functions asserts only run when something depends on them.
  with tf.control_dependencies(checks):
    num_frames = tf.identity(num_frames)
  n = tf.cast(num_frames, tf.float32)
  crop_len = tf.clip_by_value(tf.cast(tf.floor(tf.cast(ratio, tf.float32) * n + 0.5), tf.int32), 1, num_frames)
  free = num_frames - crop_len
  start = tf.minimum(
    tf.cast(tf.floor(tf.cast(offset_fraction, tf.float32) * tf.cast(free + 1, tf.float32)), tf.int32),
    free,
  )
  # Positions as exact integer quotient + remainder: no float rounding of the frame index, even for long clips.
  steps = tf.range(out_frames, dtype=tf.int32) * (crop_len - 1)
  denominator = max(out_frames - 1, 1)
  lo = steps // denominator
  hi = tf.minimum(lo + 1, crop_len - 1)
  weight = tf.reshape(tf.cast(steps % denominator, tf.float32) / denominator, (-1, 1, 1, 1))
  before = tf.gather(skeleton, start + lo)
  after = tf.gather(skeleton, start + hi)
  return before + weight * (after - before)


def _clip_mean(skeleton: tf.Tensor, channels: int) -> tuple[tf.Tensor, tf.Tensor]:
  """(M, 1, 1)-broadcastable weight of the persons present (not all-zero) and their mean over the first `channels`."""
  present = tf.reduce_any(tf.not_equal(skeleton, 0.0), axis=(0, 2, 3))  # (M,)
  weight = tf.reshape(tf.cast(present, tf.float32), (1, -1, 1, 1))
  frames_joints = tf.cast(tf.shape(skeleton)[0] * tf.shape(skeleton)[2], tf.float32)
  count = tf.maximum(tf.reduce_sum(weight) * frames_joints, 1.0)
  return weight, tf.reduce_sum(skeleton[..., :channels] * weight, axis=(0, 1, 2)) / count


def center_clip(skeleton: tf.Tensor, channels: int) -> tf.Tensor:
  """Subtracts the clip's mean position from the first `channels` channels of the persons present.

  The mean runs over all frames and joints of every person that is not all-zero (a zero-padded person slot
  stays zero, so the model still sees it as absent); channels past `channels` (e.g. a detection score) are
  untouched. Removes where the subject stands, which a skeleton action rarely depends on.

  Args:
    skeleton: (T, M, V, C) float32 clip.
    channels: the number of leading coordinate channels to centre, 0 <= channels <= C.

  Returns:
    The centred clip, same shape.
  """
  weight, mean = _clip_mean(skeleton, channels)
  return tf.concat([skeleton[..., :channels] - weight * mean, skeleton[..., channels:]], axis=-1)


def rotate_clip(skeleton: tf.Tensor, angle: tf.Tensor, axis: str = "y") -> tf.Tensor:
  """Rotates the persons present by `angle` radians about the `axis` ("y" or "x") through the clip's mean position.

  About y, the vertical axis, a camera moved around the subject (x' = x cos a + z sin a, z' = z cos a - x sin a);
  about x, a camera tilted up or down (y' = y cos a - z sin a, z' = z cos a + y sin a); both about the mean, the
  third coordinate and channels past xyz untouched; an all-zero person slot stays zero. Our augmentation, not
  the paper's: the field's N-UCLA pipelines (CTR-GCN's feeder_ucla) turn training clips about y and x so that
  a model sees more views than the cameras had.
  """
  weight, mean = _clip_mean(skeleton, 3)
  x, y, z = tf.unstack(skeleton[..., :3] - weight * mean, axis=-1)
  cos, sin = tf.cos(angle), tf.sin(angle)
  if axis == "y":
    rotated = tf.stack([cos * x + sin * z, y, cos * z - sin * x], axis=-1)
  elif axis == "x":
    rotated = tf.stack([x, cos * y - sin * z, cos * z + sin * y], axis=-1)
  else:
    raise ValueError(f"axis must be 'y' or 'x', got {axis!r}")
  return tf.concat([rotated + weight * mean, skeleton[..., 3:]], axis=-1)


def align_facing(skeleton: tf.Tensor, joints: tuple[int, ...]) -> tf.Tensor:
  """Turns the clip about the vertical axis so that its first person's left -> right vectors point along +x.

  `joints` = (l1, r1, l2, r2, ...): the vectors from joint l to joint r of person 0, summed over the pairs and the
  frames, give the body's side-to-side direction d = (d_x, d_z) on the floor; the clip is turned by
  atan2(d_z, d_x) about y through its mean (`rotate_clip`), which takes d onto +x. The same body motion then
  reaches the model the same way whichever camera recorded it (2s-AGCN's NTU pre-normalisation turns the first
  frame's shoulders onto x likewise; ours sums over the clip so one noisy frame does not set the view).
  Our option, not the paper's, whose transform network is meant to learn the view. d = 0 leaves the clip as it is.
  """
  pairs = np.reshape(np.asarray(joints, np.int32), (-1, 2))
  first = skeleton[:, 0, :, :3]  # (T, V, xyz)
  side = tf.reduce_sum(tf.gather(first, pairs[:, 1], axis=1) - tf.gather(first, pairs[:, 0], axis=1), axis=(0, 1))
  return rotate_clip(skeleton, tf.atan2(side[2], side[0]), "y")


def mirror_clip(skeleton: tf.Tensor, pairs: tuple[int, ...]) -> tf.Tensor:
  """The clip's mirror image: x reflected about the clip's mean position and each (left, right) pair of joints of
  `pairs` = (l1, r1, l2, r2, ...) swapped, so a right-handed action becomes the same action done left-handed by a
  body that is still a body (reflecting x alone would put the left arm on the right). An absent person stays 0."""
  order = np.arange(skeleton.shape[2])
  left, right = np.reshape(np.asarray(pairs, np.int64), (-1, 2)).T
  order[left], order[right] = right, left
  weight, mean = _clip_mean(skeleton, 3)
  swapped = tf.gather(skeleton, order, axis=2)
  x = 2.0 * weight[..., 0] * mean[0] - swapped[..., 0]
  return tf.concat([x[..., None], swapped[..., 1:]], axis=-1)


def scale_clip(skeleton: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
  """Scales the xyz of the persons present by `scale` about the clip's mean position (an absent person stays 0)."""
  weight, mean = _clip_mean(skeleton, 3)
  scaled = scale * (skeleton[..., :3] - weight * mean) + weight * mean
  return tf.concat([scaled, skeleton[..., 3:]], axis=-1)


def shear_clip(skeleton: tf.Tensor, shear: tf.Tensor) -> tf.Tensor:
  """Applies the 3 x 3 matrix `shear` (ones on its diagonal in use) to the xyz of the persons present about the
  clip's mean position: xyz' = S (xyz - mean) + mean. A skeleton augmentation of the field (AimCLR, CrosSCLR):
  an affine view change that turns alone do not make. An absent person stays 0."""
  weight, mean = _clip_mean(skeleton, 3)
  sheared = tf.einsum("ij,tmvj->tmvi", shear, skeleton[..., :3] - weight * mean) + weight * mean
  return tf.concat([sheared, skeleton[..., 3:]], axis=-1)


def center_on_joint(skeleton: tf.Tensor, joint: int) -> tf.Tensor:
  """Subtracts the xyz of `joint` of the first person in the first frame from every person present.

  CTR-GCN's N-UCLA feeder centres each clip so (joint 1, the spine of the Kinect v1 skeleton): the clip then
  starts at the origin wherever the subject stood. One offset for all persons keeps where they stand relative to
  each other; an all-zero person slot stays zero. Before `minmax_normalize` it changes nothing (min-max ignores
  a shift); CTR-GCN does both.
  """
  present = tf.reduce_any(tf.not_equal(skeleton, 0.0), axis=(0, 2, 3))
  weight = tf.reshape(tf.cast(present, tf.float32), (1, -1, 1, 1))
  return tf.concat([skeleton[..., :3] - weight * skeleton[0, 0, joint, :3], skeleton[..., 3:]], axis=-1)


def minmax_normalize(skeleton: tf.Tensor, isotropic: bool = False) -> tf.Tensor:
  """Maps each of x, y, z of the clip linearly onto [-1, 1]: its min over frames, joints and persons present to -1,
  its max to 1 (CTR-GCN's N-UCLA feeder). An axis without extent (max = min) becomes 0; an all-zero person slot
  stays zero and is left out of the min and max. Removes the subject's size and distance from the camera, and
  with them a random scale of the clip: `train_scale_range` does nothing under it.

  `isotropic`: one scale for all three axes instead (`dataset.minmax_isotropic`): each axis centred on the
  midpoint of its range and divided by half the largest axis's extent, so the largest axis spans [-1, 1] and the
  body keeps its proportions; a turn of the clip then reaches the model as a turn, up to a shift and one scale."""
  present = tf.reduce_any(tf.not_equal(skeleton, 0.0), axis=(0, 2, 3))
  inside = tf.reshape(present, (1, -1, 1, 1))
  xyz = skeleton[..., :3]
  low = tf.reduce_min(tf.where(inside, xyz, math.inf), axis=(0, 1, 2))
  high = tf.reduce_max(tf.where(inside, xyz, -math.inf), axis=(0, 1, 2))
  extent = high - low  # -inf when nobody is present: then every slot is zero and stays so
  span = tf.reduce_max(extent) if isotropic else extent
  has_span = span > 0
  safe = tf.where(has_span, span, 1.0)
  # 2 (x - low) / span - extent / span: per axis extent / span is exactly 1, isotropic it centres the axis's range.
  normalized = tf.where(has_span, 2.0 * (xyz - low) / safe - extent / safe, 0.0)
  normalized *= tf.cast(inside, tf.float32)
  return tf.concat([normalized, skeleton[..., 3:]], axis=-1)


def augment_view(skeleton: tf.Tensor, key: tf.Tensor, data: ml_collections.ConfigDict) -> tf.Tensor:
  """The training clip's random view: a mirror image, a turn about y, a tilt about x, a scale, then a shear, each
  drawn by its own key.

  Each draw folds its own number into the example's `key`, so turning one on leaves the crop and the other
  draws as they were: mirrored (`mirror_clip` of `train_mirror_pairs`) with probability 1/2,
  U[-train_rotation_deg, +] about y, U[-train_tilt_deg, +] about x (CTR-GCN draws both in [-60, 60] degrees),
  a scale U[1 - train_scale_range, 1 + train_scale_range], a shear (`shear_clip`) whose six off-diagonal entries
  are U[-train_shear, train_shear]; all about the clip's mean.
  """

  def uniform(number: int) -> tf.Tensor:
    return tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(key, number), -1.0, 1.0)

  pairs = tuple(data.train_mirror_pairs)
  if pairs:
    skeleton = tf.cond(uniform(4) < 0.0, lambda: mirror_clip(skeleton, pairs), lambda: skeleton)
  if data.train_rotation_deg:
    skeleton = rotate_clip(skeleton, uniform(1) * math.radians(data.train_rotation_deg), "y")
  if data.train_tilt_deg:
    skeleton = rotate_clip(skeleton, uniform(2) * math.radians(data.train_tilt_deg), "x")
  if data.train_scale_range:
    skeleton = scale_clip(skeleton, 1.0 + uniform(3) * data.train_scale_range)
  if data.train_shear:
    off_diagonal = data.train_shear * tf.random.stateless_uniform(
      [3, 3], tf.random.experimental.stateless_fold_in(key, 5), -1.0, 1.0
    )
    skeleton = shear_clip(skeleton, tf.linalg.set_diag(off_diagonal, tf.ones([3])))
  return skeleton


def count_examples(ds: tf.data.Dataset) -> int:
  """Number of elements of a finite dataset: its known cardinality, else one pass over it."""
  cardinality = int(ds.cardinality())
  if cardinality == tf.data.INFINITE_CARDINALITY:
    raise ValueError("cannot count the examples of an infinite dataset")
  if cardinality >= 0:
    return cardinality
  return int(ds.reduce(np.int64(0), lambda count, _: count + 1))


def _check_input(ds: tf.data.Dataset, config: ml_collections.ConfigDict) -> None:
  """Clear errors for a dataset that does not look like a skeleton split of the configured shape."""
  spec = ds.element_spec
  missing = {"skeleton", "label", "num_frames"} - set(spec if isinstance(spec, dict) else ())
  if missing:
    raise ValueError(f"dataset elements must be dicts with keys {sorted(missing)}; got {spec}")
  shape = spec["skeleton"].shape
  if shape.rank != 4:
    raise ValueError(f"'skeleton' must be (T, M, V, C); got shape {shape}")
  expected = {
    "persons (M)": config.dataset.num_persons,
    "joints (V)": config.dataset.num_joints,
    "channels (C)": config.dataset.num_channels,
  }
  for (what, want), got in zip(expected.items(), shape[1:], strict=True):
    if got is not None and got != want:
      raise ValueError(f"'skeleton' has {got} {what} but config.dataset expects {want}")


def _per_process_batch(global_batch_size: int, process_count: int) -> int:
  if global_batch_size <= 0 or global_batch_size % process_count:
    raise ValueError(
      f"global_batch_size={global_batch_size} must be positive and divisible by process_count={process_count}"
    )
  return global_batch_size // process_count


def _to_model_input(skeleton: tf.Tensor, label: tf.Tensor, config: ml_collections.ConfigDict) -> Features:
  """(T, M, V, C) -> the model's (M, T, V, C) after the configured normalisation (centring on the clip mean,
  on a joint, min-max to [-1, 1], in that order; inference.preprocess does the same); int32 labels."""
  data = config.dataset
  if data.center_channels:
    skeleton = center_clip(skeleton, data.center_channels)
  if data.center_joint >= 0:
    skeleton = center_on_joint(skeleton, data.center_joint)
  if data.minmax_normalize:
    skeleton = minmax_normalize(skeleton, data.minmax_isotropic)
  return {"skeleton": tf.transpose(skeleton, (1, 0, 2, 3)), "label": tf.cast(label, tf.int32)}


def train_dataset(
  ds: tf.data.Dataset,
  *,
  config: ml_collections.ConfigDict,
  global_batch_size: int,
  seed: int,
  epoch: int,
  process_index: int = 0,
  process_count: int = 1,
) -> tf.data.Dataset:
  """One training epoch of this process's shard: shuffled, randomly cropped and resized, batched.

  `ds` must yield examples in a fixed order (e.g. TFDS `as_dataset(shuffle_files=False)`). Process p keeps
  examples p, p + P, ... and every process yields exactly `count_examples(ds) // global_batch_size` batches of
  `global_batch_size // process_count`, so multi-host steps stay in lockstep. The shuffle seed derives from
  (seed, epoch) and each crop from (seed, epoch, index of the example in `ds`): an epoch replays exactly
  whatever tf.data's parallelism, an example's crop does not depend on the process count, and both change
  from one epoch to the next. A resumed run rebuilds its epoch and `.skip()`s the batches already done.
  """
  _check_input(ds, config)
  batch_size = _per_process_batch(global_batch_size, process_count)
  num_batches = count_examples(ds) // global_batch_size
  if num_batches == 0:
    raise ValueError(f"fewer examples than one global batch of {global_batch_size}")
  shuffle_key, crop_key = tf.unstack(tf.random.experimental.stateless_split(tf.constant([seed, epoch], tf.int64), 2))
  shuffle_seed = int(tf.random.stateless_uniform([], shuffle_key, minval=None, maxval=None, dtype=tf.int64))
  data = config.dataset

  def preprocess(local_index: tf.Tensor, example: Features) -> Features:
    index = local_index * process_count + process_index  # position in the unsharded `ds`
    key = tf.random.experimental.stateless_fold_in(crop_key, index)
    ratio, offset = tf.unstack(tf.random.stateless_uniform([2], key))
    skeleton = crop_and_resize(
      example["skeleton"],
      example["num_frames"],
      out_frames=data.num_frames,
      ratio=data.train_crop_min + (1.0 - data.train_crop_min) * ratio,
      offset_fraction=offset,
    )
    if data.align_joints:
      skeleton = align_facing(skeleton, data.align_joints)
    skeleton = augment_view(skeleton, key, data)
    return _to_model_input(skeleton, example["label"], config)

  ds = ds.shard(process_count, process_index).enumerate()
  ds = ds.shuffle(data.shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=False)
  ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.batch(batch_size, drop_remainder=True).take(num_batches)
  return ds.prefetch(tf.data.AUTOTUNE)


def eval_dataset(
  ds: tf.data.Dataset,
  *,
  config: ml_collections.ConfigDict,
  global_batch_size: int,
  process_index: int = 0,
  process_count: int = 1,
  drop_remainder: bool = False,
) -> tf.data.Dataset:
  """This process's shard, centre-cropped and resized, in order: each example's skeleton is (S, M, T, V, C),
  its S evaluation views (`config_checks.eval_views`: crops, each at every turn about the vertical axis; one crop
  of ratio `config.dataset.eval_crop` by default).

  Each batch carries a boolean "mask". With `drop_remainder=False` every example of `ds` appears exactly once
  over all processes with mask True: each process's shard (examples p, p + P, ...) is padded with all-zero,
  mask-False examples up to `ceil(ceil(N / P) / B)` batches of B = global_batch_size // P, the same number on
  every process so multi-host eval steps stay in lockstep. Metrics must be weighted by the mask; the number
  of real examples is `count_examples(ds)`. With `drop_remainder=True` each process yields
  `(N // P) // B` full batches (all mask True) and the rest is not evaluated.
  """
  _check_input(ds, config)
  batch_size = _per_process_batch(global_batch_size, process_count)
  total = count_examples(ds)
  if total == 0:
    raise ValueError("the evaluation dataset is empty")
  data = config.dataset
  views = config_checks.eval_views(data)  # Python values, outside the traced functions

  def view(example: Features, ratio: float, offset: float, turn_deg: float) -> tf.Tensor:
    skeleton = crop_and_resize(
      example["skeleton"], example["num_frames"], out_frames=data.num_frames, ratio=ratio, offset_fraction=offset
    )
    if data.align_joints:
      skeleton = align_facing(skeleton, data.align_joints)
    if turn_deg:
      skeleton = rotate_clip(skeleton, tf.constant(math.radians(turn_deg)), "y")
    return _to_model_input(skeleton, example["label"], config)["skeleton"]

  def preprocess(example: Features) -> Features:
    skeleton = tf.stack([view(example, *each) for each in views])
    return {"skeleton": skeleton, "label": tf.cast(example["label"], tf.int32), "mask": tf.constant(True)}

  shard = ds.shard(process_count, process_index).map(
    preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
  )
  if drop_remainder:
    shard = shard.batch(batch_size, drop_remainder=True).take(total // process_count // batch_size)
    return shard.prefetch(tf.data.AUTOTUNE)
  shard_size = len(range(process_index, total, process_count))
  largest_shard = -(-total // process_count)  # process 0's
  num_batches = -(-largest_shard // batch_size)
  # Padding is built from the first global example so that even an empty shard (N < P) can be padded.
  padding = (
    ds.take(1)
    .map(preprocess)
    .map(lambda example: tf.nest.map_structure(tf.zeros_like, example))
    .repeat(num_batches * batch_size - shard_size)
  )
  shard = shard.concatenate(padding).batch(batch_size, drop_remainder=True)
  return shard.prefetch(tf.data.AUTOTUNE)


def as_numpy(ds: tf.data.Dataset) -> Iterator[dict[str, np.ndarray]]:
  """Iterate a batched dataset as dicts of numpy arrays, ready to shard over devices."""
  return iter(tfds.as_numpy(ds))
