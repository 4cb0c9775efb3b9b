"""TFDS builds of the real shared data and of the synthetic set: counts, records, reports, determinism."""

import concurrent.futures
import fcntl
import json
import os
import pathlib
import pickle
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from slnl_jax.data import builders
from slnl_jax.data.errors import SkeletonFormatError

tfds.disable_progress_bar()

# NTU-60 cross-subject training performers (issue 3 / the NTU paper), written out independently.
XSUB_TRAIN = {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38}


def _records(builder, split: str) -> dict[str, dict]:
  return {r["name"].decode(): r for r in tfds.as_numpy(builder.as_dataset(split=split))}


def _report(builder) -> dict:
  return json.loads((pathlib.Path(builder.data_dir) / builders.REPORT_NAME).read_text())


def _link(target: pathlib.Path, link: pathlib.Path) -> None:
  link.parent.mkdir(parents=True, exist_ok=True)
  link.symlink_to(target)


# --- MSR Action3D: all 567 real files, built once per session --------------------------------------


@pytest.fixture(scope="module")
def msr(shared_data, tmp_path_factory):
  manual = shared_data / "msr_action3d"
  builder = builders.build("msr_action3d", manual_dir=manual, data_dir=tmp_path_factory.mktemp("tfds"))
  return builder, manual / "MSRAction3DSkeletonReal3D"


def test_msr_counts_and_report(msr):
  builder, folder = msr
  files = sorted(os.listdir(folder))
  assert len(files) == 567
  odd = sum(int(f.split("_")[1][1:]) % 2 == 1 for f in files)
  assert (odd, len(files) - odd) == (292, 275)  # SOURCE.md's cross-subject counts
  report = _report(builder)
  assert report["seen"] == 567 == report["written"] + report["num_skipped"] + report["num_excluded"]
  assert report["splits"] == {"train": {"seen": 292, "written": 291}, "test": {"seen": 275, "written": 275}}
  assert [(pathlib.Path(s["file"]).name, s["split"]) for s in report["skipped"]] == [
    ("a13_s09_e02_skeleton3D.txt", "train")
  ]
  assert "zero" in report["skipped"][0]["reason"]
  assert builder.info.splits["train"].num_examples == 291
  assert builder.info.splits["test"].num_examples == 275


def test_msr_records_match_the_text_files(msr):
  builder, folder = msr
  records = _records(builder, "test")
  assert len(records) == 275
  for stem in ("a01_s02_e01_skeleton3D", "a20_s02_e01_skeleton3D", "a13_s10_e02_skeleton3D"):
    raw = np.loadtxt(folder / f"{stem}.txt").reshape(-1, 20, 4)[..., :3]
    kept = raw[np.abs(raw).sum(axis=(1, 2)) > 0]  # all-zero frames are dropped by the reader
    record = records[stem]
    assert record["num_frames"] == len(kept) == record["skeleton"].shape[0]
    np.testing.assert_allclose(record["skeleton"][:, 0], kept, rtol=1e-6)
    action, subject, execution = (int(part[1:]) for part in stem.split("_")[:3])
    assert record["label"] == action - 1
    assert (record["subject"], record["replication"]) == (subject, execution)
    assert (record["camera"], record["setup"]) == (-1, -1)
  train_names = {r["name"].decode() for r in tfds.as_numpy(builder.as_dataset(split="train"))}
  assert all(int(n.split("_")[1][1:]) % 2 == 1 for n in train_names)
  assert all(int(n.split("_")[1][1:]) % 2 == 0 for n in records)


def test_msr_load_info(msr):
  builder, _ = msr
  info = builders.load_info("msr_action3d", pathlib.Path(builder.data_dir).parents[2])
  assert info["num_classes"] == 20 and info["class_names"][0] == "high arm wave"
  assert (info["num_persons"], info["num_joints"], info["num_channels"]) == (1, 20, 3)
  assert info["num_examples"] == {"train": 291, "test": 275}


