"""Tests of slnl_jax/input_pipeline.py against hand-worked values, numpy.interp and ramp signals.

A "ramp" clip has value t in channel 0 of frame t and its example id in channel 1, so the frames a crop kept
and the example it came from can be read back from the pipeline's output.
"""

import collections
import math

import numpy as np
import pytest
import tensorflow as tf

from configs import default
from slnl_jax import input_pipeline

M, V, C, T_OUT = 1, 2, 2, 8
PAD_VALUE = 1e6  # frames past num_frames: must never leak into a crop


def _config(**dataset):
  config = default.get_config()
  config.dataset.update(
    {
      "num_persons": M,
      "num_joints": V,
      "num_channels": C,
      "num_frames": T_OUT,
      "shuffle_buffer": 64,
      **dataset,
    }
  )
  return config


def _ramp(num_frames: int, example_id: int, padded_to: int | None = None) -> np.ndarray:
  skeleton = np.full((padded_to or num_frames, M, V, C), PAD_VALUE, np.float32)
  skeleton[:num_frames, ..., 0] = np.arange(num_frames, dtype=np.float32)[:, None, None]
  skeleton[:num_frames, ..., 1] = example_id
  return skeleton


def _lengths(n: int) -> list[int]:
  return [10 + (7 * i) % 31 for i in range(n)]  # 10..40 frames, varied


def _ramp_dataset(n: int) -> tf.data.Dataset:
  """TFDS-like elements (variable-length skeleton, int64 label = example id, extra keys), unknown cardinality."""

  def generate():
    for i, length in enumerate(_lengths(n)):
      yield {
        "skeleton": _ramp(length, i),
        "label": np.int64(i),
        "num_frames": np.int32(length),
        "name": f"clip{i}",
      }

  signature = {
    "skeleton": tf.TensorSpec((None, M, V, C), tf.float32),
    "label": tf.TensorSpec((), tf.int64),
    "num_frames": tf.TensorSpec((), tf.int32),
    "name": tf.TensorSpec((), tf.string),
  }
  return tf.data.Dataset.from_generator(generate, output_signature=signature)


def _train(ds, *, seed=0, epoch=0, batch=4, process_index=0, process_count=1, **dataset):
  return list(
    input_pipeline.as_numpy(
      input_pipeline.train_dataset(
        ds,
        config=_config(**dataset),
        global_batch_size=batch,
        seed=seed,
        epoch=epoch,
        process_index=process_index,
        process_count=process_count,
      )
    )
  )


def _eval_with_crops(ds, *, batch=4, process_index=0, process_count=1, drop_remainder=False, **dataset):
  """Evaluation batches as the pipeline yields them: skeleton (B, S, M, T, V, C), S crops per clip."""
  return list(
    input_pipeline.as_numpy(
      input_pipeline.eval_dataset(
        ds,
        config=_config(**dataset),
        global_batch_size=batch,
        process_index=process_index,
        process_count=process_count,
        drop_remainder=drop_remainder,
      )
    )
  )


def _eval(ds, **kwargs):
  """Evaluation batches of the default single crop, its crop axis removed: skeleton (B, M, T, V, C)."""
  batches = _eval_with_crops(ds, **kwargs)
  for batch in batches:
    assert batch["skeleton"].shape[1] == 1
    batch["skeleton"] = batch["skeleton"][:, 0]
  return batches


def _crops(batches) -> dict[int, tuple[int, int]]:
  """example id -> (first, last) source frame of its crop, after checking the crop is a linear ramp."""
  crops = {}
  for batch in batches:
    for skeleton, label in zip(batch["skeleton"], batch["label"], strict=True):
      frames = skeleton[0, :, 0, 0]  # person 0, joint 0, channel 0: the source frame index
      assert np.all(skeleton[..., 1] == label)
      np.testing.assert_allclose(frames, np.linspace(frames[0], frames[-1], T_OUT), atol=1e-4)
      first, last = np.round(frames[[0, -1]]).astype(int)
      np.testing.assert_allclose(frames[[0, -1]], [first, last], atol=1e-5)
      crops[int(label)] = (int(first), int(last))
  return crops


def _resize(skeleton, **kwargs):
  num_frames = kwargs.pop("num_frames", skeleton.shape[0])
  return input_pipeline.crop_and_resize(skeleton, num_frames, **kwargs).numpy()


def test_resize_three_frames_to_five_gives_midpoints():
  skeleton = np.array([0.0, 2.0, 10.0], np.float32).reshape(3, 1, 1, 1)
  out = _resize(skeleton, out_frames=5, ratio=1.0, offset_fraction=0.0)
  assert out.shape == (5, 1, 1, 1) and out.dtype == np.float32
  np.testing.assert_allclose(out.ravel(), [0.0, 1.0, 2.0, 6.0, 10.0])


@pytest.mark.parametrize(("num_frames", "out_frames"), [(13, 8), (5, 64), (64, 64), (300, 64), (1, 4)])
def test_resize_matches_numpy_interp(num_frames, out_frames):
  rng = np.random.default_rng(num_frames)
  skeleton = rng.normal(size=(num_frames, 2, 3, 2)).astype(np.float32)
  out = _resize(skeleton, out_frames=out_frames, ratio=1.0, offset_fraction=0.0)
  positions = np.linspace(0, num_frames - 1, out_frames)
  for m, v, c in np.ndindex(2, 3, 2):
    expected = np.interp(positions, np.arange(num_frames), skeleton[:, m, v, c])
    np.testing.assert_allclose(out[:, m, v, c], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
  ("num_frames", "ratio", "offset", "first", "last"),
  [
    (10, 0.5, 0.0, 0, 4),  # 5 frames from the start
    (10, 0.5, 0.999, 5, 9),  # 5 frames ending at the last valid frame
    (10, 0.5, 0.5, 3, 7),  # 5 free frames: centred start 2.5 rounds up to 3
    (40, 0.95, 0.5, 1, 38),  # eval crop: 38 frames, one dropped at each end
    (100, 0.95, 0.5, 3, 97),  # 95 frames, 5 free: 3 dropped before, 2 after
    (7, 0.01, 0.0, 0, 0),  # never shorter than one frame
  ],
)
def test_crop_hand_worked(num_frames, ratio, offset, first, last):
  skeleton = _ramp(num_frames, 0, padded_to=num_frames + 5)
  out = _resize(skeleton, num_frames=num_frames, out_frames=T_OUT, ratio=ratio, offset_fraction=offset)
  np.testing.assert_allclose(out[:, 0, 0, 0], np.linspace(first, last, T_OUT), atol=1e-4)


