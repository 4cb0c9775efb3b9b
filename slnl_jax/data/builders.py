"""TFDS builders for every supported skeleton dataset, built once from the user's raw files.

Each builder reads `manual_dir` (the user's unpacked download; nothing is ever downloaded) with the
readers of this package and writes a TFDS dataset with splits "train" and "test" (for Kinetics,
"test" is the official validation set, the one the paper reports). Features, for every dataset:

  skeleton     float32 (T, M, V, C): frames, persons, joints, channels, T varying per clip
  label        ClassLabel with the dataset's class names
  num_frames   int32 T
  name         the sample id (file stem; for arrays, the row's name)
  subject, camera, setup, replication   int32 protocol ids, -1 where the dataset has none

Builders and their `manual_dir` (searched recursively, so any unpacking depth works):

  ntu_rgbd60/{xsub,xview}    `*.skeleton` (S001-S017) + NTU_RGBD_samples_with_missing_skeletons.txt
  ntu_rgbd120/{xsub,xset}    `*.skeleton` (S001-S032) + NTU_RGBD120_samples_with_missing_skeletons.txt
  kinetics_skeleton          kinetics_train/, kinetics_val/ (one JSON per clip),
                             kinetics_{train,val}_label.json, label_name.txt (ST-GCN repo)
  msr_action3d/cross_subject `aXX_sYY_eZZ_skeleton3D.txt` (odd subjects train, even test)
  nw_ucla/{cross_view,view_val,view_val2}  `aAA_sSS_eEE_vVV.json` (CTR-GCN's all_sqe/; views 1+2 / 3, 1 / 2, 2 / 1)
  synthetic_skeleton/{xsub,xview}  `*.skeleton` written by `synthetic.write_dataset` (NTU splits)
  custom_skeleton            train.npz + test.npz, or ST-GCN train_data.npy/train_label.pkl +
                             val_data.npy/val_label.pkl (see `arrays`); shape and classes from data

The official NTU missing-skeleton lists are in github.com/shahroudy/NTURGB-D (Matlab/); the listed
samples and Kinetics clips with `has_skeleton: false` are excluded, as in the papers' protocols.

Nothing is lost silently. Every build writes `build_report.json` next to the dataset's files with
every input seen, every exclusion and every skipped input with its reason, and checks that
`seen == written + skipped + excluded` (per file, or per row for arrays). A malformed input raises
the reader's `SkeletonFormatError` (file, line, reason) unless the builder is constructed with
`skip_bad=True`, which skips and reports it instead (`build()` does this by default: the real MSR
Action3D release has an all-zero file, `a13_s09_e02`). The report also lists every test example whose frames
equal a training example's (`test_copies_of_training`, with a warning): N-UCLA's cross-view split has 95.

Builds are deterministic: inputs are sorted, keys are sample names, and TFDS orders records by key.

A build is tied to the files it was made from. It records in `sources.json` each source file's path
(relative to `manual_dir`), size and modification time: every file under `manual_dir` except hidden
ones and the TFDS data_dir (custom_skeleton: its array files). `build()` compares them with
`manual_dir` before reusing a build: files added, removed or changed in the same folder rebuild it;
another folder with other files stops with a `StaleBuildError` naming both folders. Runs started side by side
(seeds in parallel) take turns: `build()` holds an exclusive lock, `<data_dir>/.<dataset>.lock` (e.g.
`.nw_ucla.lock`), while it checks, deletes and writes a build, so one run rebuilds and the others wait and reuse it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import pathlib
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from slnl_jax import file_lock
from slnl_jax.data import arrays, kinetics, msr_action3d, ntu, nw_ucla, synthetic
from slnl_jax.data.clip import Clip
from slnl_jax.data.errors import SkeletonFormatError

VERSION = tfds.core.Version("1.0.0")
REPORT_NAME = "build_report.json"
SOURCES_NAME = "sources.json"
SPLITS = ("train", "test")
PROTOCOL_IDS = ("subject", "camera", "setup", "replication")
DEFAULT_SYNTHETIC_CLIPS = 480


class StaleBuildError(ValueError):
  """A built dataset was made from other files than the ones in `manual_dir` now."""


class UnknownDatasetError(ValueError):
  """A dataset name ("dataset[/config]") no builder has; the message lists the known ones."""


class DataNotFoundError(FileNotFoundError):
  """Neither a build nor the raw files a build needs are where the config points; the message says what to put where."""


@dataclasses.dataclass(frozen=True)
class _Input:
  """One raw input (a file, or an array file's row), with its split or the reason to exclude it."""

  path: pathlib.Path
  split: str | None  # None: unknown (a malformed name)
  excluded: str | None = None  # why the protocol leaves it out (e.g. the NTU missing list)
  error: SkeletonFormatError | None = None  # found while listing (e.g. a malformed name)
  label: int | None = None  # from a split's label file (Kinetics)


class _Report:
  """What a build saw, wrote, skipped and excluded (written as `build_report.json`)."""

  def __init__(self, unit: str):
    self.unit = unit  # "file" or "row"
    self.seen = dict.fromkeys((*SPLITS, None), 0)
    self.written = dict.fromkeys(SPLITS, 0)
    self.skipped: list[dict[str, Any]] = []
    self.excluded: list[dict[str, Any]] = []
    self.notes: dict[str, Any] = {}
    self.train_labels: Counter[int] = Counter()
    self.first_with_digest: dict[str, str] = {}  # training clips' skeleton digest -> the first clip's name
    self.test_digests: list[tuple[str, str]] = []  # (test clip's name, its skeleton digest)

  def wrote(self, split: str, clip: Clip) -> None:
    self.written[split] += 1
    digest = _digest(clip)
    if split == "train":
      self.train_labels[clip.label] += 1
      self.first_with_digest.setdefault(digest, clip.name)
    else:
      self.test_digests.append((clip.name, digest))

  def test_copies(self) -> list[list[str]]:
    """[test clip, a training clip with the same frames] for every test clip that has one."""
    found = self.first_with_digest
    return [[name, found[digest]] for name, digest in self.test_digests if digest in found]

  def exclude(self, path: os.PathLike, split: str, reason: str) -> None:
    self.excluded.append({"file": os.fspath(path), "split": split, "reason": reason})

  def skip(self, error: SkeletonFormatError, split: str | None) -> None:
    self.skipped.append({"file": error.path, "line": error.line, "split": split, "reason": error.reason})

  def check(self, tfds_counts: dict[str, int]) -> None:
    """Every input is accounted for, and TFDS wrote exactly the examples yielded."""
    if tfds_counts != self.written:
      raise RuntimeError(f"TFDS wrote {tfds_counts} examples, the builder yielded {self.written}")
    seen = sum(self.seen.values())
    accounted = sum(self.written.values()) + len(self.skipped) + len(self.excluded)
    if seen != accounted:
      raise RuntimeError(f"{seen} {self.unit}s seen but {accounted} accounted for (written + skipped + excluded)")

  def as_json(self, builder: str, skip_bad: bool) -> dict[str, Any]:
    return {
      "dataset": builder,
      "skip_bad": skip_bad,
      "unit": self.unit,
      "seen": sum(self.seen.values()),
      "written": sum(self.written.values()),
      "num_skipped": len(self.skipped),
      "num_excluded": len(self.excluded),
      "splits": {s: {"seen": self.seen[s], "written": self.written[s]} for s in SPLITS},
      "seen_without_split": self.seen[None],
      "skipped": self.skipped,
      "excluded": self.excluded,
      "test_copies_of_training": self.test_copies(),
      **self.notes,
    }


def _find_one(root: pathlib.Path, name: str, *, directory: bool = False) -> pathlib.Path:
  """The unique file (or folder) called `name` under `root`, or an error saying what is wrong."""
  found = sorted(p for p in root.rglob(name) if p.is_dir() == directory)
  if len(found) != 1:
    kind = "folder" if directory else "file"
    problem = "no" if not found else f"{len(found)} ({', '.join(map(str, found[:3]))})"
    raise DataNotFoundError(f"expected one {kind} {name!r} under {root}, found {problem}")
  return found[0]


def _features(class_names, persons: int, joints: int, channels: int) -> tfds.features.FeaturesDict:
  label = tfds.features.ClassLabel() if class_names is None else tfds.features.ClassLabel(names=list(class_names))
  ids = {key: tfds.features.Scalar(np.int32, doc="-1: not applicable") for key in PROTOCOL_IDS}
  return tfds.features.FeaturesDict(
    {
      "skeleton": tfds.features.Tensor(shape=(None, persons, joints, channels), dtype=np.float32),
      "label": label,
      "num_frames": tfds.features.Scalar(np.int32),
      "name": tfds.features.Text(),
      **ids,
    }
  )


class _SkeletonBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Shared machinery: list inputs per split, read them, skip or raise on bad ones, report."""

  VERSION = VERSION
  RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Initial release."}
  SHAPE: ClassVar[tuple[int, int, int]]  # persons, joints, channels
  CLASS_NAMES: ClassVar[tuple[str, ...] | None] = None  # None: set from the data at build time
  DESCRIPTION: ClassVar[str]
  HOMEPAGE: ClassVar[str] = ""
  CITATION: ClassVar[str] = ""
  UNIT = "file"

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> None:
    # No code path, so no download checksums file: nothing is downloaded. (TFDS 4.9.10's own lookup
    # also imports `importlib_resources`, a backport it does not install on Python >= 3.9.)
    return None

  def __init__(self, *, skip_bad: bool = False, **kwargs):
    """`skip_bad`: skip and report malformed inputs instead of raising; other args: TFDS's."""
    self._skip_bad = skip_bad
    self._report = _Report(self.UNIT)
    super().__init__(**kwargs)

  def _shape(self) -> tuple[int, int, int]:
    return self.SHAPE

  def _class_names(self) -> tuple[str, ...] | None:
    return self.CLASS_NAMES

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description=self.DESCRIPTION,
      features=_features(self._class_names(), *self._shape()),
      supervised_keys=("skeleton", "label"),
      homepage=self.HOMEPAGE,
      citation=self.CITATION,
    )

  # Subclasses list their inputs and read one.
  def _list_inputs(self, manual_dir: pathlib.Path) -> list[_Input]:
    raise NotImplementedError

  def _read(self, item: _Input) -> Clip:
    raise NotImplementedError

  def _source_files(self, manual_dir: pathlib.Path) -> list[pathlib.Path]:
    """The files a build depends on: all under `manual_dir` but hidden ones and the TFDS data_dir."""
    data_dir = pathlib.Path(self.data_dir_root).resolve()
    nested = data_dir if data_dir.is_relative_to(manual_dir) else None
    return [
      path
      for path in manual_dir.rglob("*")
      if not any(part.startswith(".") for part in path.relative_to(manual_dir).parts)
      and not (nested and path.is_relative_to(nested))
      and path.is_file()
    ]

  def source_record(self, manual_dir: str | os.PathLike) -> dict[str, Any]:
    """The record of `manual_dir`'s source files: {"manual_dir", "files": {relative path: [size, mtime_ns]}}."""
    root = pathlib.Path(manual_dir).expanduser().resolve()
    files = {}
    for path in self._source_files(root):
      stat = path.stat()
      files[path.relative_to(root).as_posix()] = [stat.st_size, stat.st_mtime_ns]
    return {"manual_dir": os.fspath(root), "files": dict(sorted(files.items()))}

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    self._manual_dir = pathlib.Path(dl_manager.manual_dir)
    self._sources = self.source_record(self._manual_dir)  # before reading: a change during the build shows next time
    self._report = _Report(self.UNIT)
    inputs = self._list_inputs(self._manual_dir)
    for item in inputs:
      if item.split is None:
        self._report.seen[None] += 1
        self._bad(item.error, None)
    return {s: self._generate_examples(s, [i for i in inputs if i.split == s]) for s in SPLITS}

  def _bad(self, error: SkeletonFormatError, split: str | None) -> None:
    """Raises the reader's error, or records it in skip mode."""
    if not self._skip_bad:
      raise error
    self._report.skip(error, split)

  def _generate_examples(self, split: str, inputs: list[_Input]) -> Iterator[tuple[str, dict]]:
    for item in inputs:
      self._report.seen[split] += 1
      if item.excluded is not None:
        self._report.exclude(item.path, split, item.excluded)
        continue
      try:
        if item.error is not None:
          raise item.error
        clip = self._read(item)
      except SkeletonFormatError as e:
        self._bad(e, split)
        continue
      self._report.wrote(split, clip)
      yield clip.name, _example(clip)
    self._check_not_empty(split)

  def _check_not_empty(self, split: str) -> None:
    # TFDS cannot write an empty split; say why it is empty instead of its bare AssertionError.
    if not self._report.written[split]:
      skipped = [s for s in self._report.skipped if s["split"] == split]
      excluded = sum(e["split"] == split for e in self._report.excluded)
      examples = "".join(f"\n  {s['file']}:{s['line']}: {s['reason']}" for s in skipped[:3])
      raise ValueError(
        f"{self.name}: split {split!r} has no example in {self._manual_dir} ({self._report.seen[split]} "
        f"{self.UNIT}s seen, {len(skipped)} skipped, {excluded} excluded){examples}"
      )

  def _download_and_prepare(self, dl_manager, download_config):
    # The report is written here, inside TFDS's temporary folder, so that it appears atomically
    # with the dataset (a failed build leaves neither).
    super()._download_and_prepare(dl_manager, download_config)
    report = self._report.as_json(self.info.full_name, self._skip_bad)
    report["manual_dir"] = os.fspath(self._manual_dir)
    names = self.info.features["label"].names
    report["classes_without_training_example"] = [n for i, n in enumerate(names) if not self._report.train_labels[i]]
    if report["classes_without_training_example"]:
      logging.warning(
        "%s: %d classes have no training example: %s",
        self.info.full_name,
        len(report["classes_without_training_example"]),
        ", ".join(report["classes_without_training_example"][:10]),
      )
    copies = report["test_copies_of_training"]
    if copies:
      logging.warning(
        "%s: %d test examples have the same frames as a training example (e.g. %s = %s): a test score counts them",
        self.info.full_name,
        len(copies),
        *copies[0],
      )
    if download_config.max_examples_per_split is None:
      self._report.check({s: self.info.splits[s].num_examples for s in SPLITS})
    else:  # a deliberately partial build: inputs after the limit were never read
      report["partial_build"] = f"max_examples_per_split={download_config.max_examples_per_split}"
    path = pathlib.Path(self.data_dir) / REPORT_NAME
    path.write_text(json.dumps(report, indent=1) + "\n")
    (pathlib.Path(self.data_dir) / SOURCES_NAME).write_text(json.dumps(self._sources) + "\n")


