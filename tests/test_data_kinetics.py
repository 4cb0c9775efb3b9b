"""Kinetics-skeleton reader: the 7 real clips, the real label files, and bad input.

Expected figures come from shared/data/kinetics_skeleton/SOURCE.md and from plain `json` parsing
here, never from the reader itself.
"""

import json

import numpy as np
import pytest

from slnl_jax.data import kinetics
from slnl_jax.data.errors import SkeletonFormatError

# SOURCE.md: clip -> (label, label_index, frames, min persons/frame, max persons/frame,
# frames with 0 persons).
REAL_CLIPS = {
  "__NrybzYzUg": ("abseiling", 0, 299, 0, 2, 234),
  "__PYrzYbzKE": ("jumpstyle dancing", 173, 299, 5, 11, 0),
  "__U_scuxNlQ": ("clay pottery making", 58, 299, 1, 2, 0),
  "__lt03EF4ao": ("passing American football (in game)", 208, 249, 1, 9, 0),
  "__u6odV5hrI": ("parkour", 207, 299, 0, 2, 269),
  "__vOysOPoCY": ("parkour", 207, 249, 0, 3, 82),
  "__vzEs2wzdQ": ("strumming guitar", 335, 164, 0, 5, 1),
}


def _root(shared_data):
  return shared_data / "kinetics_skeleton"


def _clip_path(shared_data, name):
  return _root(shared_data) / "kinetics-skeleton" / "kinetics_val_old" / f"{name}.json"


@pytest.fixture(scope="module")
def val_labels(shared_data):
  return kinetics.read_labels(_root(shared_data) / "kinetics-skeleton" / "kinetics_val_label-old.json")


@pytest.mark.parametrize("name", sorted(REAL_CLIPS))
def test_real_clip(shared_data, val_labels, name):
  label, label_index, frames, min_persons, max_persons, empty = REAL_CLIPS[name]
  path = _clip_path(shared_data, name)
  video = json.loads(path.read_text())
  counts = [len(frame["skeleton"]) for frame in video["data"]]
  assert (len(counts), min(counts), max(counts), counts.count(0)) == (
    frames, min_persons, max_persons, empty
  )  # fmt: skip

  assert val_labels[name]["label_index"] == label_index
  clip = kinetics.read_clip(path, label_index=val_labels[name]["label_index"])
  assert clip.skeleton.shape == (frames, 2, 18, 3) and clip.skeleton.dtype == np.float32
  assert clip.label == label_index and clip.name == name
  assert clip.meta["label_name"] == label
  assert clip.meta["empty_frames"] == empty
  assert clip.meta["max_persons_seen"] == max_persons
  assert clip.meta["truncated_frames"] == 0

  # Per frame, the kept persons are the most confident ones, most confident first.
  for frame in video["data"]:
    t = frame["frame_index"] - 1
    sums = sorted((sum(p["score"]) for p in frame["skeleton"]), reverse=True)[:2]
    sums += [0.0] * (2 - len(sums))
    np.testing.assert_allclose(clip.skeleton[t, :, :, 2].sum(axis=-1), sums, atol=1e-4)
    assert clip.skeleton[t, 1].any() == (len(frame["skeleton"]) >= 2)


def test_first_person_values(shared_data):
  # SOURCE.md: the first person of frame 1 of __U_scuxNlQ, shifted by -0.5 as ST-GCN does;
  # joint 9 has score 0 (not detected) and pose (0, 0): it stays (0, 0, 0).
  clip = kinetics.read_clip(_clip_path(shared_data, "__U_scuxNlQ"))
  np.testing.assert_allclose(clip.skeleton[0, 0, 0], [0.593 - 0.5, 0.424 - 0.5, 0.275], atol=1e-6)
  np.testing.assert_allclose(clip.skeleton[0, 0, 17], [0.612 - 0.5, 0.448 - 0.5, 0.902], atol=1e-6)
  np.testing.assert_array_equal(clip.skeleton[0, 0, 9], [0.0, 0.0, 0.0])
  assert clip.label == 58  # the file's own label_index when none is given


