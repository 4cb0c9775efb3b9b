"""Tests of slnl_jax/visualize.py: the files are written and the arrays they show are right (not pixels)."""

import json
import os
import pathlib
import re
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from slnl_jax import inference, models, steps, visualize
from slnl_jax.data import readers

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

# The official NTU RGB+D parent of each joint (1-based), from the dataset's Matlab/show_skeleton.m.
NTU_CONNECTING_JOINT = [2, 1, 21, 3, 21, 5, 6, 7, 21, 9, 10, 11, 1, 13, 14, 15, 1, 17, 18, 19, 2, 8, 8, 12, 12]


def _is_image(path) -> bool:
  with Image.open(path) as image:
    return image.size[0] > 0 and image.size[1] > 0


def test_frequency_masks_centre_zero_frequency(tmp_path):
  num_t, num_n = 7, 6  # one odd and one even axis: fftshift differs between them
  rng = np.random.default_rng(0)
  mask_cos, mask_sin = rng.random((num_t, num_n)), rng.random((num_t, num_n))
  plot = visualize.plot_frequency_masks(mask_cos, mask_sin, tmp_path / "masks.png")
  assert _is_image(plot.path)
  # The DC term fft2[0, 0] lands at the centre cell (T // 2, N // 2).
  assert plot.data["cos"][3, 3] == pytest.approx(mask_cos[0, 0])
  assert plot.data["sin"][3, 3] == pytest.approx(mask_sin[0, 0])
  for i in range(num_t):
    for j in range(num_n):
      assert plot.data["cos"][(i + num_t // 2) % num_t, (j + num_n // 2) % num_n] == pytest.approx(mask_cos[i, j])
  np.testing.assert_allclose(plot.data["temporal_frequency"], [-3 / 7, -2 / 7, -1 / 7, 0, 1 / 7, 2 / 7, 3 / 7])
  np.testing.assert_allclose(plot.data["joint_frequency"], [-3 / 6, -2 / 6, -1 / 6, 0, 1 / 6, 2 / 6])


def test_frequency_masks_reject_mismatched_shapes(tmp_path):
  with pytest.raises(ValueError, match="mask_sin shape"):
    visualize.plot_frequency_masks(np.zeros((4, 5)), np.zeros((5, 4)), tmp_path / "masks.png")


def test_nonlocal_affinity_row(tmp_path):
  num_t, num_n = 8, 6
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(num_t * num_n, num_t * num_n))
  affinity = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  by_index = visualize.plot_nonlocal_affinity(affinity, 20, (num_t, num_n), tmp_path / "a.png")
  by_cell = visualize.plot_nonlocal_affinity(affinity, (3, 2), (num_t, num_n), tmp_path / "b.png")
  assert _is_image(by_index.path) and _is_image(by_cell.path)
  # Query (t=3, n=2) is position 3 * 6 + 2 = 20; key (t=5, n=4) is position 34.
  assert by_index.data["affinity"].shape == (num_t, num_n)
  assert by_index.data["affinity"][5, 4] == pytest.approx(affinity[20, 34])
  assert by_index.data["affinity"][0, 0] == pytest.approx(affinity[20, 0])
  np.testing.assert_array_equal(by_index.data["query"], [3, 2])
  np.testing.assert_array_equal(by_cell.data["affinity"], by_index.data["affinity"])
  assert by_index.data["affinity"].sum() == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize(
  ("affinity_shape", "query", "message"),
  [((48, 47), 0, "does not match grid_shape"), ((48, 48), (8, 0), "outside"), ((48, 48), 48, "outside")],
)
def test_nonlocal_affinity_rejects_bad_input(tmp_path, affinity_shape, query, message):
  with pytest.raises(ValueError, match=message):
    visualize.plot_nonlocal_affinity(np.zeros(affinity_shape), query, (8, 6), tmp_path / "a.png")


def test_animation_has_one_frame_per_clip_frame(tmp_path):
  num_frames, num_joints = 8, 25
  # A still skeleton: every picture is the same pose, and the GIF must still keep all T frames.
  pose = np.random.default_rng(2).normal(size=(num_joints, 3)).astype(np.float32)
  skeleton = np.broadcast_to(pose, (num_frames, num_joints, 3))
  weights = np.arange(num_frames * num_joints, dtype=np.float32).reshape(num_frames, num_joints)
  plot = visualize.animate_skeleton(skeleton, visualize.NTU25_BONES, weights, tmp_path / "clip.gif")
  with Image.open(plot.path) as gif:
    assert gif.format == "GIF"
    assert gif.n_frames == num_frames
  assert plot.data["weights"].shape == (num_frames, 1, num_joints)
  np.testing.assert_allclose(plot.data["weights"][:, 0], weights / weights.max())


def test_animation_two_persons_and_per_joint_weights(tmp_path):
  num_frames, num_joints = 5, 18
  skeleton = np.random.default_rng(3).random((num_frames, 2, num_joints, 3)).astype(np.float32)
  skeleton[:, 1] = 0.0  # the second person is absent (zero padding): nothing of it is drawn
  weights = np.linspace(0.0, 2.0, num_joints)
  plot = visualize.animate_skeleton(
    skeleton, visualize.OPENPOSE18_BONES, weights, tmp_path / "clip.gif", image_coordinates=True
  )
  with Image.open(plot.path) as gif:
    assert gif.n_frames == num_frames
  np.testing.assert_allclose(plot.data["weights"][3, 1], weights / 2.0)


def test_animation_rejects_mismatched_weights(tmp_path):
  with pytest.raises(ValueError, match="does not broadcast"):
    visualize.animate_skeleton(np.ones((4, 20, 3)), visualize.MSR20_BONES, np.ones((4, 19)), tmp_path / "c.gif")


def test_ntu_bones_are_the_official_parent_list():
  official = {frozenset((j, p - 1)) for j, p in enumerate(NTU_CONNECTING_JOINT) if j != p - 1}
  assert {frozenset(bone) for bone in visualize.NTU25_BONES} == official
  assert len(visualize.NTU25_BONES) == 24


@pytest.mark.parametrize("num_joints", [25, 20, 18])
def test_bone_tables_are_trees_over_all_joints(num_joints):
  bones = visualize.BONES[num_joints]
  assert len(bones) == num_joints - 1
  # Connected with V - 1 edges <=> a spanning tree: walk from joint 0.
  neighbours = {j: set() for j in range(num_joints)}
  for a, b in bones:
    neighbours[a].add(b)
    neighbours[b].add(a)
  seen, frontier = {0}, [0]
  while frontier:
    for k in neighbours[frontier.pop()] - seen:
      seen.add(k)
      frontier.append(k)
  assert seen == set(range(num_joints))


def test_per_class_accuracy_hand_worked():
  cm = np.array([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
  accuracy = visualize.per_class_accuracy(cm)
  np.testing.assert_allclose(accuracy[[0, 2]], [0.75, 0.5])
  assert np.isnan(accuracy[1])  # no example of class 1: undefined, not 0


def test_confusion_matrix_plot(tmp_path):
  cm = np.array([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
  plot = visualize.plot_confusion_matrix(cm, ["wave", "kick", "clap"], tmp_path / "cm.png")
  assert _is_image(plot.path)
  np.testing.assert_allclose(plot.data["normalized"], [[0.75, 0.25, 0.0], [0.0, 0.0, 0.0], [0.25, 0.25, 0.5]])
  np.testing.assert_allclose(plot.data["accuracy"][[0, 2]], [0.75, 0.5])
  with pytest.raises(ValueError, match="2 class names for a 3-class"):
    visualize.plot_confusion_matrix(cm, ["wave", "kick"], tmp_path / "cm.png")
  with pytest.raises(ValueError, match="square"):
    visualize.per_class_accuracy(np.ones((2, 3)))


def _write_jsonl(path, records):
  path.write_text("".join(json.dumps(record) + "\n" for record in records))


def _record(step, epoch, split, **metrics):
  """One line as the trainer writes it (slnl_jax/evaluation.py MetricsLog)."""
  return {"step": step, "epoch": epoch, "split": split, **metrics}


def test_learning_curves_from_metrics_jsonl(tmp_path):
  metrics = tmp_path / "metrics.jsonl"
  _write_jsonl(
    metrics,
    [
      _record(1, 0, "train", loss=3.0, concat_top1=0.1, learning_rate=1e-3),
      _record(2, 0, "train", loss=2.0, concat_top1=0.2, learning_rate=1e-3),
      _record(2, 0, "eval", concat_loss=2.5, top1=0.3, concat_top1=0.25, position_top1=0.2, num_examples=8.0),
      _record(3, 1, "train", loss=1.5),
      _record(4, 1, "train", loss=0.5),
      _record(4, 1, "eval", concat_loss=1.0, top1=0.625, concat_top1=0.5, position_top1=0.375, num_examples=8.0),
      _record(5, 2, "train", loss=0.25),
    ],
  )
  records = visualize.read_metrics(metrics)
  assert len(records) == 7
  assert records[2] == {
    "step": 2, "epoch": 0, "split": "eval", "concat_loss": 2.5, "top1": 0.3, "concat_top1": 0.25,
    "position_top1": 0.2, "num_examples": 8.0,
  }  # fmt: skip
  plot = visualize.plot_learning_curves(metrics, tmp_path / "curves.png")
  assert _is_image(plot.path)
  np.testing.assert_allclose(plot.data["train_epoch"], [0, 1, 2])
  np.testing.assert_allclose(plot.data["train_loss"], [2.5, 1.0, 0.25])  # the mean of each epoch's records
  np.testing.assert_allclose(plot.data["eval_epoch"], [0, 1])
  np.testing.assert_allclose(plot.data["eval_top1"], [0.3, 0.625])  # the prediction's top-1 (eval_heads)
  position = visualize.plot_learning_curves(metrics, tmp_path / "position.png", eval_metric="position_top1")
  np.testing.assert_allclose(position.data["eval_top1"], [0.2, 0.375])


def test_read_metrics_names_the_bad_line(tmp_path):
  metrics = tmp_path / "metrics.jsonl"
  metrics.write_text(json.dumps(_record(1, 0, "train", loss=1.0)) + '\n\n{"step": 2, "metrics": \n')
  with pytest.raises(ValueError, match=r"metrics.jsonl:3: not a JSON object"):
    visualize.read_metrics(metrics)
  metrics.write_text("[2, 1.0]\n")
  with pytest.raises(ValueError, match=r"metrics.jsonl:1: expected a JSON object"):
    visualize.read_metrics(metrics)


def test_learning_curves_need_eval_records(tmp_path):
  metrics = tmp_path / "metrics.jsonl"
  _write_jsonl(metrics, [_record(1, 0, "train", loss=1.0)])
  with pytest.raises(ValueError, match="no 'eval' record carries 'top1'"):
    visualize.plot_learning_curves(metrics, tmp_path / "curves.png")


def test_sown_finds_every_module_path():
  cos_a, cos_b, other = np.zeros((2, 3)), np.ones((2, 3)), np.full((1,), 7.0)
  intermediates = {
    "position_stream": {"frequency_attention": {"fa_mask_cos": (cos_a,), "fa_mask_sin": (other,)}},
    "velocity_stream": {"frequency_attention": {"fa_mask_cos": (cos_b,)}},
  }
  found = visualize.sown(intermediates, "fa_mask_cos")
  assert set(found) == {"position_stream/frequency_attention", "velocity_stream/frequency_attention"}
  np.testing.assert_array_equal(found["velocity_stream/frequency_attention"], cos_b)
  assert visualize.sown(intermediates, "st_affinity") == {}


def test_input_saliency_of_a_linear_model():
  # logits_k = sum_{m,t,v,c} x[m,t,v,c] W[m,t,v,c,k] + b_k: d logit_k / d x = W[..., k] exactly.
  rng = np.random.default_rng(4)
  x = rng.normal(size=(3, 2, 4, 5, 3)).astype(np.float32)
  w = rng.normal(size=(2, 4, 5, 3, 6)).astype(np.float32)
  b = rng.normal(size=6).astype(np.float32)

  def logits_fn(x):
    return jnp.einsum("bmtvc,mtvck->bk", x, w) + b

  saliency, target = visualize.input_saliency(logits_fn, x)
  expected_target = np.argmax(np.einsum("bmtvc,mtvck->bk", x, w) + b, axis=-1)
  np.testing.assert_array_equal(target, expected_target)
  for i in range(3):
    np.testing.assert_allclose(saliency[i], np.abs(w[..., expected_target[i]]).sum(-1), rtol=1e-6)
  chosen, _ = visualize.input_saliency(logits_fn, x, target=np.array([0, 1, 2]))
  np.testing.assert_allclose(chosen[2], np.abs(w[..., 2]).sum(-1), rtol=1e-6)


# A model small enough to train for a few steps in a test, on the synthetic demo data (8 classes, NTU layout).
TINY = {
  "dataset.name": "synthetic_skeleton/xsub",
  "dataset.num_classes": 8,
  "dataset.num_frames": 8,
  "model.num_joints_out": 8,
  "model.num_systems": 2,
  "model.channels": "(8,8)",
  "model.kernel_sizes": "(3,3)",
  "model.num_slnl_blocks": 1,
  "model.fa_reduction": 4,
  "train.batch_size": 8,
  "train.eval_batch_size": 8,
  "train.steps_per_epoch": 2,
  "train.num_epochs": 1,
  "train.log_every_steps": 1,
  "dataset.eval_heads": "all",  # the tool's prediction follows it (checked against the Predictor below) ...
  "dataset.eval_clips": 3,  # ... and scores every evaluation view, not just the one it draws
}


@pytest.mark.slow
def test_tool_writes_all_five_pictures(tmp_path):
  env = {
    **os.environ,
    "JAX_COMPILATION_CACHE_DIR": str(REPO_ROOT / ".jax_cache"),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "1",
  }
  workdir, data_dir = tmp_path / "workdir", tmp_path / "tfds"
  overrides = [f"--config.{key}={value}" for key, value in TINY.items()]
  trained = subprocess.run(
    [sys.executable, "-m", "slnl_jax.main", "--config=configs/default.py", f"--workdir={workdir}",
     f"--config.dataset.data_dir={data_dir}", f"--jax_cache_dir={REPO_ROOT / '.jax_cache'}", *overrides],
    cwd=REPO_ROOT, env=env, capture_output=True, text=True,
  )  # fmt: skip
  assert trained.returncode == 0, trained.stderr[-3000:]
  # The printed prediction is evaluation's (the three crops), not the drawn view's: the tool runs on a clip whose
  # two predictions differ (a model trained for two steps has near-equal probabilities, so some clips do).
  predictor = inference.Predictor.from_workdir(workdir)
  files = sorted((data_dir / "downloads" / "synthetic_skeleton").glob("*.skeleton"))[:64]
  skeletons = [readers.read_file(f).skeleton for f in files]
  tops = [top[0] for top in predictor.predict(skeletons, top_k=1)]  # (label, probability) of each clip
  drawn = np.concatenate([inference.prepare_clip(s, predictor.config) for s in skeletons])
  logits = models.create_model(predictor.config).apply(predictor.variables, drawn, train=False)
  drawn_labels = [predictor.class_names[i] for i in np.argmax(steps.scored_probabilities(logits, "all"), -1)]
  differ = [i for i, (top, drawn_label) in enumerate(zip(tops, drawn_labels, strict=True)) if top[0] != drawn_label]
  assert differ, "no clip whose drawn view and evaluation views disagree: the check below could not fail"
  clip = files[differ[0]]
  out = tmp_path / "pictures"
  result = subprocess.run(
    [sys.executable, "tools/visualize.py", f"--workdir={workdir}", f"--input={clip}", f"--out={out}"],
    cwd=REPO_ROOT, env=env, capture_output=True, text=True,
  )  # fmt: skip
  assert result.returncode == 0, result.stderr[-3000:]
  for name in ("frequency_masks.png", "nonlocal_affinity.png", "confusion_matrix.png", "learning_curves.png"):
    assert _is_image(out / name), name
  with Image.open(out / "skeleton_attention.gif") as gif:
    assert gif.n_frames == TINY["dataset.num_frames"]
  # The printed prediction is the model's as `inference.Predictor` scores it: the three heads' probabilities
  # averaged over the three evaluation crops (the picture shows one).
  label, probability = tops[differ[0]]
  printed = re.search(r"predicted (.+) \(p = ([0-9.]+)\)", result.stdout)
  assert printed and printed[1] == label, result.stdout
  assert float(printed[2]) == pytest.approx(probability, abs=1e-3)