def test_msr_strict_mode_raises_with_the_file(shared_data, tmp_path):
  folder = shared_data / "msr_action3d" / "MSRAction3DSkeletonReal3D"
  for name in ("a01_s01_e01", "a01_s02_e01", "a13_s09_e02"):
    _link(folder / f"{name}_skeleton3D.txt", tmp_path / "raw" / f"{name}_skeleton3D.txt")
  with pytest.raises(SkeletonFormatError, match=r"a13_s09_e02_skeleton3D\.txt"):
    builders.build("msr_action3d", manual_dir=tmp_path / "raw", data_dir=tmp_path / "tfds", skip_bad=False)
  assert not list((tmp_path / "tfds").rglob(builders.REPORT_NAME))  # a failed build leaves nothing


def test_truncated_file_is_skipped_and_counts_reconcile(shared_data, tmp_path):
  folder = shared_data / "msr_action3d" / "MSRAction3DSkeletonReal3D"
  raw = tmp_path / "raw"
  good = ("a01_s01_e01", "a01_s01_e02", "a02_s03_e01", "a01_s02_e01", "a02_s02_e02")
  for name in good:
    _link(folder / f"{name}_skeleton3D.txt", raw / f"{name}_skeleton3D.txt")
  lines = (folder / "a03_s01_e01_skeleton3D.txt").read_text().splitlines(keepends=True)
  (raw / "a03_s01_e01_skeleton3D.txt").write_text("".join(lines[:30]))  # 1.5 frames
  (raw / "a03_s01_e02_skeleton3D.txt").write_text("1 2 3\n")  # a malformed line
  builder = builders.build("msr_action3d", manual_dir=raw, data_dir=tmp_path / "tfds")
  report = _report(builder)
  assert report["seen"] == 7 and report["num_skipped"] == 2 and report["num_excluded"] == 0
  skipped = {pathlib.Path(s["file"]).name: s for s in report["skipped"]}
  assert skipped["a03_s01_e01_skeleton3D.txt"]["line"] == 30
  assert skipped["a03_s01_e02_skeleton3D.txt"]["line"] == 1
  # Records actually in the TFRecords, counted by reading them back.
  written = sum(len(_records(builder, s)) for s in builders.SPLITS)
  assert report["seen"] == written + report["num_skipped"] + report["num_excluded"] == 5 + 2
  assert len(_records(builder, "train")) == 3 and len(_records(builder, "test")) == 2


# --- NTU RGB+D: the 12 real files, the official missing lists -------------------------------------


@pytest.fixture
def ntu_manual(shared_data, tmp_path) -> pathlib.Path:
  source = shared_data / "ntu_rgbd"
  raw = tmp_path / "raw"
  for path in sorted((source / "nturgb+d_skeletons").iterdir()):
    _link(path, raw / "nturgb+d_skeletons" / path.name)
  for path in (source / "Matlab").iterdir():
    _link(path, raw / "Matlab" / path.name)
  # A real file under a name on the official NTU-60 list: the builder must exclude it.
  _link(source / "nturgb+d_skeletons" / "S001C001P001R001A001.skeleton", raw / "S001C002P005R002A008.skeleton")
  return raw


def _ntu_ids(name: str) -> dict[str, int]:
  keys = ("setup", "camera", "subject", "replication", "action")
  return {k: int(name[1 + 4 * i : 4 + 4 * i]) for i, k in enumerate(keys)}


def test_ntu60_xsub_and_xview(ntu_manual, tmp_path):
  real = sorted(p.stem for p in (ntu_manual / "nturgb+d_skeletons").iterdir())
  for config, is_train in (
    ("xsub", lambda ids: ids["subject"] in XSUB_TRAIN),
    ("xview", lambda ids: ids["camera"] in (2, 3)),
  ):
    builder = builders.build(f"ntu_rgbd60/{config}", manual_dir=ntu_manual, data_dir=tmp_path / "tfds")
    report = _report(builder)
    assert report["seen"] == 13 and report["num_skipped"] == 0
    assert report["excluded"] == [
      {
        "file": str(ntu_manual / "S001C002P005R002A008.skeleton"),
        "split": "train",  # P005 is a training performer and C002 a training view
        "reason": "listed in NTU_RGBD_samples_with_missing_skeletons.txt",
      }
    ]
    expected_train = {n for n in real if is_train(_ntu_ids(n))}
    train, test = _records(builder, "train"), _records(builder, "test")
    assert set(train) == expected_train and set(test) == set(real) - expected_train
  record = {**train, **test}["S001C001P001R001A001"]
  assert record["num_frames"] == 103 and record["label"] == 0
  ids = {k: int(record[k]) for k in ("setup", "camera", "subject", "replication")}
  assert ids == {"setup": 1, "camera": 1, "subject": 1, "replication": 1}
  np.testing.assert_allclose(record["skeleton"][0, 0, 0], [0.2181153, 0.1725972, 3.785547], rtol=1e-6)
  np.testing.assert_array_equal(record["skeleton"][:, 1], 0.0)  # one person, second zero-padded
  assert builder.info.features["label"].names[0] == "drink water"