def test_crop_rejects_clips_without_valid_frames():
  with pytest.raises(tf.errors.InvalidArgumentError, match="at least one valid frame"):
    _resize(np.zeros((4, M, V, C), np.float32), num_frames=0, out_frames=4, ratio=1.0, offset_fraction=0.0)
  with pytest.raises(tf.errors.InvalidArgumentError, match="exceeds"):
    _resize(np.zeros((4, M, V, C), np.float32), num_frames=5, out_frames=4, ratio=1.0, offset_fraction=0.0)
  # Also inside tf.data's graph functions, where an unused assert would silently not run.
  ds = tf.data.Dataset.from_tensor_slices(
    {
      "skeleton": np.zeros((4, 5, M, V, C), np.float32),
      "label": np.arange(4),
      "num_frames": np.array([5, 0, 5, 5], np.int32),
    }
  )
  with pytest.raises(tf.errors.InvalidArgumentError, match="at least one valid frame"):
    _eval(ds)


def test_train_crops_are_contiguous_valid_and_span_the_ratio_range():
  n = 64
  lengths = _lengths(n)
  ratios, starts = [], []
  for epoch in range(4):
    crops = _crops(_train(_ramp_dataset(n), epoch=epoch, batch=8))
    assert len(crops) == n  # 64 examples, 8 full batches: every example once
    for i, (first, last) in crops.items():
      crop_len = last - first + 1
      assert 0 <= first and last <= lengths[i] - 1  # inside the valid frames (a pad frame would read 1e6)
      assert np.floor(0.5 * lengths[i] + 0.5) <= crop_len <= lengths[i]
      ratios.append(crop_len / lengths[i])
      starts.append(first / max(lengths[i] - crop_len, 1))
  # U[0.5, 1] ratios and U[0, 1] offsets: 256 draws reach near both ends of each range.
  assert min(ratios) < 0.6 and max(ratios) > 0.95
  assert min(starts) == 0.0 and max(starts) == 1.0


def test_eval_clips_are_centred_crops_evenly_spaced_over_the_training_ratios():
  # train_crop_min 0.4, 4 clips: ratios 0.4, 0.6, 0.8, 1.0 (eval_crop 0.95 is not used).
  n = 6
  lengths = _lengths(n)
  batches = _eval_with_crops(_ramp_dataset(n), batch=2, eval_clips=4, train_crop_min=0.4)
  for s, ratio in enumerate((0.4, 0.6, 0.8, 1.0)):
    crops = _crops([{**batch, "skeleton": batch["skeleton"][:, s]} for batch in batches])
    assert sorted(crops) == list(range(n))
    for i, (first, last) in crops.items():
      assert last - first + 1 == int(ratio * lengths[i] + 0.5)
      assert first - (lengths[i] - 1 - last) in (0, 1)  # centred, an odd free frame dropped before