def _digest(clip: Clip) -> str:
  """The clip's frames (shape, dtype and values) as a SHA-256 hex digest: equal frames, equal digests."""
  skeleton = np.ascontiguousarray(clip.skeleton)
  return hashlib.sha256(f"{skeleton.shape} {skeleton.dtype}".encode() + skeleton.tobytes()).hexdigest()


def _example(clip: Clip) -> dict[str, Any]:
  return {
    "skeleton": clip.skeleton,
    "label": clip.label,
    "num_frames": clip.num_frames,
    "name": clip.name,
    **{key: int(clip.meta.get(key, -1)) for key in PROTOCOL_IDS},
  }


def _list_files(root: pathlib.Path, pattern: str) -> list[pathlib.Path]:
  """Files matching `pattern` under `root`, sorted by name (not folder) so layouts don't matter."""
  files = sorted((p for p in root.rglob(pattern) if p.is_file()), key=lambda p: (p.name, p))
  for a, b in itertools.pairwise(files):
    if a.name == b.name:
      raise ValueError(f"the same sample is in two places: {a} and {b}")
  return files


class _NtuFormatBuilder(_SkeletonBuilder, skip_registration=True):
  """`.skeleton` files named SsssCcccPpppRrrrAaaa, split by an NTU protocol."""

  SHAPE = (2, ntu.NUM_JOINTS, ntu.NUM_CHANNELS)
  MISSING_LIST: ClassVar[str | None] = None  # the official list's file name
  MAX_SETUP: ClassVar[int]
  PROTOCOLS: ClassVar[dict[str, str]]  # config name -> `ntu.is_training` protocol

  def _list_inputs(self, manual_dir: pathlib.Path) -> list[_Input]:
    missing = set()
    if self.MISSING_LIST:
      missing = ntu.read_missing_list(_find_one(manual_dir, self.MISSING_LIST))
    protocol = self.PROTOCOLS[self.builder_config.name]
    num_classes = len(self._class_names())
    self._report.notes["clips_touched_by_body_rule"] = dict.fromkeys(ntu.BODY_RULES, 0)  # see ntu.py
    inputs = []
    for path in _list_files(manual_dir, "*.skeleton"):
      try:
        meta = ntu.parse_name(path.name)
      except SkeletonFormatError as e:
        inputs.append(_Input(path, None, error=e))
        continue
      split = "train" if ntu.is_training(meta, protocol) else "test"
      excluded = error = None
      if meta["setup"] > self.MAX_SETUP:
        excluded = f"setup S{meta['setup']:03d} is not part of {self.name} (S001-S{self.MAX_SETUP:03d})"
      elif path.stem in missing:
        excluded = f"listed in {self.MISSING_LIST}"
      elif not 1 <= meta["action"] <= num_classes:
        error = SkeletonFormatError(
          path, f"action A{meta['action']:03d} is not one of the {num_classes} classes of {self.name}"
        )
      inputs.append(_Input(path, split, excluded, error))
    return inputs

  def _read(self, item: _Input) -> Clip:
    clip = ntu.read_skeleton(item.path, max_bodies=self.SHAPE[0])
    touched = self._report.notes["clips_touched_by_body_rule"]
    for rule, bodies in clip.meta["body_rules"].items():
      touched[rule] += bodies > 0
    return clip