def test_ntu120_xset(ntu_manual, tmp_path):
  builder = builders.build("ntu_rgbd120/xset", manual_dir=ntu_manual, data_dir=tmp_path / "tfds")
  train, test = _records(builder, "train"), _records(builder, "test")
  assert sorted(train) == ["S002C001P003R001A003", "S004C002P003R001A017"]  # even setups
  assert len(test) == 10
  report = _report(builder)
  assert report["seen"] == 13 and report["num_excluded"] == 1  # also on the NTU-120 list
  assert builder.info.features["label"].num_classes == 120


def test_ntu_without_missing_list_is_an_error(shared_data, tmp_path):
  _link(
    shared_data / "ntu_rgbd" / "nturgb+d_skeletons" / "S001C001P001R001A001.skeleton",
    tmp_path / "raw" / "S001C001P001R001A001.skeleton",
  )
  with pytest.raises(FileNotFoundError, match=r"NTU_RGBD_samples_with_missing_skeletons\.txt"):
    builders.build("ntu_rgbd60/xsub", manual_dir=tmp_path / "raw", data_dir=tmp_path / "tfds")


# --- Kinetics-skeleton: the 7 real clips ------------------------------------------------------------


def test_kinetics(shared_data, tmp_path):
  source = shared_data / "kinetics_skeleton"
  clips = source / "kinetics-skeleton" / "kinetics_val_old"
  all_labels = json.loads((source / "kinetics-skeleton" / "kinetics_val_label-old.json").read_text())
  raw = tmp_path / "raw"
  _link(source / "resource" / "kinetics_skeleton" / "label_name.txt", raw / "label_name.txt")
  ids = sorted(p.stem for p in clips.iterdir())
  splits = {"kinetics_train": ids[:2], "kinetics_val": ids[2:]}
  # A real clip stored under the id of a clip the label file marks has_skeleton=false.
  no_skeleton = sorted(k for k, v in all_labels.items() if not v["has_skeleton"])[0]
  for folder, members in splits.items():
    for clip_id in members:
      _link(clips / f"{clip_id}.json", raw / folder / f"{clip_id}.json")
    entries = {k: all_labels[k] for k in members}
    if folder == "kinetics_val":
      _link(clips / f"{ids[2]}.json", raw / folder / f"{no_skeleton}.json")
      entries[no_skeleton] = all_labels[no_skeleton]
    else:
      entries[ids[2]] = all_labels[ids[2]]  # a label entry with no file in this split
    (raw / f"{folder}_label.json").write_text(json.dumps(entries))

  builder = builders.build("kinetics_skeleton", manual_dir=raw, data_dir=tmp_path / "tfds")
  report = _report(builder)
  assert report["seen"] == 8 and report["written"] == 7 and report["num_excluded"] == 1
  assert report["excluded"][0]["reason"] == "has_skeleton is false in kinetics_val_label.json"
  assert report["label_entries_without_file"] == {"train": 1, "test": 0}
  train, test = _records(builder, "train"), _records(builder, "test")
  assert sorted(train) == ids[:2] and sorted(test) == ids[2:]
  names = builder.info.features["label"].names
  assert len(names) == 400
  for clip_id, record in {**train, **test}.items():
    assert names[record["label"]] == all_labels[clip_id]["label"]
    frames = json.loads((clips / f"{clip_id}.json").read_text())["data"]
    assert record["num_frames"] == max(f["frame_index"] for f in frames)
    assert record["skeleton"].shape[1:] == (2, 18, 3)
    assert all(int(record[k]) == -1 for k in builders.PROTOCOL_IDS)
  assert test["__vzEs2wzdQ"]["num_frames"] == 164  # SOURCE.md
  # Class names come back from the built folder alone, through TFDS's registry or our loader.
  assert tfds.builder("kinetics_skeleton", data_dir=tmp_path / "tfds").info.features["label"].names == names
  assert builders.load_info("kinetics_skeleton", tmp_path / "tfds")["class_names"][399] == "zumba"