def test_eval_offsets_take_each_shorter_crop_from_the_clips_start_to_its_end():
  # 2 clips (ratios 0.5, 1.0) x 3 offsets: the half crop at the start, the middle and the end; the whole clip once.
  n = 6
  lengths = _lengths(n)
  batches = _eval_with_crops(_ramp_dataset(n), batch=2, eval_clips=2, eval_offsets=3, train_crop_min=0.5)
  assert batches[0]["skeleton"].shape[1] == 4
  for s in range(4):
    crops = _crops([{**batch, "skeleton": batch["skeleton"][:, s]} for batch in batches])
    assert sorted(crops) == list(range(n))
    for i, (first, last) in crops.items():
      half = int(0.5 * lengths[i] + 0.5)
      free = lengths[i] - half
      middle = min((free + 1) // 2, free)  # centred, an odd free frame dropped before
      expected = [(0, half - 1), (middle, middle + half - 1), (free, lengths[i] - 1), (0, lengths[i] - 1)]
      assert (first, last) == expected[s]


def test_eval_crop_is_centred_with_ratio_095():
  n = 12
  lengths = _lengths(n)
  crops = _crops(_eval(_ramp_dataset(n), batch=4))
  assert sorted(crops) == list(range(n))
  for i, (first, last) in crops.items():
    crop_len = last - first + 1
    assert crop_len == int(0.95 * lengths[i] + 0.5)
    dropped_before, dropped_after = first, lengths[i] - 1 - last
    assert dropped_before - dropped_after in (0, 1)


def test_batch_shapes_and_dtypes():
  train = _train(_ramp_dataset(10), batch=4)
  assert len(train) == 2  # 10 // 4, remainder dropped
  for batch in train:
    assert set(batch) == {"skeleton", "label"}
    assert batch["skeleton"].shape == (4, M, T_OUT, V, C) and batch["skeleton"].dtype == np.float32
    assert batch["label"].shape == (4,) and batch["label"].dtype == np.int32
  for clips in (1, 3):
    evaluation = _eval_with_crops(_ramp_dataset(10), batch=4, eval_clips=clips)
    assert len(evaluation) == 3
    for batch in evaluation:
      assert set(batch) == {"skeleton", "label", "mask"}
      assert batch["skeleton"].shape == (4, clips, M, T_OUT, V, C) and batch["skeleton"].dtype == np.float32
    assert batch["label"].dtype == np.int32 and batch["mask"].dtype == np.bool_


def test_persons_axis_moves_before_time():
  skeleton = np.zeros((6, 2, V, C), np.float32)
  skeleton[:, 1] = 1.0  # person 1 is all ones, person 0 all zeros
  ds = tf.data.Dataset.from_tensor_slices(
    {"skeleton": skeleton[None].repeat(4, 0), "label": np.arange(4), "num_frames": np.full(4, 6, np.int32)}
  )
  config = _config(num_persons=2)
  (batch,) = input_pipeline.as_numpy(
    input_pipeline.train_dataset(ds, config=config, global_batch_size=4, seed=0, epoch=0)
  )
  assert batch["skeleton"].shape == (4, 2, T_OUT, V, C)
  assert np.all(batch["skeleton"][:, 0] == 0.0) and np.all(batch["skeleton"][:, 1] == 1.0)


def test_train_is_deterministic_per_seed_and_epoch_and_resumable():
  first = _train(_ramp_dataset(24), seed=3, epoch=5)
  again = _train(_ramp_dataset(24), seed=3, epoch=5)
  for a, b in zip(first, again, strict=True):
    np.testing.assert_array_equal(a["skeleton"], b["skeleton"])
    np.testing.assert_array_equal(a["label"], b["label"])
  for other in (_train(_ramp_dataset(24), seed=3, epoch=6), _train(_ramp_dataset(24), seed=4, epoch=5)):
    orders_differ = any(np.any(a["label"] != b["label"]) for a, b in zip(first, other, strict=True))
    assert orders_differ
    assert _crops(first) != _crops(other)
  # A resumed run rebuilds the epoch and skips the batches already done.
  ds = input_pipeline.train_dataset(_ramp_dataset(24), config=_config(), global_batch_size=4, seed=3, epoch=5)
  resumed = list(input_pipeline.as_numpy(ds.skip(2)))
  assert len(resumed) == len(first) - 2
  for a, b in zip(first[2:], resumed, strict=True):
    np.testing.assert_array_equal(a["skeleton"], b["skeleton"])


@pytest.mark.parametrize("n", [16, 19])
def test_train_process_shards_are_disjoint_lockstep_and_crop_like_one_process(n):
  single = _crops(_train(_ramp_dataset(n), seed=1, epoch=2, batch=4))
  per_process = [_train(_ramp_dataset(n), seed=1, epoch=2, batch=4, process_index=p, process_count=2) for p in (0, 1)]
  assert [len(batches) for batches in per_process] == [n // 4, n // 4]
  assert all(b["label"].shape == (2,) for batches in per_process for b in batches)
  seen = [_crops(batches) for batches in per_process]
  assert set(seen[0]).isdisjoint(seen[1])
  assert all(i % 2 == p for p in (0, 1) for i in seen[p])  # process p reads examples p, p + 2, ...
  if n % 4 == 0:
    assert set(seen[0]) | set(seen[1]) == set(range(n))
  # An example's crop depends on (seed, epoch, example index) only, not on the process count.
  for crops in seen:
    for i, crop in crops.items():
      if i in single:
        assert crop == single[i]


@pytest.mark.parametrize("process_count", [1, 2])
@pytest.mark.parametrize("n", [1, 5, 7, 8, 9])
def test_eval_counts_every_example_exactly_once(n, process_count):
  batch = 4
  per_process = [
    _eval(_ramp_dataset(n), batch=batch, process_index=p, process_count=process_count) for p in range(process_count)
  ]
  local_batch = batch // process_count
  # Lockstep: every process yields ceil(ceil(n / P) / B) batches.
  expected_batches = math.ceil(math.ceil(n / process_count) / local_batch)
  assert [len(batches) for batches in per_process] == [expected_batches] * process_count
  counted = collections.Counter()
  for batches in per_process:
    for b in batches:
      assert b["mask"].shape == (local_batch,)
      counted.update(b["label"][b["mask"]].tolist())
      assert np.all(b["skeleton"][~b["mask"]] == 0.0) and np.all(b["label"][~b["mask"]] == 0)
  assert counted == collections.Counter(range(n))
  assert input_pipeline.count_examples(_ramp_dataset(n)) == n


def test_eval_drop_remainder_keeps_full_batches_only():
  batches = _eval(_ramp_dataset(10), batch=4, drop_remainder=True)
  assert len(batches) == 2 and all(b["mask"].all() for b in batches)
  assert sorted(np.concatenate([b["label"] for b in batches]).tolist()) == list(range(8))


def test_count_examples_with_known_and_unknown_cardinality():
  assert input_pipeline.count_examples(tf.data.Dataset.range(13)) == 13
  assert input_pipeline.count_examples(tf.data.Dataset.range(13).filter(lambda x: x % 2 == 0)) == 7
  with pytest.raises(ValueError, match="infinite"):
    input_pipeline.count_examples(tf.data.Dataset.range(3).repeat())


def test_bad_inputs_raise_clear_errors():
  good = _ramp_dataset(8)
  with pytest.raises(ValueError, match="num_frames"):
    input_pipeline.train_dataset(
      good.map(lambda e: {"skeleton": e["skeleton"], "label": e["label"]}),
      config=_config(),
      global_batch_size=4,
      seed=0,
      epoch=0,
    )
  with pytest.raises(ValueError, match=r"2 joints \(V\) but config.dataset expects 3"):
    input_pipeline.eval_dataset(good, config=_config(num_joints=3), global_batch_size=4)
  with pytest.raises(ValueError, match="divisible by process_count=2"):
    input_pipeline.eval_dataset(good, config=_config(), global_batch_size=3, process_count=2)
  with pytest.raises(ValueError, match="fewer examples than one global batch"):
    input_pipeline.train_dataset(good, config=_config(), global_batch_size=16, seed=0, epoch=0)


def test_round_trip_through_a_tfds_build_of_real_msr_action3d(shared_data, tmp_path):
  """Reader -> TFDS build -> pipeline equals reader -> numpy centred crop + np.interp, example by example."""
  from slnl_jax.data import builders, msr_action3d

  source = shared_data / "msr_action3d" / "MSRAction3DSkeletonReal3D"
  names = [f"a{a:02d}_s{s:02d}_e{e:02d}_skeleton3D" for a in (1, 2, 3) for s in (1, 2) for e in (1, 2)]
  names.append("a13_s09_e03_skeleton3D")  # 196 real frames, then 740 all-zero frames the reader drops
  raw = tmp_path / "raw"
  raw.mkdir()
  for name in names:  # a small real subset: links, never copies
    (raw / f"{name}.txt").symlink_to(source / f"{name}.txt")
  builder = builders.build("msr_action3d/cross_subject", manual_dir=raw, data_dir=tmp_path / "tfds")
  clips = {name: msr_action3d.read_sequence(raw / f"{name}.txt") for name in names}
  assert clips["a13_s09_e03_skeleton3D"].num_frames == 196
  config = _config(num_persons=1, num_joints=msr_action3d.NUM_JOINTS, num_channels=msr_action3d.NUM_CHANNELS)
  out_frames = config.dataset.num_frames

  # Eval: every test clip (even subjects) exactly once, in the split's order, centred 0.95 crop.
  test = builder.as_dataset(split="test", shuffle_files=False)
  order = [example["name"].decode() for example in input_pipeline.as_numpy(test)]
  assert sorted(order) == sorted(n for n in names if int(n[5:7]) % 2 == 0)
  examples = [
    (skeleton, label)
    for batch in input_pipeline.as_numpy(input_pipeline.eval_dataset(test, config=config, global_batch_size=4))
    for skeleton, label, mask in zip(batch["skeleton"][:, 0], batch["label"], batch["mask"], strict=True)
    if mask
  ]
  assert len(examples) == len(order) == input_pipeline.count_examples(test)
  for name, (skeleton, label) in zip(order, examples, strict=True):
    clip = clips[name]
    n = clip.num_frames
    crop_len = int(np.floor(0.95 * n + 0.5))
    start = (n - crop_len + 1) // 2  # the free frames split evenly, the odd one dropped before
    positions = np.linspace(start, start + crop_len - 1, out_frames)
    expected = np.stack(
      [np.interp(positions, np.arange(n), clip.skeleton[:, 0, v, c]) for v, c in np.ndindex(20, 3)], axis=-1
    ).reshape(out_frames, 20, 3)
    assert label == clip.label
    np.testing.assert_allclose(skeleton[0], expected, rtol=1e-5, atol=1e-5)

  # Train: one epoch of the 7 training clips (odd subjects) in one batch, each clip once.
  train = builder.as_dataset(split="train", shuffle_files=False)
  (batch,) = input_pipeline.as_numpy(
    input_pipeline.train_dataset(train, config=config, global_batch_size=7, seed=0, epoch=0)
  )
  assert batch["skeleton"].shape == (7, 1, out_frames, 20, 3) and np.isfinite(batch["skeleton"]).all()
  train_labels = [clip.label for name, clip in clips.items() if int(name[5:7]) % 2 == 1]
  assert sorted(batch["label"].tolist()) == sorted(train_labels)


def test_center_clip_hand_worked():
  # Two frames, persons 0 (absent: all zeros) and 1, two joints, (x, y, score).
  skeleton = np.zeros((2, 2, 2, 3), np.float32)
  skeleton[:, 1, :, 2] = 0.9  # score: never centred
  skeleton[0, 1, 0, :2] = [1.0, 10.0]
  skeleton[0, 1, 1, :2] = [3.0, 10.0]
  skeleton[1, 1, 0, :2] = [5.0, 20.0]
  skeleton[1, 1, 1, :2] = [7.0, 20.0]  # mean over 2 frames x 2 joints: (4, 15)
  centred = input_pipeline.center_clip(tf.constant(skeleton), 2).numpy()
  expected = skeleton.copy()
  expected[:, 1, :, 0] -= 4.0
  expected[:, 1, :, 1] -= 15.0
  np.testing.assert_allclose(centred, expected)
  assert np.all(centred[:, 0] == 0.0)  # the absent person stays absent


def test_center_channels_applies_to_train_and_eval_batches():
  for batches in (_train(_ramp_dataset(8), center_channels=1), _eval(_ramp_dataset(8), center_channels=1)):
    for batch in batches:
      channel0 = batch["skeleton"][..., 0][batch.get("mask", np.ones(4, bool))]
      np.testing.assert_allclose(channel0.mean(axis=(1, 2, 3)), 0.0, atol=1e-4)
      assert np.all(batch["skeleton"][..., 1] == batch["label"][:, None, None, None])  # channel 1 untouched


def test_rotate_clip_hand_worked():
  # One frame, persons 0 (absent: all zeros) and 1, two joints, (x, y, z, score); a quarter turn.
  skeleton = np.zeros((1, 2, 2, 4), np.float32)
  skeleton[0, 1, :, 3] = 0.9  # score: never rotated
  skeleton[0, 1, 0, :3] = [1.0, 5.0, 0.0]
  skeleton[0, 1, 1, :3] = [3.0, 7.0, 0.0]  # mean (2, 6, 0): the joints sit at (-1, -1, 0) and (1, 1, 0) from it
  rotated = input_pipeline.rotate_clip(tf.constant(skeleton), tf.constant(math.pi / 2)).numpy()
  expected = skeleton.copy()
  # x' = x cos a + z sin a, z' = z cos a - x sin a about the mean; y untouched.
  expected[0, 1, 0, :3] = [2.0, 5.0, 1.0]
  expected[0, 1, 1, :3] = [2.0, 7.0, -1.0]
  np.testing.assert_allclose(rotated, expected, atol=1e-6)
  assert np.all(rotated[:, 0] == 0.0)  # the absent person stays absent


def _xyz_dataset(n: int) -> tf.data.Dataset:
  """Clips of two joints: x = frame + joint, y = example id, z = 2 * joint (a vertical axis the turn keeps)."""

  def generate():
    for i, length in enumerate(_lengths(n)):
      t = np.arange(length, dtype=np.float32)[:, None, None]
      joint = np.arange(V, dtype=np.float32)[None, None, :]
      skeleton = np.stack(np.broadcast_arrays(t + joint, np.full_like(t + joint, i), 2.0 * joint + 0 * t), -1)
      yield {"skeleton": skeleton.astype(np.float32), "label": np.int64(i), "num_frames": np.int32(length)}

  signature = {
    "skeleton": tf.TensorSpec((None, M, V, 3), tf.float32),
    "label": tf.TensorSpec((), tf.int64),
    "num_frames": tf.TensorSpec((), tf.int32),
  }
  return tf.data.Dataset.from_generator(generate, output_signature=signature)


def test_eval_turns_rotate_each_crop_about_the_vertical_axis_through_the_clip_mean():
  # train_rotation_deg 30, 3 turns: -30, 0, 30 degrees; x' = x cos a + z sin a, z' = z cos a - x sin a about the
  # clip's mean (by hand, the formula of a turn about y), y kept.
  batches = _eval_with_crops(_xyz_dataset(6), batch=2, num_channels=3, eval_turns=3, train_rotation_deg=30.0)
  for batch in batches:
    for clip in batch["skeleton"]:  # (3 turns, M, T, V, 3)
      plain = clip[1]
      mean = plain.reshape(-1, 3).mean(axis=0)
      for turned, degrees in zip(clip, (-30.0, 0.0, 30.0), strict=True):
        a = np.radians(degrees)
        x, y, z = np.moveaxis(plain - mean, -1, 0)
        expected = np.stack([x * np.cos(a) + z * np.sin(a), y, z * np.cos(a) - x * np.sin(a)], -1) + mean
        np.testing.assert_allclose(turned, expected, atol=1e-4)


def test_train_rotation_turns_each_clip_rigidly_within_the_range_and_keeps_its_crop():
  plain = _train(_xyz_dataset(8), num_channels=3)
  turned = _train(_xyz_dataset(8), num_channels=3, train_rotation_deg=30.0)
  angles = []
  for a, b in zip(plain, turned, strict=True):
    np.testing.assert_array_equal(a["label"], b["label"])  # same order
    np.testing.assert_array_equal(a["skeleton"][..., 1], b["skeleton"][..., 1])  # y (and the crop) kept
    for clip_a, clip_b in zip(a["skeleton"], b["skeleton"], strict=True):
      rel_a = clip_a[..., [0, 2]] - clip_a[..., [0, 2]].mean(axis=(0, 1, 2))
      rel_b = clip_b[..., [0, 2]] - clip_b[..., [0, 2]].mean(axis=(0, 1, 2))
      # One angle for every point of the clip: atan2 of (x, z) before vs after, where the point is off-centre.
      far = np.linalg.norm(rel_a, axis=-1) > 0.5
      turn = np.arctan2(rel_a[..., 1], rel_a[..., 0]) - np.arctan2(rel_b[..., 1], rel_b[..., 0])
      turn = (turn[far] + np.pi) % (2 * np.pi) - np.pi
      np.testing.assert_allclose(turn, turn[0], atol=1e-4)
      np.testing.assert_allclose(np.linalg.norm(rel_b, axis=-1), np.linalg.norm(rel_a, axis=-1), atol=1e-4)
      angles.append(turn[0])
  assert np.all(np.abs(np.degrees(angles)) <= 30.0 + 1e-3)
  assert np.std(angles) > np.radians(5)  # a different turn per clip


def test_rotate_clip_about_x_hand_worked():
  # One frame, persons 0 (absent) and 1, two joints (x, y, z): a quarter turn about x through the mean (5, 2, 3).
  skeleton = np.zeros((1, 2, 2, 3), np.float32)
  skeleton[0, 1, 0] = [4.0, 1.0, 3.0]  # (y, z) - mean = (-1, 0)
  skeleton[0, 1, 1] = [6.0, 3.0, 3.0]  # (1, 0)
  rotated = input_pipeline.rotate_clip(tf.constant(skeleton), tf.constant(math.pi / 2), "x").numpy()
  # y' = y cos a - z sin a, z' = z cos a + y sin a about the mean: (-1, 0) -> (0, -1), (1, 0) -> (0, 1); x kept.
  expected = skeleton.copy()
  expected[0, 1, 0] = [4.0, 2.0, 2.0]
  expected[0, 1, 1] = [6.0, 2.0, 4.0]
  np.testing.assert_allclose(rotated, expected, atol=1e-6)
  assert np.all(rotated[:, 0] == 0.0)


def test_scale_clip_hand_worked():
  skeleton = np.zeros((1, 2, 2, 4), np.float32)
  skeleton[0, 1, 0] = [1.0, 2.0, 3.0, 0.9]
  skeleton[0, 1, 1] = [3.0, 4.0, 5.0, 0.9]  # mean (2, 3, 4)
  scaled = input_pipeline.scale_clip(tf.constant(skeleton), tf.constant(1.5)).numpy()
  expected = skeleton.copy()
  expected[0, 1, 0, :3] = [0.5, 1.5, 2.5]
  expected[0, 1, 1, :3] = [3.5, 4.5, 5.5]
  np.testing.assert_allclose(scaled, expected, atol=1e-6)
  assert np.all(scaled[:, 0] == 0.0)


def test_shear_clip_hand_worked():
  skeleton = np.zeros((1, 2, 2, 4), np.float32)
  skeleton[0, 1, 0] = [1.0, 2.0, 3.0, 0.9]
  skeleton[0, 1, 1] = [3.0, 4.0, 5.0, 0.9]  # mean (2, 3, 4): offsets -+(1, 1, 1)
  shear = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, -0.25], [0.1, 0.0, 1.0]], np.float32)
  sheared = input_pipeline.shear_clip(tf.constant(skeleton), tf.constant(shear)).numpy()
  # Rows of S times (1, 1, 1): 1.5, 0.75, 1.1 about the mean.
  expected = skeleton.copy()
  expected[0, 1, 0, :3] = [2.0 - 1.5, 3.0 - 0.75, 4.0 - 1.1]
  expected[0, 1, 1, :3] = [2.0 + 1.5, 3.0 + 0.75, 4.0 + 1.1]
  np.testing.assert_allclose(sheared, expected, atol=1e-6)
  assert np.all(sheared[:, 0] == 0.0)


