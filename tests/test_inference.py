"""Predictor: restored from a checkpoint without TensorFlow or the dataset; its preprocessing against tf.data's.

References: the evaluation pipeline (input_pipeline.eval_dataset, TensorFlow) followed by the model's own
`apply`, and the variables that were saved.
"""

import functools
import json
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from slnl_jax import checkpointing, config_checks, input_pipeline, models, sharding, steps
from slnl_jax.data import readers
from slnl_jax.inference import Predictor, WindowPrediction, preprocess

CLASS_NAMES = ["wave", "clap", "jump", "sit"]
REPO = pathlib.Path(__file__).resolve().parents[1]
RUN = {"cwd": REPO, "capture_output": True, "text": True, "check": False}


def tiny_config(num_joints=25, num_persons=2, center_channels=0, **dataset):
  config = default.get_config()
  config.dataset.update(
    num_classes=4,
    num_frames=16,
    num_persons=num_persons,
    num_joints=num_joints,
    center_channels=center_channels,
    **dataset,
  )
  config.model.update(num_joints_out=8, num_systems=2, channels=(8, 8), kernel_sizes=(3, 3), num_slnl_blocks=1)
  return config


def write_workdir(workdir, config, *, with_info=True, steps_to_save=(3,)):
  """A workdir as the trainer leaves it: config.json and checkpoints of the real TrainState (Adam moments too)."""
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))
  state = steps.initial_state(config, steps.create_learning_rate_fn(config, 1), sharding.make_mesh())
  # Distinct, non-trivial parameters and statistics, so that a wrong restore shows.
  state = state.replace(
    params=jax.tree.map(lambda x: x + 0.01 * jnp.arange(x.size, dtype=x.dtype).reshape(x.shape), state.params),
    batch_stats=jax.tree.map(lambda x: x + 0.5, state.batch_stats),
  )
  info = {"config": config.to_dict(), "class_names": CLASS_NAMES} if with_info else None
  checkpoints = checkpointing.Checkpointer(workdir / "checkpoints", model_info=info)
  for step in steps_to_save:
    checkpoints.save(state.replace(step=step), metrics={checkpointing.BEST_METRIC: 1.0 / step})
  checkpoints.wait()
  checkpoints.close()
  return state


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("workdir")
  config = tiny_config()
  state = write_workdir(workdir, config, steps_to_save=(3, 6))
  return workdir, config, state


def reference_probabilities(config, variables, clips, heads=("concat",)):
  """The evaluation pipeline (tf.data) + the model's apply + softmax of each of `heads`, averaged over each
  clip's evaluation crops, then over the heads."""
  skeleton = next(input_pipeline.as_numpy(eval_batches(config, clips)))["skeleton"]  # (B, S, M, T, V, C)
  crops = skeleton.reshape(-1, *skeleton.shape[2:])
  outputs = models.create_model(config).apply(variables, crops, train=False)
  per_head = [np.asarray(jax.nn.softmax(outputs[h], -1)).reshape(*skeleton.shape[:2], -1).mean(1) for h in heads]
  return np.mean(per_head, axis=0)


def eval_batches(config, clips):
  import tensorflow as tf

  data = config.dataset
  padded = max(len(c) for c in clips)
  skeleton = np.zeros((len(clips), padded, data.num_persons, data.num_joints, data.num_channels), np.float32)
  for i, clip in enumerate(clips):
    skeleton[i, : len(clip), : clip.shape[1]] = clip[:, : data.num_persons]
  examples = {
    "skeleton": skeleton,
    "label": np.zeros(len(clips), np.int64),
    "num_frames": np.array([len(c) for c in clips], np.int64),
  }
  ds = tf.data.Dataset.from_tensor_slices(examples)
  return input_pipeline.eval_dataset(ds, config=config, global_batch_size=len(clips))


def real_clips(shared_data):
  ntu = shared_data / "ntu_rgbd" / "nturgb+d_skeletons"
  msr = shared_data / "msr_action3d" / "MSRAction3DSkeletonReal3D"
  return {
    25: [
      readers.read_file(ntu / name).skeleton
      for name in ("S001C001P001R001A001.skeleton", "S001C001P001R001A058.skeleton")
    ],
    20: [
      readers.read_file(msr / name).skeleton for name in ("a01_s01_e01_skeleton3D.txt", "a13_s09_e03_skeleton3D.txt")
    ],
  }