# --- Synthetic set and determinism ------------------------------------------------------------------


def test_synthetic_generated_when_manual_dir_is_empty(tmp_path):
  data_dir = tmp_path / "tfds"
  builder = builders.build("synthetic_skeleton", manual_dir=None, data_dir=data_dir, num_clips=24, seed=0)
  files = sorted((data_dir / "downloads" / "synthetic_skeleton").glob("*.skeleton"))
  assert len(files) == 24
  train, test = _records(builder, "train"), _records(builder, "test")
  assert set(train) | set(test) == {f.stem for f in files}
  assert all(_ntu_ids(n)["subject"] in XSUB_TRAIN for n in train)
  assert not any(_ntu_ids(n)["subject"] in XSUB_TRAIN for n in test)
  for name, record in {**train, **test}.items():
    assert record["label"] == _ntu_ids(name)["action"] - 1
  info = builders.load_info("synthetic_skeleton", data_dir)
  assert info["num_classes"] == 8 and info["num_persons"] == 2 and info["num_joints"] == 25


def test_builds_are_deterministic(tmp_path):
  from slnl_jax.data import synthetic

  raw = tmp_path / "raw"
  synthetic.write_dataset(raw, num_clips=16, seed=5)
  digests = []
  for run in ("a", "b"):
    builder = builders.build("synthetic_skeleton/xview", manual_dir=raw, data_dir=tmp_path / run)
    shards = sorted(pathlib.Path(builder.data_dir).glob("*.tfrecord*"))
    assert shards
    digests.append({p.name: p.read_bytes() for p in shards})
    assert all(_ntu_ids(n)["camera"] in (2, 3) for n in _records(builder, "train"))
  assert digests[0] == digests[1]


# --- Custom arrays -----------------------------------------------------------------------------------


def test_custom_npz_with_a_bad_row(tmp_path):
  rng = np.random.default_rng(0)
  raw = tmp_path / "raw"
  raw.mkdir()
  shape = (5, 6, 2, 4, 3)  # N, T, M, V, C: distinct sizes catch axis mix-ups
  train, test = rng.normal(size=shape).astype(np.float32), rng.normal(size=shape).astype(np.float32)
  test[3, 2, 0, 1, 0] = np.nan
  test[1] = train[4]  # a copy of a training row, which the report names
  test[0] = train[2]
  test[0, 5, 1, 3, 2] = np.nextafter(train[2, 5, 1, 3, 2], np.inf)  # one value one ulp away: not a copy
  names = np.array(["a", "b", "c"])
  np.savez(raw / "train.npz", skeleton=train, label=np.array([0, 1, 2, 0, 1]), class_names=names)
  np.savez(raw / "test.npz", skeleton=test, label=np.array([2, 1, 0, 0, 1]), class_names=names)
  builder = builders.build("custom_skeleton/mine", manual_dir=raw, data_dir=tmp_path / "tfds")
  report = _report(builder)
  assert report["unit"] == "row" and report["seen"] == 10 and report["written"] == 9
  assert report["skipped"][0]["split"] == "test" and "NaN" in report["skipped"][0]["reason"]
  assert report["test_copies_of_training"] == [["test_1", "train_4"]]
  records = list(tfds.as_numpy(builder.as_dataset(split="train")))
  by_name = {r["name"].decode(): r for r in records}
  np.testing.assert_array_equal(by_name["train_3"]["skeleton"], train[3])
  info = builders.load_info("custom_skeleton/mine", tmp_path / "tfds")
  assert info["class_names"] == ("a", "b", "c")
  assert (info["num_persons"], info["num_joints"], info["num_channels"]) == (2, 4, 3)


