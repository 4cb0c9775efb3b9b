"""PYSKL / mmaction2 annotation pickles: hand-written files of the published layout, hand-worked expectations."""

import os
import pickle

import numpy as np
import pytest

from slnl_jax.data import arrays, pyskl
from slnl_jax.data.errors import SkeletonFormatError


def _coco_annotation(frame_dir, label):
  """One person, 2 frames of COCO-17 pixels in a 200 x 100 image; joint 0 moves, joint 1 is undetected."""
  keypoint = np.full((1, 2, 17, 2), 100.0, np.float32)  # the image centre (100, 50) in x ...
  keypoint[..., 1] = 50.0  # ... and y
  keypoint[0, 0, 0] = (150.0, 25.0)
  keypoint[0, 1, 0] = (0.0, 100.0)
  score = np.full((1, 2, 17), 0.5, np.float32)
  score[0, :, 1] = 0.0
  return {
    "frame_dir": frame_dir,
    "label": label,
    "img_shape": (100, 200),
    "original_shape": (100, 200),
    "total_frames": 2,
    "keypoint": keypoint,
    "keypoint_score": score,
  }


def _write(tmp_path, content, name="anno.pkl"):
  path = tmp_path / name
  path.write_bytes(pickle.dumps(content, protocol=4))
  return path


def test_reads_2d_keypoints_as_kinetics_channels(tmp_path):
  path = _write(
    tmp_path,
    {
      "split": {"xsub_train": ["S001C001P001R001A001"], "xsub_val": ["S001C001P002R001A002"]},
      "annotations": [_coco_annotation("S001C001P001R001A001", 0), _coco_annotation("S001C001P002R001A002", 1)],
    },
  )
  annotations = pyskl.read(path)
  assert list(annotations.clips) == ["S001C001P001R001A001", "S001C001P002R001A002"]
  (clip,) = annotations.split("xsub_val")
  assert clip.name == "S001C001P002R001A002" and clip.label == 1
  assert clip.skeleton.shape == (2, 1, 17, 3)  # (T, M, V, x y score)
  # x / 200 - 0.5, y / 100 - 0.5, score.
  np.testing.assert_allclose(clip.skeleton[0, 0, 0], [0.25, -0.25, 0.5], rtol=1e-6)
  np.testing.assert_allclose(clip.skeleton[1, 0, 0], [-0.5, 0.5, 0.5], rtol=1e-6)
  np.testing.assert_array_equal(clip.skeleton[:, 0, 2], [[0.0, 0.0, 0.5]] * 2)  # the centre
  np.testing.assert_array_equal(clip.skeleton[:, 0, 1], 0.0)  # undetected
  with pytest.raises(KeyError, match="xsub_test"):
    annotations.split("xsub_test")


def test_reads_3d_keypoints_and_the_bare_list_layout(tmp_path):
  rng = np.random.default_rng(0)
  keypoint = rng.normal(size=(2, 3, 25, 3)).astype(np.float32)  # (M, T, V, C) metres
  path = _write(tmp_path, [{"frame_dir": "a", "label": 4, "total_frames": 3, "keypoint": keypoint}])
  annotations = pyskl.read(path)
  assert annotations.splits == {}
  clip = annotations.clips["a"]
  assert clip.label == 4
  for t in range(3):
    for m in range(2):
      np.testing.assert_array_equal(clip.skeleton[t, m], keypoint[m, t])


def test_writes_the_custom_data_path(tmp_path):
  annotations = [_coco_annotation("a", 0), _coco_annotation("b", 1), _coco_annotation("c", 1)]
  annotations[2]["keypoint"] = np.concatenate([annotations[2]["keypoint"]] * 2, axis=1)  # 4 frames
  annotations[2]["keypoint_score"] = np.concatenate([annotations[2]["keypoint_score"]] * 2, axis=1)
  annotations[2]["total_frames"] = 4
  path = _write(tmp_path, {"split": {"train": ["a", "c"], "val": ["b"]}, "annotations": annotations})
  pyskl.to_custom_npz(path, tmp_path / "arrays", train_split="train", test_split="val", class_names=["x", "y"])
  expected = pyskl.read(path).clips
  train = list(arrays.iter_clips(tmp_path / "arrays" / "train.npz"))
  assert [clip.name for clip in train] == ["a", "c"]
  for clip in train + list(arrays.iter_clips(tmp_path / "arrays" / "test.npz")):
    want = expected[clip.name].skeleton
    assert clip.skeleton.shape == (want.shape[0], 2, 17, 3)  # padded to 2 persons
    np.testing.assert_array_equal(clip.skeleton[:, :1], want)
    np.testing.assert_array_equal(clip.skeleton[:, 1:], 0.0)
    assert clip.label == expected[clip.name].label
  assert arrays.read_npz(tmp_path / "arrays" / "test.npz")["class_names"] == ("x", "y")


class _RunsCode:
  def __init__(self, target):
    self.target = target

  def __reduce__(self):
    return os.mkdir, (self.target,)


def test_a_pickle_that_runs_code_is_refused_unrun(tmp_path):
  target = str(tmp_path / "created_by_the_pickle")
  annotation = _coco_annotation("a", 0)
  annotation["img_shape"] = _RunsCode(target)
  path = _write(tmp_path, {"split": {}, "annotations": [annotation]})
  with pytest.raises(SkeletonFormatError, match=r"anno\.pkl.*os|posix\.mkdir"):
    pyskl.read(path)
  assert not os.path.exists(target)


@pytest.mark.parametrize(
  ("change", "message"),
  [
    (lambda a: a.pop("keypoint"), r"annotation 0 \(a\): keypoint: expected a 4-D array"),
    (lambda a: a.update(total_frames=5), r"annotation 0 \(a\): total_frames is 5 but keypoint has 2 frames"),
    (lambda a: a.update(label="walk"), r"annotation 0 \(a\): label: expected an integer"),
    (lambda a: a.pop("img_shape"), r"annotation 0 \(a\): img_shape"),
    (lambda a: a.update(keypoint_score=np.ones((1, 2, 5))), r"annotation 0 \(a\): keypoint_score: expected"),
    (lambda a: a.update(keypoint=np.zeros((1, 2, 17, 2)) * np.nan), r"anno\.pkl: a: NaN/Inf"),
  ],
)
def test_bad_annotations_name_the_clip_and_key(tmp_path, change, message):
  annotation = _coco_annotation("a", 0)
  change(annotation)
  with pytest.raises(SkeletonFormatError, match=message):
    pyskl.read(_write(tmp_path, {"split": {}, "annotations": [annotation]}))


def test_a_split_naming_a_missing_clip_is_an_error(tmp_path):
  path = _write(tmp_path, {"split": {"train": ["a", "zz"]}, "annotations": [_coco_annotation("a", 0)]})
  with pytest.raises(SkeletonFormatError, match=r"split 'train': 1 frame_dirs have no annotation, e\.g\. 'zz'"):
    pyskl.read(path)
