"""N-UCLA reader and builder: all 1,484 real JSON files, the single-frame clip, bad input, the TFDS splits.

Expected figures come from shared/data/nw_ucla/SOURCE.md (counts per view, the label table, the action names),
values copied by hand from the files, and the file names; never from the reader itself.
"""

import json
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import require_real_data, shared_data_dir

from slnl_jax import input_pipeline
from slnl_jax.data import builders, nw_ucla, readers
from slnl_jax.data.errors import SkeletonFormatError

# SOURCE.md: action id in the file name -> the file's label.
LABEL_OF_ACTION = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 8: 7, 9: 8, 11: 9, 12: 10}
SINGLE_FRAME = "a02_s09_e04_v03"


@pytest.fixture(scope="module")
def all_sqe() -> pathlib.Path:
  return require_real_data(shared_data_dir() / "nw_ucla" / "all_sqe")


def _names(paths):
  return [p.stem for p in paths]


def test_every_real_file(all_sqe):
  paths = sorted(all_sqe.glob("*.json"))
  assert len(paths) == 1484
  views = {1: 0, 2: 0, 3: 0}
  for path in paths:
    clip = nw_ucla.read_clip(path)
    action, subject, execution, view = (int(path.stem[i : i + 2]) for i in (1, 5, 9, 13))
    views[view] += 1
    # Frames counted in the raw text: one "[[" opens each frame's joint list (the first inside the "[[[").
    frames = path.read_text().count("[[")
    assert clip.skeleton.shape == (frames, 1, 20, 3), path.name
    assert clip.skeleton.dtype == np.float32
    assert clip.label == LABEL_OF_ACTION[action] - 1
    assert clip.name == path.stem
    assert clip.meta == dict(action=action, subject=subject, execution=execution, view=view)
  assert views == {1: 516, 2: 504, 3: 464}


def test_single_frame_clip(all_sqe):
  clip = readers.read_file(all_sqe / f"{SINGLE_FRAME}.json")
  assert clip.skeleton.shape == (1, 1, 20, 3)
  assert clip.label == 1  # a02: pick up with two hands
  np.testing.assert_allclose(clip.skeleton[0, 0, 0], [-0.599418, 0.394726, 3.12975], rtol=1e-6)
  np.testing.assert_allclose(clip.skeleton[0, 0, 19], [-0.581904, -0.399555, 3.4592], rtol=1e-6)
  # The pipeline's temporal resize turns it into T copies of that frame.
  out = input_pipeline.crop_and_resize(clip.skeleton, 1, out_frames=16, ratio=0.5, offset_fraction=0.7).numpy()
  np.testing.assert_array_equal(out, np.repeat(clip.skeleton, 16, axis=0))


def test_first_values(all_sqe):
  clip = nw_ucla.read_clip(all_sqe / "a01_s01_e00_v01.json")
  np.testing.assert_allclose(clip.skeleton[0, 0, :2], [[-0.619699, 0.328046, 3.18186], [-0.62041, 0.381968, 3.16288]])


def test_class_names():
  assert nw_ucla.CLASSES == (
    "pick up with one hand", "pick up with two hands", "drop trash", "walk around", "sit down", "stand up",
    "donning", "doffing", "throw", "carry",
  )  # fmt: skip


def _write(tmp_path, content, name="a01_s01_e00_v01.json"):
  path = tmp_path / name
  path.write_text(content if isinstance(content, str) else json.dumps(content))
  return path


def _good(frames=2, label=1, file_name="a01_s01_e00_v01"):
  return {"file_name": file_name, "skeletons": [[[0.1 * j, 0.2, 3.0] for j in range(20)]] * frames, "label": label}


def test_a_written_file_round_trips(tmp_path):
  clip = nw_ucla.read_clip(
    _write(tmp_path, _good(frames=3, label=7, file_name="a08_s02_e01_v02"), "a08_s02_e01_v02.json")
  )
  assert clip.skeleton.shape == (3, 1, 20, 3) and clip.label == 6
  assert clip.skeleton[2, 0, 5].tolist() == pytest.approx([0.5, 0.2, 3.0])
  assert clip.meta == dict(action=8, subject=2, execution=1, view=2)


def _frame(joints):
  return [[0.0, 0.0, 1.0]] * joints