_NTU_INSTRUCTIONS = """\
Request NTU RGB+D at https://rose1.ntu.edu.sg/dataset/actionRecognition/ and unpack the skeleton
zip(s) ({zips}) into manual_dir. Also put the official {missing} there (from
https://github.com/shahroudy/NTURGB-D/tree/master/Matlab). Sub-folders are fine.
"""
_NTU_CITATION = """\
@inproceedings{shahroudy2016ntu, title={NTU RGB+D: A Large Scale Dataset for 3D Human Activity
Analysis}, author={Shahroudy, Amir and Liu, Jun and Ng, Tian-Tsong and Wang, Gang},
booktitle={CVPR}, year={2016}}"""


class NtuRgbd60(_NtuFormatBuilder):
  """NTU RGB+D 60 (Kinect v2, 25 joints, up to 2 persons)."""

  name = "ntu_rgbd60"
  BUILDER_CONFIGS: ClassVar[list[tfds.core.BuilderConfig]] = [
    tfds.core.BuilderConfig(name="xsub", description="Cross-subject: 20 training performers."),
    tfds.core.BuilderConfig(name="xview", description="Cross-view: cameras 2, 3 train; 1 tests."),
  ]
  PROTOCOLS: ClassVar[dict[str, str]] = {"xsub": "xsub", "xview": "xview"}
  CLASS_NAMES = ntu.NTU60_CLASSES
  MISSING_LIST = "NTU_RGBD_samples_with_missing_skeletons.txt"
  MAX_SETUP = 17
  DESCRIPTION = "NTU RGB+D 60 skeletons: 56,880 clips of 60 actions by 40 performers."
  HOMEPAGE = "https://rose1.ntu.edu.sg/dataset/actionRecognition/"
  CITATION = _NTU_CITATION
  MANUAL_DOWNLOAD_INSTRUCTIONS = _NTU_INSTRUCTIONS.format(
    zips="nturgbd_skeletons_s001_to_s017.zip", missing=MISSING_LIST
  )