def test_train_shear_is_one_linear_map_per_clip_within_the_range_and_keeps_the_turn():
  clip = np.random.default_rng(0).normal(size=(6, 1, 5, 3)).astype(np.float32)  # full rank, unlike _xyz_dataset
  entries = []
  for seed in range(20):
    key = tf.constant([seed, 7], tf.int64)
    turned = input_pipeline.augment_view(tf.constant(clip), key, _config(train_rotation_deg=30.0).dataset).numpy()
    data = _config(train_rotation_deg=30.0, train_shear=0.3).dataset
    sheared = input_pipeline.augment_view(tf.constant(clip), key, data).numpy()
    rel_a = (turned - turned.mean(axis=(0, 1, 2))).reshape(-1, 3)
    rel_b = (sheared - sheared.mean(axis=(0, 1, 2))).reshape(-1, 3)
    shear = np.linalg.lstsq(rel_a, rel_b, rcond=None)[0].T  # rel_b = rel_a S^T
    np.testing.assert_allclose(rel_a @ shear.T, rel_b, atol=1e-4)  # one linear map of the turned clip
    np.testing.assert_allclose(np.diag(shear), 1.0, atol=1e-4)
    entries.extend(shear[~np.eye(3, dtype=bool)])
  assert np.all(np.abs(entries) <= 0.3 + 1e-4) and np.std(entries) > 0.1