def test_custom_stgcn_arrays(tmp_path):
  rng = np.random.default_rng(1)
  raw = tmp_path / "raw"
  raw.mkdir()
  for prefix, n in (("train", 3), ("val", 2)):
    data = rng.normal(size=(n, 3, 7, 5, 2)).astype(np.float32)  # N, C, T, V, M
    np.save(raw / f"{prefix}_data.npy", data)
    with open(raw / f"{prefix}_label.pkl", "wb") as f:
      pickle.dump(([f"{prefix}{i}" for i in range(n)], [i % 4 for i in range(n)]), f)
  builder = builders.build("custom_skeleton", manual_dir=raw, data_dir=tmp_path / "tfds")
  record = _records(builder, "test")["val1"]
  np.testing.assert_array_equal(record["skeleton"][4, 1, 2], data[1, :, 4, 2, 1])  # t=4, m=1, v=2
  info = builders.load_info("custom_skeleton", tmp_path / "tfds")
  assert info["num_classes"] == 3  # labels 0..2 seen
  assert (info["num_persons"], info["num_joints"], info["num_channels"]) == (2, 5, 3)
  assert info["num_examples"] == {"train": 3, "test": 2}


def test_bad_names_and_configs(tmp_path):
  with pytest.raises(ValueError, match="unknown dataset"):
    builders.build("ntu_rgbd61", manual_dir=tmp_path, data_dir=tmp_path)
  with pytest.raises(ValueError, match="CustomSkeletonConfig"):
    builders.CustomSkeleton(data_dir=tmp_path).info  # noqa: B018 (the property raises)
  with pytest.raises(FileNotFoundError, match=r"train\.npz"):
    builders.build("custom_skeleton", manual_dir=tmp_path, data_dir=tmp_path)
  with pytest.raises(FileNotFoundError, match="not built"):
    builders.load_info("msr_action3d", tmp_path)


# --- A build is tied to the files it was made from ------------------------------------------------


def _write_custom(folder: pathlib.Path, rows: int, seed: int) -> None:
  rng = np.random.default_rng(seed)
  folder.mkdir(parents=True, exist_ok=True)
  for split in builders.SPLITS:
    skeleton = rng.normal(size=(rows, 4, 1, 3, 2)).astype(np.float32)
    np.savez(folder / f"{split}.npz", skeleton=skeleton, label=np.arange(rows) % 2)


def _num_examples(builder) -> dict[str, int]:
  return {s: sum(1 for _ in builder.as_dataset(split=s)) for s in builders.SPLITS}


def test_custom_build_from_another_folder_stops_and_names_both(tmp_path):
  first, second = tmp_path / "A", tmp_path / "B"
  _write_custom(first, rows=6, seed=0)
  _write_custom(second, rows=3, seed=1)
  builders.build("custom_skeleton", manual_dir=first, data_dir=tmp_path / "tfds")
  with pytest.raises(builders.StaleBuildError) as e:
    builders.build("custom_skeleton", manual_dir=second, data_dir=tmp_path / "tfds")
  message = str(e.value)
  assert str(first) in message and str(second) in message and "train.npz" in message
  # Nothing was deleted: the first build still reads back whole.
  assert _num_examples(builders.load("custom_skeleton", tmp_path / "tfds")) == {"train": 6, "test": 6}


def test_files_changed_in_place_are_rebuilt(tmp_path):
  raw = tmp_path / "raw"
  _write_custom(raw, rows=6, seed=0)
  builder = builders.build("custom_skeleton", manual_dir=raw, data_dir=tmp_path / "tfds")
  marker = pathlib.Path(builder.data_dir) / "marker"
  marker.touch()
  # Unchanged files: the build is reused as it is (not rebuilt: the marker is still there).
  builders.build("custom_skeleton", manual_dir=raw, data_dir=tmp_path / "tfds")
  assert marker.exists()
  _write_custom(raw, rows=4, seed=2)  # the user corrects the arrays
  builder = builders.build("custom_skeleton", manual_dir=raw, data_dir=tmp_path / "tfds")
  assert _num_examples(builder) == {"train": 4, "test": 4}