def test_a_utf8_byte_order_mark_is_accepted(shared_data, tmp_path):
  path = _clip_path(shared_data, "__U_scuxNlQ")
  bom_path = tmp_path / path.name
  bom_path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
  np.testing.assert_array_equal(kinetics.read_clip(bom_path).skeleton, kinetics.read_clip(path).skeleton)


def test_scores_above_one_are_kept(shared_data):
  clip = kinetics.read_clip(_clip_path(shared_data, "__lt03EF4ao"))
  assert clip.skeleton[..., 2].max() == pytest.approx(1.176, abs=1e-6)


def test_label_file_and_class_names(shared_data, val_labels):
  names = kinetics.read_class_names(_root(shared_data) / "resource" / "kinetics_skeleton" / "label_name.txt")
  assert len(names) == 400 and names[0] == "abseiling" and names[399] == "zumba"
  assert len(val_labels) == 19906
  assert sum(not e["has_skeleton"] for e in val_labels.values()) == 110
  assert {e["label_index"] for e in val_labels.values()} == set(range(400))
  assert all(names[e["label_index"]] == e["label"] for e in val_labels.values())
  for name, (label, label_index, *_) in REAL_CLIPS.items():
    assert val_labels[name] == {"has_skeleton": True, "label": label, "label_index": label_index}


# ---------------------------------------------------------------------------------------------
# Files built here.


def _person(score, x=0.3, y=0.6):
  """A person with every joint at (x, y) and the given score."""
  return {"pose": [x, y] * 18, "score": [score] * 18}


def _write(tmp_path, data, name="clip.json", **extra):
  path = tmp_path / name
  path.write_text(json.dumps({"data": data, **extra}))
  return path


def test_more_persons_than_kept(tmp_path):
  scores = [0.2, 0.9, 0.1, 0.5, 0.7]
  data = [{"frame_index": 1, "skeleton": [_person(s, x=s) for s in scores]}]
  clip = kinetics.read_clip(_write(tmp_path, data))
  assert clip.meta["max_persons_seen"] == 5
  np.testing.assert_allclose(clip.skeleton[0, :, 0], [[0.9 - 0.5, 0.1, 0.9], [0.7 - 0.5, 0.1, 0.7]])
  clip = kinetics.read_clip(_write(tmp_path, data), max_persons=3)
  np.testing.assert_allclose(clip.skeleton[0, :, 0, 2], [0.9, 0.7, 0.5])


def test_frames_without_person_stay_as_zeros(tmp_path):
  data = [{"frame_index": i, "skeleton": [_person(0.5)] if i in (3, 5) else []} for i in (2, 3, 4, 5, 6)]
  clip = kinetics.read_clip(_write(tmp_path, data))
  assert clip.num_frames == 6  # frame_index 1 is absent, 6 is the last: both zeros
  assert clip.skeleton.any(axis=(1, 2, 3)).tolist() == [False, False, True, False, True, False]
  assert clip.meta["empty_frames"] == 4
  assert clip.label == -1  # neither the file nor the caller gives one


def test_undetected_joints_are_zero(tmp_path):
  person = _person(0.5)
  person["score"][4] = 0.0
  clip = kinetics.read_clip(_write(tmp_path, [{"frame_index": 1, "skeleton": [person]}]))
  np.testing.assert_array_equal(clip.skeleton[0, 0, 4], [0.0, 0.0, 0.0])
  np.testing.assert_allclose(clip.skeleton[0, 0, 5], [0.3 - 0.5, 0.6 - 0.5, 0.5])