def test_center_on_joint_hand_worked():
  # Two frames, persons 0 and 1 present, 2 absent; joint 1 of person 0 in frame 0 is (1, 2, 3); score kept.
  skeleton = np.zeros((2, 3, 2, 4), np.float32)
  skeleton[:, :2, :, 3] = 0.9
  skeleton[0, 0, 1, :3] = [1.0, 2.0, 3.0]
  skeleton[1, 0, 0, :3] = [4.0, 4.0, 4.0]
  skeleton[0, 1, 0, :3] = [2.0, 2.0, 2.0]
  centred = input_pipeline.center_on_joint(tf.constant(skeleton), 1).numpy()
  expected = skeleton.copy()
  expected[:, :2, :, :3] -= np.array([1.0, 2.0, 3.0], np.float32)
  np.testing.assert_allclose(centred, expected)
  assert centred[0, 0, 1, :3].tolist() == [0.0, 0.0, 0.0]
  assert np.all(centred[:, 2] == 0.0)  # the absent person stays absent


def _minmax_clip() -> np.ndarray:
  """Two frames, persons 0 (absent) and 1, two joints, (x, y, z, score): x 1..7, y 5, z -2..2."""
  skeleton = np.zeros((2, 2, 2, 4), np.float32)
  skeleton[:, 1, :, 3] = 0.9  # score: never normalised
  skeleton[0, 1, 0, :3] = [1.0, 5.0, -2.0]
  skeleton[0, 1, 1, :3] = [3.0, 5.0, 0.0]
  skeleton[1, 1, 0, :3] = [5.0, 5.0, -2.0]
  skeleton[1, 1, 1, :3] = [7.0, 5.0, 2.0]
  return skeleton


