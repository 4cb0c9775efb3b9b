"""Northwestern-UCLA (N-UCLA) skeletons in the JSON layout of CTR-GCN (`all_sqe/aAA_sSS_eEE_vVV.json`) -> `Clip`.

One JSON object per sequence (the layout CTR-GCN and the GCN papers after it distribute):

  {"file_name": "a01_s01_e00_v01",
   "skeletons": [[[x, y, z], ... 20 joints], ... one entry per frame],   # Kinect v1, metres, camera coordinates
   "label": 1}                                                          # 1..10

The label numbers the ten actions present in order of their ids (a01 -> 1, ..., a06 -> 6, a08 -> 7, a09 -> 8,
a11 -> 9, a12 -> 10; there is no a07 or a10). A clip is (T, M=1, V=20, C=3); every frame is kept, even a
single one (`a02_s09_e04_v03` has one frame: the input pipeline resizes clips to T frames).

Bad input raises `SkeletonFormatError` naming the file (and, for invalid JSON, the line): a missing or
mistyped key, a frame that is not 20 joints of 3 numbers (named by its 1-based frame index), NaN/Inf (or
beyond float32) coordinates, no frame at all, a label outside 1..10, or a file whose `file_name` or label
disagrees with its own name (a renamed or mislabelled copy would otherwise land in the wrong split or class).

A known fault of the distributed files, which no reader can see: subject 4's view-2 "sit down" clips
(`a05_s04_e0[0-5]_v02`) show the hip rising and most of its view-2 "stand up" clips show it falling, the reverse of
the same subject's views 1 and 3 (docs/results.md, "How well the view-3 models fit their own training clips").
They are read as labelled, as every method trained on this protocol reads them. A second fault, which the build
report shows: every view-3 file of "pick up with two hands" and "drop trash" (95 files, a fifth of the cross-view
test split) has the same frames as the same performance's view-2 file, a training file (`tools/nw_ucla_views.py`
counts them per action; the build report lists them as `test_copies_of_training`). They stay in the test split,
as in the literature's.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from slnl_jax.data.clip import Clip
from slnl_jax.data.errors import SkeletonFormatError, read_json

NUM_JOINTS = 20
NUM_CHANNELS = 3  # x, y, z in metres

# Action ids in label order (label = index + 1) and their names (the dataset's action list, CVPR 2014).
ACTION_IDS = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)
CLASSES = (
  "pick up with one hand", "pick up with two hands", "drop trash", "walk around", "sit down", "stand up",
  "donning", "doffing", "throw", "carry",
)  # fmt: skip

NAME_RE = re.compile(r"a(\d{2})_s(\d{2})_e(\d{2})_v(\d{2})")
TRAIN_VIEWS = {"cross_view": (1, 2), "view_val": (1,), "view_val2": (2,)}  # protocol -> training views
TEST_VIEW = {"cross_view": 3, "view_val": 2, "view_val2": 1}  # protocol -> the view it tests on


def parse_name(name: str) -> dict[str, int] | None:
  """`aAA_sSS_eEE_vVV` (a file stem) -> {action, subject, execution, view}; None for any other name."""
  match = NAME_RE.fullmatch(name)
  if match is None:
    return None
  return dict(zip(("action", "subject", "execution", "view"), map(int, match.groups()), strict=True))


def split_of(view: int, protocol: str = "cross_view") -> str | None:
  """The split of a view under `protocol`: "train", "test", or None (a view the protocol does not use).

  `cross_view` is the literature's protocol (views 1 + 2 train, view 3 tests); `view_val` trains on view 1 and
  tests on view 2, a validation protocol for choosing settings without ever looking at view 3; `view_val2` is
  its second fold (view 2 trains, view 1 tests).
  """
  if view in TRAIN_VIEWS[protocol]:
    return "train"
  return "test" if view == TEST_VIEW[protocol] else None


def _skeleton(path: str | os.PathLike, frames: Any) -> np.ndarray:
  """`skeletons` as a float32 (T, 20, 3) array, or an error naming the first bad frame."""
  if not isinstance(frames, list) or not frames:
    raise SkeletonFormatError(path, "skeletons: expected a non-empty list of frames")
  for number, frame in enumerate(frames, start=1):
    try:
      array = np.asarray(frame, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
      array = None
    if array is None or array.shape != (NUM_JOINTS, NUM_CHANNELS) or isinstance(frame, str):
      shape = "non-numbers" if array is None else f"shape {array.shape}"
      raise SkeletonFormatError(
        path, f"skeletons frame {number}: expected {NUM_JOINTS} joints of {NUM_CHANNELS} numbers, found {shape}"
      )
  with np.errstate(over="ignore"):
    skeleton = np.asarray(frames, dtype=np.float64).astype(np.float32)
  finite = np.isfinite(skeleton).all(axis=(1, 2))
  if not finite.all():
    raise SkeletonFormatError(path, f"skeletons frame {int(np.argmin(finite)) + 1}: NaN/Inf (or beyond float32)")
  return skeleton


def read_clip(path: str | os.PathLike) -> Clip:
  """Reads one N-UCLA JSON file into a (T, 1, 20, 3) clip.

  Args:
    path: an `aAA_sSS_eEE_vVV.json` file (any other file name is read too, with its ids from `file_name`).

  Returns:
    A `Clip` named by the file stem, label = the file's label - 1, and meta action, subject, execution and
    view when `file_name` is an N-UCLA name.
  """
  content = read_json(path)
  if not isinstance(content, dict) or not {"skeletons", "label"} <= content.keys():
    found = sorted(content) if isinstance(content, dict) else type(content).__name__
    raise SkeletonFormatError(path, f"expected a JSON object with 'file_name', 'skeletons' and 'label'; found {found}")
  label = content["label"]
  if not isinstance(label, int) or isinstance(label, bool) or not 1 <= label <= len(CLASSES):
    raise SkeletonFormatError(path, f"label: expected an integer in 1..{len(CLASSES)}, found {label!r}")
  file_name = content.get("file_name")
  if not isinstance(file_name, str):
    raise SkeletonFormatError(path, f"file_name: expected a string, found {file_name!r}")
  stem = os.path.splitext(os.path.basename(os.fspath(path)))[0]
  if parse_name(stem) is not None and file_name != stem:
    raise SkeletonFormatError(path, f"file_name {file_name!r} disagrees with the file's own name {stem!r}")
  meta: dict[str, int] = parse_name(file_name) or {}
  if meta and meta["action"] != ACTION_IDS[label - 1]:
    raise SkeletonFormatError(
      path, f"label {label} is action a{ACTION_IDS[label - 1]:02d}, but the name says a{meta['action']:02d}"
    )
  skeleton = _skeleton(path, content["skeletons"])
  return Clip(skeleton=skeleton[:, None], label=label - 1, name=stem, meta=meta)