class NtuRgbd120(_NtuFormatBuilder):
  """NTU RGB+D 120 (NTU RGB+D 60 plus setups 18-32 and actions 61-120)."""

  name = "ntu_rgbd120"
  BUILDER_CONFIGS: ClassVar[list[tfds.core.BuilderConfig]] = [
    tfds.core.BuilderConfig(name="xsub", description="Cross-subject: 53 training performers."),
    tfds.core.BuilderConfig(name="xset", description="Cross-setup: even setup ids train."),
  ]
  PROTOCOLS: ClassVar[dict[str, str]] = {"xsub": "xsub120", "xset": "xset"}
  CLASS_NAMES = ntu.NTU120_CLASSES
  MISSING_LIST = "NTU_RGBD120_samples_with_missing_skeletons.txt"
  MAX_SETUP = 32
  DESCRIPTION = "NTU RGB+D 120 skeletons: 114,480 clips of 120 actions by 106 performers."
  HOMEPAGE = "https://rose1.ntu.edu.sg/dataset/actionRecognition/"
  CITATION = _NTU_CITATION
  MANUAL_DOWNLOAD_INSTRUCTIONS = _NTU_INSTRUCTIONS.format(
    zips="nturgbd_skeletons_s001_to_s017.zip and nturgbd_skeletons_s018_to_s032.zip",
    missing=MISSING_LIST,
  )


class SyntheticSkeleton(_NtuFormatBuilder):
  """The SYNTHETIC demo set of `synthetic.py` (NTU format, NTU's split rules)."""

  name = "synthetic_skeleton"
  BUILDER_CONFIGS: ClassVar[list[tfds.core.BuilderConfig]] = [
    tfds.core.BuilderConfig(name="xsub", description="NTU-60's cross-subject performer split."),
    tfds.core.BuilderConfig(name="xview", description="NTU-60's cross-view camera split."),
  ]
  PROTOCOLS: ClassVar[dict[str, str]] = {"xsub": "xsub", "xview": "xview"}
  CLASS_NAMES = synthetic.CLASSES
  MAX_SETUP = 999
  DESCRIPTION = "Synthetic (procedurally generated, not recorded) NTU-format demo skeletons."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Write the files with `slnl_jax.data.synthetic.write_dataset(manual_dir, num_clips=..., seed=...)`,