def test_minmax_normalize_hand_worked():
  skeleton = _minmax_clip()
  normalized = input_pipeline.minmax_normalize(tf.constant(skeleton)).numpy()
  # x: 1..7 -> -1..1 (1, 3, 5, 7 -> -1, -1/3, 1/3, 1); y: no extent -> 0; z: -2..2 -> -1..1. The absent
  # person's zeros do not count as a minimum of 0.
  expected = skeleton.copy()
  expected[0, 1, 0, :3] = [-1.0, 0.0, -1.0]
  expected[0, 1, 1, :3] = [-1 / 3, 0.0, 0.0]
  expected[1, 1, 0, :3] = [1 / 3, 0.0, -1.0]
  expected[1, 1, 1, :3] = [1.0, 0.0, 1.0]
  np.testing.assert_allclose(normalized, expected, atol=1e-6)
  assert np.all(normalized[:, 0] == 0.0)
  empty = input_pipeline.minmax_normalize(tf.zeros((2, 2, 2, 3))).numpy()
  assert np.all(empty == 0.0)  # nobody present: zeros, no NaN


def test_isotropic_minmax_normalize_hand_worked():
  # x 1..7 (extent 6), y 5 (none), z -2..2 (extent 4): one scale, half of 6.
  skeleton = _minmax_clip()
  normalized = input_pipeline.minmax_normalize(tf.constant(skeleton), isotropic=True).numpy()
  # x: (x - 4) / 3; y: its one value is its midpoint -> 0; z: (z - 0) / 3, so -2..2 -> -2/3..2/3.
  expected = skeleton.copy()
  expected[0, 1, 0, :3] = [-1.0, 0.0, -2 / 3]
  expected[0, 1, 1, :3] = [-1 / 3, 0.0, 0.0]
  expected[1, 1, 0, :3] = [1 / 3, 0.0, -2 / 3]
  expected[1, 1, 1, :3] = [1.0, 0.0, 2 / 3]
  np.testing.assert_allclose(normalized, expected, atol=1e-6)
  assert np.all(normalized[:, 0] == 0.0)
  empty = input_pipeline.minmax_normalize(tf.zeros((2, 2, 2, 3)), isotropic=True).numpy()
  assert np.all(empty == 0.0)