def test_frames_beyond_max_frames_are_counted(tmp_path):
  data = [{"frame_index": i, "skeleton": [_person(0.5)]} for i in range(1, 8)]
  clip = kinetics.read_clip(_write(tmp_path, data), max_frames=5)
  assert clip.num_frames == 5 and clip.meta["truncated_frames"] == 2


def test_labels(tmp_path):
  data = [{"frame_index": 1, "skeleton": [_person(0.5)]}]
  path = _write(tmp_path, data, label="zumba", label_index=399)
  assert kinetics.read_clip(path).label == 399
  assert kinetics.read_clip(path, label_index=399).label == 399
  with pytest.raises(SkeletonFormatError, match="disagrees"):
    kinetics.read_clip(path, label_index=3)
  with pytest.raises(SkeletonFormatError, match="label_index"):
    kinetics.read_clip(_write(tmp_path, data, label_index="399"))


@pytest.mark.parametrize(
  "data, message",
  [
    ([], "zero-length"),
    ([{"frame_index": 1, "skeleton": []}, {"frame_index": 2, "skeleton": []}], "no person"),
    ([{"frame_index": 1, "skeleton": [{"pose": [0.1] * 34, "score": [0.5] * 18}]}], "18 joints"),
    ([{"frame_index": 1, "skeleton": [{"pose": [0.1] * 36, "score": [0.5] * 17}]}], "18 joints"),
    ([{"frame_index": 1, "skeleton": [{"pose": [0.1] * 36}]}], "score"),
    ([{"frame_index": 1, "skeleton": [{"pose": [0.1] * 35 + [float("nan")], "score": [0.5] * 18}]}], "NaN"),
    ([{"frame_index": 1, "skeleton": [{"pose": [0.1] * 35 + [1e39], "score": [0.5] * 18}]}], "float32"),
    ([{"frame_index": 1, "skeleton": [{"pose": ["a"] * 36, "score": [0.5] * 18}]}], "36 numbers"),
    ([{"frame_index": 1, "skeleton": [_person(0.5)]}] * 2, "appears twice"),
    ([{"frame_index": 0, "skeleton": [_person(0.5)]}], "1-based"),
    ([{"frame_index": True, "skeleton": [_person(0.5)]}], "1-based"),
    ([{"frame_index": 1}], "skeleton"),
    ([{"frame_index": 1, "skeleton": ["person"]}], "pose"),
  ],
)
def test_malformed_clip(tmp_path, data, message):
  path = _write(tmp_path, data)
  with pytest.raises(SkeletonFormatError, match=message) as e:
    kinetics.read_clip(path)
  assert str(e.value).startswith(str(path))


def test_invalid_json_names_the_line(tmp_path):
  path = tmp_path / "clip.json"
  path.write_text('{"data": [\n  {"frame_index": 1,\n   "skeleton": [}\n]}\n')
  with pytest.raises(SkeletonFormatError, match="invalid JSON") as e:
    kinetics.read_clip(path)
  assert e.value.line == 3
  path.write_text('{"frames": []}')
  with pytest.raises(SkeletonFormatError, match='"data"'):
    kinetics.read_clip(path)


def test_malformed_label_files(tmp_path):
  path = tmp_path / "kinetics_val_label.json"
  path.write_text(json.dumps({"abc": {"has_skeleton": True, "label": "x", "label_index": 0},
                              "def": {"has_skeleton": 1, "label": "x", "label_index": 0}}))  # fmt: skip
  with pytest.raises(SkeletonFormatError, match="'def'"):
    kinetics.read_labels(path)
  path = tmp_path / "label_name.txt"
  path.write_text("abseiling\r\nair drumming\r\n\r\nzumba\r\n")
  with pytest.raises(SkeletonFormatError, match="empty line") as e:
    kinetics.read_class_names(path)
  assert e.value.line == 3
  path.write_text("abseiling\nzumba\nabseiling\n")
  with pytest.raises(SkeletonFormatError, match="already named on line 1") as e:
    kinetics.read_class_names(path)
  assert e.value.line == 3