@pytest.mark.parametrize(
  ("content", "message", "line"),
  [
    ('{"file_name": "a01_s01_e00_v01",\n "skeletons": [[[1, 2', "invalid JSON", 2),
    ([1, 2], "expected a JSON object", None),
    ({"file_name": "a01_s01_e00_v01", "label": 1}, "expected a JSON object with", None),
    ({**_good(), "skeletons": []}, "non-empty list of frames", None),
    ({**_good(), "skeletons": [_frame(20), _frame(19)]}, "frame 2: expected 20 joints of 3 numbers", None),
    ({**_good(), "skeletons": [[["x", 0, 0]] * 20]}, "frame 1: expected 20 joints", None),
    ({**_good(), "skeletons": [_frame(20), [[0.0, float("nan"), 1.0]] * 20]}, "frame 2: NaN/Inf", None),
    ({**_good(), "skeletons": [[[1e39, 0.0, 1.0]] * 20]}, "frame 1: NaN/Inf (or beyond float32)", None),
    (_good(label=0), "label: expected an integer in 1..10", None),
    (_good(label=11), "label: expected an integer in 1..10", None),
    (_good(label=True), "label: expected an integer in 1..10", None),
    (_good(label=2), "label 2 is action a02, but the name says a01", None),
    (_good(file_name="a01_s01_e00_v02"), "disagrees with the file's own name", None),
    ({**_good(), "file_name": 3}, "file_name: expected a string", None),
  ],
)
def test_bad_input(tmp_path, content, message, line):
  path = _write(tmp_path, content)
  with pytest.raises(SkeletonFormatError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
    readers.read_file(path)
  assert info.value.path == str(path) and info.value.line == line


def test_other_names(tmp_path):
  # Any name still reads as N-UCLA through nw_ucla.read_clip (ids from file_name); readers.read_file sends other
  # JSON names to the Kinetics reader, which names what it expected.
  path = _write(tmp_path, _good(), "mine.json")
  assert nw_ucla.read_clip(path).meta["view"] == 1
  with pytest.raises(SkeletonFormatError, match=r"mine\.json"):
    readers.read_file(path)


@pytest.fixture(scope="module")
def subset(all_sqe, tmp_path_factory):
  """Real files of subject 1, actions a01, a02 and a12 (every view; subject 1's a02 view-3 files and the one-frame
  a02_s09_e04_v03 repeat their view-2 files), one truncated copy and one badly named file."""
  raw = tmp_path_factory.mktemp("nw_ucla_raw")
  chosen = sorted(
    [
      *all_sqe.glob("a01_s01_*.json"),
      *all_sqe.glob("a02_s01_*.json"),
      *all_sqe.glob("a12_s01_*.json"),
      *all_sqe.glob(f"{SINGLE_FRAME[:-4]}_v0[23].json"),
    ]
  )
  for path in chosen:
    shutil.copy(path, raw / path.name)
  truncated = "a03_s01_e00_v01.json"
  (raw / truncated).write_text((all_sqe / truncated).read_text()[:500])
  (raw / "nested").mkdir()
  shutil.copy(all_sqe / "a04_s01_e00_v01.json", raw / "nested" / "a04_s01_e00_v07.json")
  return raw, _names(chosen)


def _records(builder, split):
  return {r["name"].decode(): r for r in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False))}


@pytest.mark.parametrize(
  ("config", "train_views", "test_view"), [("cross_view", (1, 2), 3), ("view_val", (1,), 2), ("view_val2", (2,), 1)]
)
def test_builder_splits_and_report(subset, tmp_path, config, train_views, test_view):
  raw, names = subset
  builder = builders.build(f"nw_ucla/{config}", manual_dir=raw, data_dir=tmp_path)
  by_view = {v: sorted(n for n in names if int(n[-2:]) == v) for v in (1, 2, 3)}
  train, test = _records(builder, "train"), _records(builder, "test")
  assert sorted(train) == sorted(n for v in train_views for n in by_view[v])
  assert sorted(test) == by_view[test_view]
  assert builder.info.features["label"].names == list(nw_ucla.CLASSES)
  for name, record in {**train, **test}.items():
    assert record["label"] == LABEL_OF_ACTION[int(name[1:3])] - 1
    assert record["camera"] == int(name[-2:]) and record["subject"] == int(name[5:7])
    assert record["num_frames"] == record["skeleton"].shape[0]
  report = json.loads((pathlib.Path(builder.data_dir) / builders.REPORT_NAME).read_text())
  skipped = {pathlib.Path(s["file"]).name: s["reason"] for s in report["skipped"]}
  assert set(skipped) == {"a03_s01_e00_v01.json", "a04_s01_e00_v07.json"}
  assert "invalid JSON" in skipped["a03_s01_e00_v01.json"]
  assert "view v01-v03" in skipped["a04_s01_e00_v07.json"]
  held_out = [] if config == "cross_view" else by_view[3]
  assert sorted(pathlib.Path(e["file"]).stem for e in report["excluded"]) == held_out
  assert report["seen"] == len(names) + 2 == report["written"] + report["num_skipped"] + report["num_excluded"]
  # Test clips with the same frames as a training clip, found by comparing the JSON files' lists directly.
  frames = {n: json.loads((raw / f"{n}.json").read_text())["skeletons"] for n in names}
  expected = sorted(t for t in test if any(frames[t] == frames[n] for n in train))
  assert sorted(test_name for test_name, _ in report["test_copies_of_training"]) == expected
  for test_name, train_name in report["test_copies_of_training"]:
    assert train_name in train and frames[test_name] == frames[train_name]
  assert (len(expected) > 0) == (config == "cross_view")  # only view 3 repeats view 2 here