# Centring subtracts a float32 mean over T' x V values (~3 m) that TF and XLA sum in different orders: about
# sqrt(400) ulp apart, so 1e-5 there; crop + resize alone are the same arithmetic, within 1e-6. Centring on a
# joint and min-max are elementwise after a min and max (exact in any order): a few ulp of values within 1.
@pytest.mark.parametrize(
  ("view", "atol"),
  [
    ({}, 1e-6),
    ({"center_channels": 3}, 1e-5),
    ({"center_joint": 1}, 1e-6),
    ({"minmax_normalize": True}, 1e-6),
    ({"minmax_normalize": True, "minmax_isotropic": True}, 1e-6),
    ({"center_channels": 3, "center_joint": 1, "minmax_normalize": True}, 1e-5),
    # Two crops, each at three turns (-40, 0, 40 degrees) about the clip's mean: a rotation of ~3 m coordinates.
    ({"eval_clips": 2, "eval_turns": 3, "train_rotation_deg": 40.0}, 1e-5),
    # Three crops (ratios 0.5, 0.75, 1), the two shorter ones each at the clip's start, middle and end.
    ({"eval_clips": 3, "eval_offsets": 3}, 1e-6),
    # Each clip first turned so that its shoulders' and hips' left -> right vectors point along +x.
    ({"align_joints": (4, 8, 12, 16), "eval_turns": 3, "train_rotation_deg": 40.0}, 1e-5),
  ],
)
def test_preprocessing_equals_the_tf_eval_pipeline_on_real_clips(shared_data, view, atol):
  for joints, clips in real_clips(shared_data).items():
    config = tiny_config(num_joints=joints, num_persons=2, **view)
    views = config_checks.eval_views(config.dataset)
    batch = next(input_pipeline.as_numpy(eval_batches(config, clips)))["skeleton"]
    assert batch.shape[1] == len(views)
    padded = max(len(c) for c in clips)
    raw = np.zeros((len(clips), padded + 5, 3, joints, 3), np.float32)  # extra frames and a third person slot
    for i, clip in enumerate(clips):
      raw[i, : len(clip), : clip.shape[1]] = clip
      raw[i, len(clip) :] = 99.0  # past num_frames: must be ignored
    num_frames = np.array([len(c) for c in clips], np.int32)
    for s, (ratio, offset, turn_deg) in enumerate(views):
      prepare = functools.partial(preprocess, data=config.dataset, ratio=ratio, offset=offset, turn_deg=turn_deg)
      got = np.asarray(jax.jit(prepare)(raw, num_frames))
      assert got.shape == batch[:, s].shape == (len(clips), 2, 16, joints, 3)
      np.testing.assert_allclose(got, batch[:, s], rtol=0, atol=atol)


def test_from_workdir_restores_only_the_model_variables(trained):
  workdir, _, state = trained
  predictor = Predictor.from_workdir(workdir, "latest")
  assert predictor.class_names == CLASS_NAMES
  assert tuple(predictor.config.model.channels) == (8, 8)
  assert set(predictor.variables) == {"params", "batch_stats"}
  jax.tree.map(np.testing.assert_array_equal, predictor.variables["params"], jax.device_get(state.params))
  jax.tree.map(np.testing.assert_array_equal, predictor.variables["batch_stats"], jax.device_get(state.batch_stats))