or let `slnl_jax.data.builders.build` / tools/build_dataset.py do it when manual_dir is empty.
"""


_MSR_NAME = re.compile(r"a(\d{2})_s(\d{2})_e(\d{2})_skeleton3D")


class MsrAction3d(_SkeletonBuilder):
  """MSR Action3D (Kinect v1, 20 joints, one person), 567 sequences."""

  name = "msr_action3d"
  BUILDER_CONFIGS: ClassVar[list[tfds.core.BuilderConfig]] = [
    tfds.core.BuilderConfig(name="cross_subject", description="Odd subjects (1, 3, 5, 7, 9) train, even ones test.")
  ]
  SHAPE = (1, msr_action3d.NUM_JOINTS, msr_action3d.NUM_CHANNELS)
  CLASS_NAMES = msr_action3d.CLASSES
  DESCRIPTION = "MSR Action3D skeletons (MSRAction3DSkeletonReal3D): 20 actions, 10 subjects."
  HOMEPAGE = "https://sites.google.com/view/wanqingli/data-sets/msr-action3d"
  CITATION = """\
@inproceedings{li2010action, title={Action Recognition Based on A Bag of 3D Points},
author={Li, Wanqing and Zhang, Zhengyou and Liu, Zicheng}, booktitle={CVPR Workshops},
year={2010}}"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Unpack MSRAction3DSkeletonReal3D.rar (the aXX_sYY_eZZ_skeleton3D.txt files) into manual_dir.
"""

  def _list_inputs(self, manual_dir: pathlib.Path) -> list[_Input]:
    inputs = []
    for path in _list_files(manual_dir, "*_skeleton3D.txt"):
      match = _MSR_NAME.fullmatch(path.stem)
      if match is None or not 1 <= int(match[1]) <= len(self.CLASS_NAMES):
        reason = "name is not aXX_sYY_eZZ_skeleton3D.txt with an action a01-a20"
        inputs.append(_Input(path, None, error=SkeletonFormatError(path, reason)))
        continue
      train = msr_action3d.is_training({"subject": int(match[2])})
      inputs.append(_Input(path, "train" if train else "test"))
    return inputs

  def _read(self, item: _Input) -> Clip:
    clip = msr_action3d.read_sequence(item.path)
    return dataclasses.replace(clip, meta={**clip.meta, "replication": clip.meta["execution"]})


class KineticsSkeleton(_SkeletonBuilder):
  """Kinetics-skeleton (ST-GCN's OpenPose-18 release); "test" is the official validation set."""

  name = "kinetics_skeleton"
  SHAPE = (2, kinetics.NUM_JOINTS, kinetics.NUM_CHANNELS)
  DESCRIPTION = "Kinetics-400 skeletons (OpenPose, 18 joints, x y score) from ST-GCN; 'test' = the val split."
  HOMEPAGE = "https://github.com/yysijie/st-gcn"
  CITATION = """\
@inproceedings{yan2018spatial, title={Spatial Temporal Graph Convolutional Networks for
Skeleton-Based Action Recognition}, author={Yan, Sijie and Xiong, Yuanjun and Lin, Dahua},
booktitle={AAAI}, year={2018}}"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Unpack ST-GCN's kinetics-skeleton archive (kinetics_train/, kinetics_val/,
kinetics_train_label.json, kinetics_val_label.json) into manual_dir, and add label_name.txt from
https://github.com/yysijie/st-gcn/tree/master/resource/kinetics_skeleton.
"""
  FOLDERS: ClassVar[dict[str, str]] = {"train": "kinetics_train", "test": "kinetics_val"}

  def _list_inputs(self, manual_dir: pathlib.Path) -> list[_Input]:
    names = kinetics.read_class_names(_find_one(manual_dir, "label_name.txt"))
    self.info.features["label"].names = list(names)
    inputs, unmatched = [], {}
    for split, folder in self.FOLDERS.items():
      label_file = _find_one(manual_dir, f"{folder}_label.json")
      labels = kinetics.read_labels(label_file)
      files = _list_files(_find_one(manual_dir, folder, directory=True), "*.json")
      for path in files:
        entry = labels.get(path.stem)
        excluded = error = label = None
        if entry is None:
          error = SkeletonFormatError(path, f"clip id {path.stem!r} is not in {label_file}")
        elif not entry["has_skeleton"]:
          excluded = f"has_skeleton is false in {label_file.name}"
        elif entry["label_index"] >= len(names):
          error = SkeletonFormatError(
            path, f"label_index {entry['label_index']} is beyond the {len(names)} class names"
          )
        else:
          label = entry["label_index"]
        inputs.append(_Input(path, split, excluded, error, label))
      # Label entries with no clip file (not inputs, but a user should know).
      unmatched[split] = len(set(labels) - {p.stem for p in files})
    self._report.notes["label_entries_without_file"] = unmatched
    return inputs

  def _read(self, item: _Input) -> Clip:
    return kinetics.read_clip(item.path, label_index=item.label, max_persons=self.SHAPE[0], max_frames=300)


_STGCN_FILES = {"train": "train", "test": "val"}  # split -> ST-GCN file prefix


@dataclasses.dataclass(eq=False)
class CustomSkeletonConfig(tfds.core.BuilderConfig):
  """A custom dataset's shape (persons, joints, channels) and class names, read from its data."""

  shape: tuple[int, int, int] = (0, 0, 0)
  class_names: tuple[str, ...] = ()


class CustomSkeleton(_SkeletonBuilder):
  """A user's own arrays: `train.npz` + `test.npz`, or ST-GCN `{train,val}_data.npy` + `.pkl`.

  The config (shape, classes) comes from the data: use `build("custom_skeleton[/NAME]", ...)` or
  `CustomSkeletonConfig`s from `CustomSkeleton.config_from(manual_dir)`.
  """

  name = "custom_skeleton"
  UNIT = "row"
  DESCRIPTION = "A custom skeleton dataset (arrays; see slnl_jax/data/arrays.py)."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Put train.npz and test.npz (keys: skeleton (N, T, M, V, C), label (N,), optional num_frames,
class_names, names) or ST-GCN's train_data.npy, train_label.pkl, val_data.npy, val_label.pkl
into manual_dir.
"""

  @staticmethod
  def sources(manual_dir: str | os.PathLike) -> dict[str, tuple[pathlib.Path, pathlib.Path | None]]:
    """Split -> (data file, label file or None) in `manual_dir`."""
    root = pathlib.Path(manual_dir)
    npz = {s: (root / f"{s}.npz", None) for s in SPLITS}
    stgcn = {s: (root / f"{f}_data.npy", root / f"{f}_label.pkl") for s, f in _STGCN_FILES.items()}
    for layout in (npz, stgcn):
      if all(p is None or p.is_file() for pair in layout.values() for p in pair):
        return layout
    raise DataNotFoundError(
      f"{root} holds neither train.npz + test.npz nor train_data.npy, train_label.pkl, val_data.npy, val_label.pkl"
    )

  @classmethod
  def config_from(cls, manual_dir: str | os.PathLike, name: str = "default") -> CustomSkeletonConfig:
    """The config of the arrays in `manual_dir`: shape and classes must agree across splits."""
    shapes, labels, class_names = {}, {}, {}
    for split, (data_path, label_path) in cls.sources(manual_dir).items():
      if label_path is None:
        content = arrays.read_npz(data_path)
        shapes[split] = content["skeleton"].shape[2:]
        labels[split] = (data_path, content["label"])
        if "class_names" in content:
          class_names[split] = content["class_names"]
      else:
        data, split_labels, _ = arrays.read_stgcn(data_path, label_path)
        _, c, _, v, m = data.shape  # (N, C, T, V, M)
        shapes[split] = (m, v, c)
        labels[split] = (label_path, split_labels)
    if shapes["train"] != shapes["test"]:
      raise SkeletonFormatError(manual_dir, f"train and test differ in (persons, joints, channels): {shapes}")
    if len(set(class_names.values())) > 1 or len(class_names) == 1:
      raise SkeletonFormatError(manual_dir, "train and test must carry the same class_names")
    names = class_names.get("train") or tuple(str(i) for i in range(_classes_from_labels(*labels["train"])))
    path, test_labels = labels["test"]
    outside = np.flatnonzero(test_labels >= len(names))
    if outside.size:
      row = int(outside[0])
      raise SkeletonFormatError(
        path,
        f"row {row}: label {test_labels[row]} is not one of the {len(names)} classes of the training split "
        "(declare every class in class_names, a .npz key, to test on classes that have no training example)",
      )
    return CustomSkeletonConfig(
      name=name,
      description=f"custom arrays from {manual_dir}",
      shape=tuple(int(x) for x in shapes["train"]),
      class_names=tuple(names),
    )

  def _config(self) -> CustomSkeletonConfig:
    if not isinstance(self.builder_config, CustomSkeletonConfig):
      raise ValueError(
        "custom_skeleton needs the CustomSkeletonConfig of its data: use "
        "slnl_jax.data.builders.build('custom_skeleton', ...) or CustomSkeleton.config_from"
      )
    return self.builder_config

  def _shape(self) -> tuple[int, int, int]:
    return self._config().shape

  def _class_names(self) -> tuple[str, ...]:
    return self._config().class_names

  def _list_inputs(self, manual_dir: pathlib.Path) -> list[_Input]:
    return [_Input(data, split) for split, (data, _) in self.sources(manual_dir).items()]

  def _source_files(self, manual_dir: pathlib.Path) -> list[pathlib.Path]:
    return [path for pair in self.sources(manual_dir).values() for path in pair if path is not None]

  def _generate_examples(self, split: str, inputs: list[_Input]) -> Iterator[tuple[str, dict]]:
    data_path, label_path = self.sources(self._manual_dir)[split]
    self._report.seen[split] = _num_rows(data_path)
    for clip in arrays.iter_clips(data_path, label_path, onerror=lambda e: self._bad(e, split)):
      self._report.wrote(split, clip)
      yield f"{clip.meta['index']:09d}", _example(clip)
    self._check_not_empty(split)


def _classes_from_labels(path: pathlib.Path, labels: np.ndarray) -> int:
  """Without class_names the classes are 0..max label, and each needs a training example (a typo is not a class)."""
  if not labels.size:
    return 0
  row = int(np.argmax(labels))
  num_classes = int(labels[row]) + 1
  empty = num_classes - len(np.unique(labels))
  if empty:
    raise SkeletonFormatError(
      path,
      f"row {row}: label {labels[row]}: without class_names the classes are the labels 0..{labels[row]}, and "
      f"{empty} classes of them have no training example. Use labels 0..K-1, or declare every class in "
      "class_names (a .npz key)",
    )
  return num_classes


def _num_rows(path: pathlib.Path) -> int:
  """Rows in an array file, read from its header (or its small label member for .npz)."""
  if path.suffix == ".npz":
    with np.load(path, allow_pickle=False) as archive:
      return int(archive["label"].shape[0])
  return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])


class NwUcla(_SkeletonBuilder):
  """Northwestern-UCLA (Kinect v1, 20 joints, one person), 1,484 sequences in CTR-GCN's JSON layout.

  `cross_view` is the literature's protocol (views 1 + 2 train: 1,020; view 3 tests: 464). `view_val` trains
  on view 1 and tests on view 2, for choosing settings without view 3, and `view_val2` the other way round; their
  view-3 files are listed as excluded from the test split, so the report still accounts for every file.
  """

  name = "nw_ucla"
  BUILDER_CONFIGS: ClassVar[list[tfds.core.BuilderConfig]] = [
    tfds.core.BuilderConfig(name="cross_view", description="Views 1 and 2 train (1,020), view 3 tests (464)."),
    tfds.core.BuilderConfig(name="view_val", description="Validation: view 1 trains (516), view 2 tests (504)."),
    tfds.core.BuilderConfig(name="view_val2", description="Its second fold: view 2 trains (504), view 1 tests (516)."),
  ]
  SHAPE = (1, nw_ucla.NUM_JOINTS, nw_ucla.NUM_CHANNELS)
  CLASS_NAMES = nw_ucla.CLASSES
  DESCRIPTION = "Northwestern-UCLA Multiview Action 3D skeletons: 10 actions, 10 subjects, 3 views."
  HOMEPAGE = "https://wangjiangb.github.io/my_data.html"
  CITATION = """\
@inproceedings{wang2014cross, title={Cross-view Action Modeling, Learning and Recognition},
author={Wang, Jiang and Nie, Xiaohan and Xia, Yin and Wu, Ying and Zhu, Song-Chun}, booktitle={CVPR},
year={2014}}"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Put the all_sqe/ folder of CTR-GCN's N-UCLA data (aAA_sSS_eEE_vVV.json, one file per sequence) into
manual_dir (https://github.com/Uason-Chen/CTR-GCN#northwestern-ucla).
"""

  def _list_inputs(self, manual_dir: pathlib.Path) -> list[_Input]:
    protocol = self.builder_config.name
    inputs = []
    for path in _list_files(manual_dir, "*.json"):
      meta = nw_ucla.parse_name(path.stem)
      if meta is None or meta["view"] not in (1, 2, 3) or meta["action"] not in nw_ucla.ACTION_IDS:
        reason = f"name is not aAA_sSS_eEE_vVV.json with a view v01-v03 and an action of {nw_ucla.ACTION_IDS}"
        inputs.append(_Input(path, None, error=SkeletonFormatError(path, reason)))
        continue
      split = nw_ucla.split_of(meta["view"], protocol)
      excluded = None if split else f"view {meta['view']} is held out of the {protocol} protocol"
      inputs.append(_Input(path, split or "test", excluded))
    return inputs

  def _read(self, item: _Input) -> Clip:
    clip = nw_ucla.read_clip(item.path)
    return dataclasses.replace(
      clip, meta={**clip.meta, "camera": clip.meta["view"], "replication": clip.meta["execution"]}
    )


BUILDERS: dict[str, type[_SkeletonBuilder]] = {
  cls.name: cls
  for cls in (NtuRgbd60, NtuRgbd120, KineticsSkeleton, MsrAction3d, NwUcla, SyntheticSkeleton, CustomSkeleton)
}


# A custom dataset's own name: one folder level under data_dir/custom_skeleton (TFDS's config-name characters).
_CUSTOM_NAME = re.compile(r"\w[\w+\-.]*")


def _parse_name(name: str) -> tuple[type[_SkeletonBuilder], str | None]:
  """The builder and config of "dataset[/config]"; the config must be one of the builder's (never a path)."""
  dataset, _, config = name.partition("/")
  if dataset not in BUILDERS:
    raise UnknownDatasetError(f"unknown dataset {dataset!r}; expected one of {sorted(BUILDERS)}")
  cls = BUILDERS[dataset]
  if not config:
    return cls, None
  if cls is CustomSkeleton:
    if not _CUSTOM_NAME.fullmatch(config) or ".." in config:
      raise UnknownDatasetError(
        f"{name!r}: expected custom_skeleton/NAME, NAME of letters, digits and _ + - . (not a path)"
      )
  elif not cls.BUILDER_CONFIGS:
    raise UnknownDatasetError(f"{name!r}: {dataset} has no configs; use {dataset!r}")
  elif config not in (names := [c.name for c in cls.BUILDER_CONFIGS]):
    raise UnknownDatasetError(f"{name!r}: unknown config {config!r} of {dataset}; expected one of {names}")
  return cls, config


def _has_files(path: str | os.PathLike | None) -> bool:
  return bool(path) and pathlib.Path(path).is_dir() and any(pathlib.Path(path).iterdir())


def build(
  name: str,
  *,
  manual_dir: str | os.PathLike | None,
  data_dir: str | os.PathLike,
  skip_bad: bool = True,
  num_clips: int = DEFAULT_SYNTHETIC_CLIPS,
  seed: int = 0,
) -> tfds.core.DatasetBuilder:
  """Builds dataset `name` ("ntu_rgbd60/xview", "msr_action3d", ...) once; reuses it after.

  Args:
    name: a key of `BUILDERS`, optionally "/config" (default: the builder's first config). For
      custom_skeleton the config is the dataset's own name (default "default"): build several
      custom datasets into one data_dir under different names.
    manual_dir: the raw files. For synthetic_skeleton, when it is empty, missing or None, the
      demo files are generated first (`num_clips`, `seed`) into it, or into
      `<data_dir>/downloads/synthetic_skeleton` when it is None or "".
    data_dir: where TFDS datasets are written (`~` is expanded).
    skip_bad: skip and report malformed inputs (see the module docstring) instead of raising.

  Returns:
    The prepared builder (`.as_dataset(split=...)`); its skip report is `REPORT_NAME` in
    `builder.data_dir`. A built dataset is reused when `manual_dir` holds the files it was built
    from, or is None, missing or empty (raw files deleted after the build; with a warning); files
    added, removed or changed in the same folder rebuild it.

  Raises:
    StaleBuildError: the dataset in `data_dir` was built from another folder with other files.
    UnknownDatasetError: no builder has `name`.
    DataNotFoundError: the dataset is not built and `manual_dir` is missing, empty or lacks a file it needs.
  """
  cls, config = _parse_name(name)
  data_dir = pathlib.Path(data_dir).expanduser()
  with file_lock.exclusive(data_dir / f".{cls.name}.lock"):  # one build of a dataset at a time
    if cls is SyntheticSkeleton and not _has_files(manual_dir):
      manual_dir = manual_dir or data_dir / "downloads" / "synthetic_skeleton"
      if not cls(data_dir=data_dir, config=config).is_prepared():
        synthetic.write_dataset(manual_dir, num_clips=num_clips, seed=seed)
    if cls is CustomSkeleton:
      if not manual_dir:
        raise DataNotFoundError(f"{name} needs manual_dir: {' '.join(cls.MANUAL_DOWNLOAD_INSTRUCTIONS.split())}")
      config = CustomSkeleton.config_from(manual_dir, name=config or "default")
    builder = cls(data_dir=data_dir, config=config, skip_bad=skip_bad)
    if builder.is_prepared() and _has_files(manual_dir):
      if _rebuild_stale(builder, manual_dir):
        builder = cls(data_dir=data_dir, config=config, skip_bad=skip_bad)
    elif builder.is_prepared() and manual_dir:
      logging.warning("manual_dir %s is missing or empty: using the build in %s as it is", manual_dir, builder.data_dir)
    if not builder.is_prepared() and not _has_files(manual_dir):
      instructions = " ".join(cls.MANUAL_DOWNLOAD_INSTRUCTIONS.split())  # one line
      raise DataNotFoundError(
        f"{name} is not built in {data_dir} and manual_dir {manual_dir} is missing or empty: {instructions}"
      )
    builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)
    )
    return builder