def test_runs_started_side_by_side_take_turns_on_a_stale_build(tmp_path):
  # Seeds launched in parallel all find the same stale build; one rebuilds it, the others reuse that build
  # (before the lock, two deleted it at once and one crashed in rmtree).
  raw, data_dir = tmp_path / "raw", tmp_path / "tfds"
  _write_custom(raw, rows=6, seed=0)
  builders.build("custom_skeleton", manual_dir=raw, data_dir=data_dir)
  _write_custom(raw, rows=4, seed=2)
  # The lock is the inner context: a failing assertion releases it before the pool waits for its builds.
  with concurrent.futures.ThreadPoolExecutor(3) as pool:
    with open(data_dir / ".custom_skeleton.lock", "a") as held:
      fcntl.flock(held, fcntl.LOCK_EX)  # another run is mid-build
      runs = [pool.submit(builders.build, "custom_skeleton", manual_dir=raw, data_dir=data_dir) for _ in range(3)]
      time.sleep(1.0)
      assert not any(run.done() for run in runs)
      # They wait without touching the build the other run holds.
      assert _num_examples(builders.load("custom_skeleton", data_dir)) == {"train": 6, "test": 6}
    built = [run.result(timeout=300) for run in runs]
  assert [_num_examples(builder) for builder in built] == [{"train": 4, "test": 4}] * 3


def test_a_file_added_after_the_build_is_not_ignored(tmp_path):
  from slnl_jax.data import synthetic

  raw = tmp_path / "raw"
  files = synthetic.write_dataset(raw, num_clips=9, seed=0, min_frames=4, max_frames=6)
  files[0].rename(tmp_path / files[0].name)  # held back, added after the first build
  builder = builders.build("synthetic_skeleton/xsub", manual_dir=raw, data_dir=tmp_path / "tfds")
  assert sum(_num_examples(builder).values()) == 8
  (raw / "extra").mkdir()
  (tmp_path / files[0].name).rename(raw / "extra" / files[0].name)
  (raw / ".DS_Store").write_bytes(b"hidden files are not inputs")
  builder = builders.build("synthetic_skeleton/xsub", manual_dir=raw, data_dir=tmp_path / "tfds")
  assert sum(_num_examples(builder).values()) == 9
  assert (
    "extra/" + files[0].name
    in json.loads((pathlib.Path(builder.data_dir) / builders.SOURCES_NAME).read_text())["files"]
  )


# --- Custom labels are checked against the class list ------------------------------------------------


def _labelled(folder: pathlib.Path, train_labels, test_labels, class_names=None) -> pathlib.Path:
  folder.mkdir(parents=True, exist_ok=True)
  for split, labels in (("train", train_labels), ("test", test_labels)):
    extra = {} if class_names is None else {"class_names": np.array(class_names)}
    skeleton = np.ones((len(labels), 3, 1, 2, 2), np.float32)
    np.savez(folder / f"{split}.npz", skeleton=skeleton, label=np.array(labels), **extra)
  return folder


def test_a_typo_label_is_refused_with_file_and_row(tmp_path):
  folder = _labelled(tmp_path / "raw", [0, 1, 10**6, 2, 1], [0, 1])
  with pytest.raises(SkeletonFormatError, match=r"row 2: label 1000000") as e:
    builders.CustomSkeleton.config_from(folder)
  assert e.value.path == str(folder / "train.npz")
  assert "999997 classes" in str(e.value) and "class_names" in str(e.value)


def test_a_label_only_in_the_test_split_is_refused(tmp_path):
  folder = _labelled(tmp_path / "raw", [0, 1, 2, 1], [0, 1, 3, 2])
  with pytest.raises(SkeletonFormatError, match=r"row 2: label 3 is not one of the 3 classes") as e:
    builders.CustomSkeleton.config_from(folder)
  assert e.value.path == str(folder / "test.npz")