def test_from_workdir_restores_the_moving_averages_of_a_run_that_keeps_them(tmp_path):
  config = tiny_config()
  config.train.ema_decay = 0.99
  state = steps.initial_state(config, steps.create_learning_rate_fn(config, 1), sharding.make_mesh())
  # Params, statistics and their averages all distinct, so that restoring the wrong ones shows.
  state = state.replace(
    params=jax.tree.map(lambda x: x + 1.0, state.params),
    ema={"params": jax.tree.map(lambda x: x - 1.0, state.params), "batch_stats": state.batch_stats},
    batch_stats=jax.tree.map(lambda x: x + 0.5, state.batch_stats),
  )
  (tmp_path / "config.json").write_text(config.to_json_best_effort(indent=2))
  checkpoints = checkpointing.Checkpointer(tmp_path / "checkpoints")
  checkpoints.save(state.replace(step=3))
  checkpoints.wait()
  checkpoints.close()
  predictor = Predictor.from_workdir(tmp_path, "latest")
  jax.tree.map(np.testing.assert_array_equal, predictor.variables, jax.device_get(state.ema))


def test_checkpoint_choice(trained, tmp_path):
  workdir = trained[0]
  assert Predictor.from_workdir(workdir, "best").step == 3  # metric 1 / step
  assert Predictor.from_workdir(workdir, "latest").step == 6
  assert Predictor.from_workdir(workdir, 6).step == 6
  with pytest.raises(checkpointing.CheckpointError, match=r"saved steps: \[3, 6\]"):
    Predictor.from_workdir(workdir, 4)
  with pytest.raises(checkpointing.CheckpointError, match=r"no checkpoint in .*: train first"):
    Predictor.from_workdir(tmp_path / "empty")


def test_predict_equals_the_eval_pipeline_and_model(trained, shared_data):
  workdir, config, state = trained
  predictor = Predictor.from_workdir(workdir, "latest")
  clips = real_clips(shared_data)[25]
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  expected = reference_probabilities(config, variables, clips)
  results = predictor.predict(clips, top_k=4, batch_size=1)
  for row, top in zip(expected, results, strict=True):
    order = np.argsort(-row, kind="stable")
    assert [name for name, _ in top] == [CLASS_NAMES[i] for i in order]
    np.testing.assert_allclose([p for _, p in top], row[order], rtol=1e-5, atol=1e-6)
  # Batched (and padded to a shared length) as one: the same.
  batched = predictor.predict(clips + clips[:1], top_k=2, batch_size=3)
  assert [[n for n, _ in top] for top in batched] == [[n for n, _ in top[:2]] for top in results + results[:1]]
  with pytest.raises(ValueError, match=r"joints x channels"):
    predictor.probabilities(np.zeros((1, 10, 2, 20, 3)))