def _listed(names: list[str]) -> str:
  return f"{len(names)} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"


def _rebuild_stale(builder: _SkeletonBuilder, manual_dir: str | os.PathLike) -> bool:
  """Deletes a build whose folder's files changed since; raises if it came from another folder."""
  path = pathlib.Path(builder.data_dir)
  now = builder.source_record(manual_dir)
  try:
    then = json.loads((path / SOURCES_NAME).read_text())
  except FileNotFoundError:  # built before sources were recorded: only the folder is known
    then = {"manual_dir": json.loads((path / REPORT_NAME).read_text()).get("manual_dir"), "files": None}
  if then["files"] == now["files"]:
    return False
  if then["files"] is None:
    difference = f"no record of its files ({SOURCES_NAME} is missing)"
  else:
    old, new = then["files"], now["files"]
    kinds = {
      "added": sorted(new.keys() - old.keys()),
      "removed": sorted(old.keys() - new.keys()),
      "changed": sorted(k for k in old.keys() & new.keys() if old[k] != new[k]),
    }
    difference = "files " + ", ".join(f"{kind} {_listed(names)}" for kind, names in kinds.items() if names)
  source = then["manual_dir"]
  if source is None or pathlib.Path(source).resolve() != pathlib.Path(now["manual_dir"]):
    raise StaleBuildError(
      f"{path} was built from {source}, not from manual_dir {now['manual_dir']} ({difference}). Delete {path} "
      f"to rebuild it from {now['manual_dir']}, or give this dataset another data_dir (or, for custom data, name)"
    )
  logging.warning("rebuilding %s: %s since it was built from %s", path, difference, source)
  shutil.rmtree(path)
  return True