def test_view_normalisation_applies_to_train_and_eval_batches():
  # _xyz_dataset: x = frame + joint, y = example id (no extent), z = 2 * joint; centred on joint 1, min-max.
  view = {"num_channels": 3, "center_joint": 1, "minmax_normalize": True}
  for batches in (_train(_xyz_dataset(8), **view), _eval(_xyz_dataset(8), **view)):
    for batch in batches:
      skeleton = batch["skeleton"][batch.get("mask", np.ones(4, bool))]
      np.testing.assert_allclose(skeleton[..., [0, 2]].min(axis=(1, 2, 3)), -1.0, atol=1e-6)
      np.testing.assert_allclose(skeleton[..., [0, 2]].max(axis=(1, 2, 3)), 1.0, atol=1e-6)
      assert np.all(skeleton[..., 1] == 0.0)
      np.testing.assert_allclose(skeleton[..., 0, 1, 2], 1.0, atol=1e-6)  # z of joint 1 is the max
      np.testing.assert_allclose(skeleton[..., 0, 0, 2], -1.0, atol=1e-6)


def test_isotropic_minmax_keeps_the_clips_proportions_in_train_and_eval_batches():
  # _xyz_dataset: in every frame joint 1 is 1 further along x and 2 further along z than joint 0; one scale keeps
  # that 1 : 2, where the per-axis map would stretch each axis onto [-1, 1] on its own.
  view = {"num_channels": 3, "minmax_normalize": True, "minmax_isotropic": True}
  for batches in (_train(_xyz_dataset(8), **view), _eval(_xyz_dataset(8), **view)):
    for batch in batches:
      skeleton = batch["skeleton"][batch.get("mask", np.ones(4, bool))]
      step = skeleton[..., 1, :] - skeleton[..., 0, :]
      np.testing.assert_allclose(step[..., 2], 2.0 * step[..., 0], rtol=1e-5)
      extents = skeleton.max(axis=(1, 2, 3)) - skeleton.min(axis=(1, 2, 3))
      np.testing.assert_allclose(extents.max(axis=-1), 2.0, atol=1e-6)  # the largest axis spans [-1, 1]
      assert np.all(skeleton[..., 1] == 0.0)


def test_train_tilt_turns_each_clip_about_x_and_keeps_its_crop_and_the_turn():
  plain = _train(_xyz_dataset(8), num_channels=3, train_rotation_deg=30.0)
  tilted = _train(_xyz_dataset(8), num_channels=3, train_rotation_deg=30.0, train_tilt_deg=45.0)
  scaled = _train(_xyz_dataset(8), num_channels=3, train_rotation_deg=30.0, train_scale_range=0.5)
  angles, scales = [], []
  for a, b, c in zip(plain, tilted, scaled, strict=True):
    np.testing.assert_array_equal(a["label"], b["label"])
    np.testing.assert_array_equal(a["skeleton"][..., 0], b["skeleton"][..., 0])  # x (and the crop, the turn) kept
    for clip_a, clip_b, clip_c in zip(a["skeleton"], b["skeleton"], c["skeleton"], strict=True):
      rel_a = clip_a[..., 1:] - clip_a[..., 1:].mean(axis=(0, 1, 2))
      rel_b = clip_b[..., 1:] - clip_b[..., 1:].mean(axis=(0, 1, 2))
      far = np.linalg.norm(rel_a, axis=-1) > 0.5
      turn = np.arctan2(rel_b[..., 1], rel_b[..., 0]) - np.arctan2(rel_a[..., 1], rel_a[..., 0])
      turn = (turn[far] + np.pi) % (2 * np.pi) - np.pi
      np.testing.assert_allclose(turn, turn[0], atol=1e-4)
      angles.append(turn[0])
      rel_c = clip_c - clip_c.mean(axis=(0, 1, 2))
      full = clip_a - clip_a.mean(axis=(0, 1, 2))
      ratio = np.linalg.norm(rel_c) / np.linalg.norm(full)
      np.testing.assert_allclose(rel_c, ratio * full, atol=1e-4)  # a pure scale about the mean
      scales.append(ratio)
  assert np.all(np.abs(np.degrees(angles)) <= 45.0 + 1e-3) and np.std(angles) > np.radians(5)
  assert np.all((np.array(scales) >= 0.5 - 1e-5) & (np.array(scales) <= 1.5 + 1e-5)) and np.std(scales) > 0.05