def test_several_evaluation_crops_average_the_probabilities_of_each_crop(shared_data):
  """eval_clips = 3 against three single-crop predictors (eval_crop = each of the ratios 0.5, 0.75, 1.0) averaged,
  and against the evaluation pipeline's three crops."""
  config = tiny_config(center_channels=3)
  # Freshly initialised (the `trained` fixture's shifted parameters saturate the softmax: every crop gives one-hot).
  state = steps.initial_state(config, steps.create_learning_rate_fn(config, 1), sharding.make_mesh())
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  clips = real_clips(shared_data)[25]
  batch = np.zeros((2, max(len(c) for c in clips), 2, 25, 3), np.float32)
  for i, clip in enumerate(clips):
    batch[i, : len(clip)] = clip[:, :2]
  num_frames = np.array([len(c) for c in clips], np.int32)
  config.dataset.train_crop_min = 0.5
  single = []
  for ratio in (0.5, 0.75, 1.0):
    config.dataset.eval_crop = ratio
    single.append(Predictor(config, variables, CLASS_NAMES).probabilities(batch, num_frames))
  config.dataset.eval_clips = 3
  got = Predictor(config, variables, CLASS_NAMES).probabilities(batch, num_frames)
  np.testing.assert_allclose(got, np.mean(single, axis=0), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(got, reference_probabilities(config, variables, clips), rtol=1e-4, atol=1e-6)
  assert not np.allclose(single[0], single[2], atol=1e-4)  # the crops differ, so the check has teeth
  # Each crop also at three turns about the vertical axis (-60, 0, 60 degrees): against the evaluation pipeline's.
  config.dataset.update(eval_turns=3, train_rotation_deg=60.0)
  turned = Predictor(config, variables, CLASS_NAMES).probabilities(batch, num_frames)
  np.testing.assert_allclose(turned, reference_probabilities(config, variables, clips), rtol=1e-4, atol=1e-6)
  assert not np.allclose(turned, got, atol=1e-4)
  # The mean of the three heads' probabilities (eval_heads "all"), each averaged over the same views.
  config.dataset.eval_heads = "all"
  heads = Predictor(config, variables, CLASS_NAMES).probabilities(batch, num_frames)
  expected = reference_probabilities(config, variables, clips, heads=("position", "velocity", "concat"))
  np.testing.assert_allclose(heads, expected, rtol=1e-4, atol=1e-6)
  assert not np.allclose(heads, turned, atol=1e-4)


def test_stream_windows_equal_clip_predictions(trained):
  workdir = trained[0]
  predictor = Predictor.from_workdir(workdir, "latest")
  rng = np.random.default_rng(0)
  frames = [rng.normal(size=(1 + i % 3, 25, 3)).astype(np.float32) for i in range(23)]  # 1-3 persons seen
  timeline = list(predictor.stream(iter(frames), window=10, stride=4, top_k=2))
  assert [(w.start, w.end) for w in timeline] == [(0, 10), (4, 14), (8, 18), (12, 22)]
  for w in timeline:
    clip = np.zeros((10, 2, 25, 3), np.float32)
    for t, frame in enumerate(frames[w.start : w.end]):
      clip[t, : min(len(frame), 2)] = frame[:2]
    (expected,) = predictor.predict([clip], top_k=2)
    assert isinstance(w, WindowPrediction) and [n for n, _ in w.top] == [n for n, _ in expected]
    np.testing.assert_allclose([p for _, p in w.top], [p for _, p in expected], rtol=1e-5)


def test_a_checkpoint_saved_before_model_info_loads(tmp_path):
  config = tiny_config()
  config.dataset.name = "msr_action3d/cross_subject"
  config.dataset.data_dir = str(tmp_path / "tfds")
  state = write_workdir(tmp_path / "old", config, with_info=False)
  # The class names TFDS wrote beside the build (read without TensorFlow).
  labels = tmp_path / "tfds" / "msr_action3d" / "cross_subject" / "1.0.0" / "label.labels.txt"
  labels.parent.mkdir(parents=True)
  labels.write_text("\n".join(CLASS_NAMES) + "\n")
  predictor = Predictor.from_workdir(tmp_path / "old")
  assert predictor.class_names == CLASS_NAMES
  jax.tree.map(np.testing.assert_array_equal, predictor.variables["params"], jax.device_get(state.params))
  (tmp_path / "old" / "config.json").unlink()
  with pytest.raises(checkpointing.CheckpointError, match=r"config\.json is missing: copy"):
    Predictor.from_workdir(tmp_path / "old")


def test_inference_imports_no_tensorflow(trained):
  code = (
    "import sys; from slnl_jax.inference import Predictor; "
    f"p = Predictor.from_workdir({str(trained[0])!r}); "
    "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; print(p.class_names)"
  )
  result = subprocess.run([sys.executable, "-c", code], **RUN)
  assert result.returncode == 0, result.stderr[-2000:]
  assert json.loads(result.stdout.strip().replace("'", '"')) == CLASS_NAMES
  assert pathlib.Path(trained[0]).is_dir()


def test_slnl_jax_predict_stream_prints_the_timeline(trained, tmp_path):
  workdir = trained[0]
  clip = np.random.default_rng(2).normal(size=(25, 2, 25, 3)).astype(np.float32)
  np.save(tmp_path / "clip.npy", clip)
  args = [f"--workdir={workdir}", f"--input={tmp_path / 'clip.npy'}", "--checkpoint=latest", "--jax_cache_dir="]
  # The `slnl-jax` console script's function, with the mode first.
  command = [sys.executable, "-c", "from slnl_jax.main import cli; cli()", "predict", *args]
  result = subprocess.run([*command, "--stream", "--window=10", "--stride=5", "--top_k=1"], **RUN)
  assert result.returncode == 0, result.stderr[-3000:]
  timeline = re.findall(r"frames\s+(\d+)-(\d+)\s+(\w+) ([\d.]+)", result.stdout)
  expected = Predictor.from_workdir(workdir, "latest").stream(iter(clip), window=10, stride=5, top_k=1)
  assert [(int(a), int(b) + 1, name) for a, b, name, _ in timeline] == [(w.start, w.end, w.top[0][0]) for w in expected]
  result = subprocess.run([*command, "--stream", "--window=40"], **RUN)
  assert "no prediction: the clip is shorter than one window (40 frames)" in result.stdout
  np.save(tmp_path / "clip.npy", clip[:, :, :20])
  result = subprocess.run(command, **RUN)
  assert result.returncode != 0
  assert result.stderr.strip().splitlines()[-1] == (
    f"error: {tmp_path / 'clip.npy'}: clip 0: 20 joints x 3 channels, but the model takes 25 x 3"
  )


def test_class_name_of_a_file_is_its_own_datasets(shared_data):
  # Hand-checked against each dataset's action list: NTU A058 "handshaking", MSR a13 "bend", N-UCLA a12 "carry".
  files = {
    shared_data / "ntu_rgbd" / "nturgb+d_skeletons" / "S001C001P001R001A058.skeleton": "handshaking",
    shared_data / "msr_action3d" / "MSRAction3DSkeletonReal3D" / "a13_s09_e03_skeleton3D.txt": "bend",
    shared_data / "nw_ucla" / "all_sqe" / "a12_s01_e00_v01.json": "carry",
  }
  for path, name in files.items():
    assert readers.class_name(path, readers.read_file(path)) == name


def test_predict_a_pattern_lists_every_file_and_scores_the_labelled_ones(trained, tmp_path):
  workdir, config, state = trained
  rng = np.random.default_rng(5)
  clips = [rng.normal(size=(12 + 3 * i, 2, 25, 3)).astype(np.float32) for i in range(6)]
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  top1 = reference_probabilities(config, variables, clips).argmax(-1)  # tf.data pipeline + model, not Predictor
  labels = [top1[0], top1[1], (top1[2] + 1) % 4, top1[3], (top1[4] + 2) % 4]  # 3 of the 5 labelled are right
  for i, clip in enumerate(clips[:5]):
    np.savez(tmp_path / f"clip{i}.npz", skeleton=clip, label=np.int64(labels[i]))
  np.save(tmp_path / "clip5.npy", clips[5])  # no label
  pattern = str(tmp_path / "clip*.np[yz]")
  out = tmp_path / "predictions.csv"
  args = ["--mode=predict", f"--workdir={workdir}", "--checkpoint=latest", "--jax_cache_dir="]
  result = subprocess.run([sys.executable, "-m", "slnl_jax.main", *args, f"--input={pattern}", f"--out={out}"], **RUN)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  for i in range(6):
    verdict = "" if i == 5 else "  right" if labels[i] == top1[i] else f"  WRONG: it is {CLASS_NAMES[labels[i]]}"
    suffix = "npy" if i == 5 else "npz"
    assert re.fullmatch(rf"{tmp_path / f'clip{i}.{suffix}'}: {CLASS_NAMES[top1[i]]} [\d.]+{verdict}", lines[i])
  assert lines[6:] == [
    "top-1 60.00% (3 of the 5 files whose label the model knows)",
    "1 of 6 files carry no label among the model's classes",
    f"wrote {out}",
  ]
  rows = [line.split(",") for line in out.read_text().splitlines()]
  assert rows[0] == ["file", "frames", "label", "top1", "probability"]
  assert [row[1:4] for row in rows[1:]] == [
    [str(len(clip)), CLASS_NAMES[label] if i < 5 else "", CLASS_NAMES[top1[i]]]
    for i, (clip, label) in enumerate(zip(clips, [*labels, None], strict=True))
  ]
  result = subprocess.run([sys.executable, "-m", "slnl_jax.main", *args, f"--input={tmp_path / 'none*.npy'}"], **RUN)
  assert result.returncode != 0
  assert result.stderr.strip().splitlines()[-1] == (
    f"error: {tmp_path / 'none*.npy'}: no file matches --input (quote a pattern so that the shell leaves it)"
  )