def test_declared_classes_without_training_examples_are_reported(tmp_path):
  folder = _labelled(tmp_path / "raw", [0, 2, 0], [1, 2], class_names=["a", "b", "c", "d"])
  builder = builders.build("custom_skeleton", manual_dir=folder, data_dir=tmp_path / "tfds")
  assert builder.info.features["label"].num_classes == 4
  assert _report(builder)["classes_without_training_example"] == ["b", "d"]
  bad = _labelled(tmp_path / "bad", [0, 2, 0], [1, 4], class_names=["a", "b", "c", "d"])
  with pytest.raises(SkeletonFormatError, match=r"row 1: label 4 is out of range for the 4 class_names"):
    builders.CustomSkeleton.config_from(bad)


@pytest.mark.parametrize(
  ("name", "message"),
  [
    ("custom_skeleton/../../../escaped", "custom_skeleton/NAME"),
    ("custom_skeleton/a/b", "custom_skeleton/NAME"),
    ("msr_action3d/../x", r"expected one of \['cross_subject'\]"),
    ("ntu_rgbd60/xsubb", r"expected one of \['xsub', 'xview'\]"),
    ("kinetics_skeleton/x", "has no configs"),
  ],
)
def test_dataset_names_are_checked_against_the_builders(tmp_path, name, message):
  data_dir = tmp_path / "deep" / "er" / "tfds"
  _write_custom(tmp_path / "raw", rows=2, seed=0)
  with pytest.raises(ValueError, match=message):
    builders.build(name, manual_dir=tmp_path / "raw", data_dir=data_dir)
  with pytest.raises(ValueError, match=message):
    builders.load(name, data_dir)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]  # nothing written, inside or outside data_dir


def test_raw_files_deleted_after_the_build_keep_the_build(tmp_path):
  import shutil

  from slnl_jax.data import synthetic

  raw = tmp_path / "raw"
  synthetic.write_dataset(raw, num_clips=16, seed=0, min_frames=4, max_frames=6)
  builder = builders.build("synthetic_skeleton/xsub", manual_dir=raw, data_dir=tmp_path / "tfds")
  shutil.rmtree(raw)
  again = builders.build("synthetic_skeleton/xsub", manual_dir=raw, data_dir=tmp_path / "tfds")
  assert _num_examples(again) == _num_examples(builder) and not raw.exists()
  with pytest.raises(FileNotFoundError, match=r"msr_action3d is not built in .* manual_dir .* missing or empty"):
    builders.build("msr_action3d", manual_dir=raw, data_dir=tmp_path / "tfds")


def test_the_report_counts_the_clips_each_body_rule_touched(tmp_path):
  def upright(x0, t, amplitude):
    v = np.arange(25)
    return np.stack([x0 + amplitude * np.sin(0.7 * t + v), np.linspace(-0.8, 0.8, 25), np.full(25, 3.0)], -1)

  def write(name, frames):  # frames: per frame, (body id, joints) pairs; NTU .skeleton text
    lines = [str(len(frames))]
    for bodies in frames:
      lines.append(str(len(bodies)))
      for body_id, joints in bodies:
        lines += [f"{body_id} 0 1 1 1 1 0 0 0 2", "25"] + [f"{x} {y} {z} 0 0 0 0 0 0 0 0 2" for x, y, z in joints]
    (tmp_path / "raw" / f"{name}.skeleton").write_text("\n".join(lines) + "\n")

  (tmp_path / "raw").mkdir()
  # Train (P001): actor 2 tracked as id 2, then id 3 -> joined. Test (P003): id 3 in 5 frames -> length.
  write(
    "S001C001P001R001A001", [[(1, upright(0, t, 0.2)), (2 if t < 20 else 3, upright(1, t, 0.1))] for t in range(40)]
  )
  write(
    "S001C001P003R001A002",
    [[(1, upright(0, t, 0.2))] + ([(3, upright(1, t, 0.5))] if t < 5 else []) for t in range(20)],
  )
  write("S001C001P003R001A003", [[(1, upright(0, t, 0.2))] for t in range(20)])
  builder = builders.build("synthetic_skeleton/xsub", manual_dir=tmp_path / "raw", data_dir=tmp_path / "tfds")
  assert _report(builder)["clips_touched_by_body_rule"] == {"length": 1, "spread": 0, "joined": 1, "extra": 0}