def test_align_facing_hand_worked():
  # Two frames, persons 0 and 1, four joints, pairs (0 -> 1) and (2 -> 3) of person 0: (0, 0, 1) and (0, 0, 2) in
  # each frame, so the summed left -> right vector is (0, 0, 6): a quarter turn about y takes it onto +x.
  skeleton = np.zeros((2, 2, 4, 3), np.float32)
  for t in range(2):
    skeleton[t, 0] = [[t, 1.0, 0.0], [t, 1.0, 1.0], [1.0, 2.0, t], [1.0, 2.0, t + 2.0]]
    skeleton[t, 1] = [[3.0, 0.0, 0.0], [4.0, 0.0, 0.0], [3.0, 1.0, 0.0], [5.0, 1.0, 0.0]]  # person 1: ignored
  aligned = input_pipeline.align_facing(tf.constant(skeleton), (0, 1, 2, 3)).numpy()
  # About the clip's mean, x' = z - (mean z) + (mean x), z' = -(x - mean x) + mean z (rotate_clip at 90 degrees).
  mean = skeleton.reshape(-1, 3).mean(axis=0)
  expected = skeleton.copy()
  expected[..., 0] = skeleton[..., 2] - mean[2] + mean[0]
  expected[..., 2] = -(skeleton[..., 0] - mean[0]) + mean[2]
  np.testing.assert_allclose(aligned, expected, atol=1e-5)
  side = aligned[:, 0, [1, 3]] - aligned[:, 0, [0, 2]]
  np.testing.assert_allclose(side[..., 2], 0.0, atol=1e-5)
  assert np.all(side[..., 0] > 0)  # now along +x
  facing_x = aligned.copy()
  np.testing.assert_allclose(input_pipeline.align_facing(tf.constant(facing_x), (0, 1, 2, 3)).numpy(), facing_x)
  # Facing -x: half a turn.
  backwards = input_pipeline.rotate_clip(tf.constant(aligned), tf.constant(math.pi)).numpy()
  np.testing.assert_allclose(
    input_pipeline.align_facing(tf.constant(backwards), (0, 1, 2, 3)).numpy(), aligned, atol=1e-5
  )
  # No side-to-side extent: nothing to align to, the clip is returned as it was.
  flat = np.zeros((2, 1, 4, 3), np.float32)
  flat[..., 1] = np.arange(4)
  np.testing.assert_array_equal(input_pipeline.align_facing(tf.constant(flat), (0, 1, 2, 3)).numpy(), flat)


def _side(clip: np.ndarray) -> np.ndarray:
  """Person 0's summed joint 0 -> joint 1 vector of a (M, T, V, 3) clip of `_xyz_dataset` (two joints)."""
  return (clip[0, :, 1] - clip[0, :, 0]).sum(axis=0)


def test_align_joints_turns_training_clips_before_their_random_turn_and_eval_clips_before_theirs():
  # _xyz_dataset's joint 0 -> 1 vector is (1, 0, 2) in every frame: 63.4 degrees off +x.
  for batch in _train(_xyz_dataset(8), num_channels=3, align_joints=(0, 1)):
    for clip in batch["skeleton"]:
      side = _side(clip)
      np.testing.assert_allclose(side[[1, 2]], 0.0, atol=1e-4)
      np.testing.assert_allclose(side[0], np.sqrt(5.0) * T_OUT, rtol=1e-5)
  angles = []
  for batch in _train(_xyz_dataset(8), num_channels=3, align_joints=(0, 1), train_rotation_deg=30.0):
    for clip in batch["skeleton"]:
      side = _side(clip)
      angles.append(np.degrees(np.arctan2(side[2], side[0])))
  # The random turn of a clip by a about y takes +x to (cos a, -sin a) in (x, z): within 30 degrees of +x.
  assert np.all(np.abs(angles) <= 30.0 + 1e-3) and np.std(angles) > 5.0
  batches = _eval_with_crops(
    _xyz_dataset(6), batch=2, num_channels=3, align_joints=(0, 1), eval_turns=3, train_rotation_deg=30.0
  )
  for batch in batches:
    for clip in batch["skeleton"]:  # (3 turns, M, T, V, 3): -30, 0, 30 degrees from the aligned clip
      for turned, degrees in zip(clip, (-30.0, 0.0, 30.0), strict=True):
        side = _side(turned)
        np.testing.assert_allclose(np.degrees(np.arctan2(-side[2], side[0])), degrees, atol=1e-3)


def test_mirror_clip_hand_worked():
  # Two frames, person 0 with three joints, person 1 absent; pair (0, 2). The mean x of person 0 is 3, so
  # x' = 6 - x, and joints 0 and 2 trade places; y, z follow their joint.
  skeleton = np.zeros((2, 2, 3, 3), np.float32)
  skeleton[0, 0] = [[1.0, 0.0, 0.0], [2.0, 1.0, 0.0], [3.0, 2.0, 1.0]]
  skeleton[1, 0] = [[3.0, 0.0, 0.0], [4.0, 1.0, 0.0], [5.0, 2.0, 1.0]]
  mirrored = input_pipeline.mirror_clip(tf.constant(skeleton), (0, 2)).numpy()
  expected = np.zeros_like(skeleton)
  expected[0, 0] = [[3.0, 2.0, 1.0], [4.0, 1.0, 0.0], [5.0, 0.0, 0.0]]
  expected[1, 0] = [[1.0, 2.0, 1.0], [2.0, 1.0, 0.0], [3.0, 0.0, 0.0]]
  np.testing.assert_allclose(mirrored, expected, atol=1e-6)


def test_train_mirror_pairs_mirror_about_half_the_clips_and_keep_their_crop():
  plain = _train(_xyz_dataset(32), num_channels=3)
  mirrored = _train(_xyz_dataset(32), num_channels=3, train_mirror_pairs=(0, 1))
  flipped = 0
  for a, b in zip(plain, mirrored, strict=True):
    np.testing.assert_array_equal(a["label"], b["label"])
    for clip_a, clip_b in zip(a["skeleton"], b["skeleton"], strict=True):  # (M, T, V, 3), all persons present
      image = clip_a[:, :, ::-1].copy()  # joints 0 and 1 swapped ...
      image[..., 0] = 2.0 * clip_a[..., 0].mean() - image[..., 0]  # ... and x reflected about the mean
      if np.allclose(clip_b, image, atol=1e-5):
        flipped += 1
      else:
        np.testing.assert_array_equal(clip_b, clip_a)
  assert 8 <= flipped <= 24  # 32 clips, probability 1/2 each