def load(name: str, data_dir: str | os.PathLike) -> tfds.core.DatasetBuilder:
  """A built dataset, read from its folder alone (no raw files, no builder config needed)."""
  cls, config = _parse_name(name)
  if config is None:
    config = cls.BUILDER_CONFIGS[0].name if cls.BUILDER_CONFIGS else None
    config = "default" if cls is CustomSkeleton else config
  path = pathlib.Path(data_dir).expanduser() / cls.name / (config or "") / str(VERSION)
  if not (path / "dataset_info.json").is_file():
    raise DataNotFoundError(f"{name} is not built in {data_dir} (no {path}): run tools/build_dataset.py {name}")
  return tfds.builder_from_directory(os.fspath(path))


def load_info(name: str, data_dir: str | os.PathLike) -> dict[str, Any]:
  """What a config needs from a built dataset: classes, shape, split sizes, the report's path."""
  builder = load(name, data_dir)
  features = builder.info.features
  _, persons, joints, channels = features["skeleton"].shape
  return {
    "num_classes": features["label"].num_classes,
    "class_names": tuple(features["label"].names),
    "num_persons": persons,
    "num_joints": joints,
    "num_channels": channels,
    "num_examples": {s: builder.info.splits[s].num_examples for s in SPLITS},
    "report": pathlib.Path(builder.data_dir) / REPORT_NAME,
  }
