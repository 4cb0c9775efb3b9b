"""Kinetics-skeleton (ST-GCN's release: OpenPose-18 per clip in JSON) -> `Clip`.

A clip file is one JSON object:

  {"data": [{"frame_index": 1, "skeleton": [{"pose": [x0, y0, ..., x17, y17],   # 36 numbers
                                             "score": [s0, ..., s17]},          # 18 numbers
                                            ... one entry per detected person]},
            ... one entry per frame; a frame with no person has "skeleton": []],
   "label": "abseiling", "label_index": 0}

`kinetics_{train,val}_label.json` maps clip ids (the file stems) to
`{"has_skeleton": bool, "label": str, "label_index": int}`, and `label_name.txt` holds the 400
class names in label-index order.

Preprocessing follows ST-GCN's `feeder_kinetics.py`: the 1-based `frame_index` places each frame;
x, y (normalised by the 340x256 video size) are shifted by -0.5 so the frame centre is the origin;
a joint with score 0 (not detected) is (0, 0, 0); in every frame the persons are ranked by their
summed joint score and the `max_persons` most confident are kept (ST-GCN ranks only the first 5
persons of the file's order; here all persons are ranked, since the file's order is not by
confidence). The clip's length is its largest `frame_index` (at most `max_frames`; later frames are
dropped and counted in `meta["truncated_frames"]`); frames with no person stay in the clip as zeros
(counted in `meta["empty_frames"]`), as ST-GCN keeps them.

Bad input raises `SkeletonFormatError` naming the file and the frame/person: invalid JSON (with its
line), a missing or mistyped key, a pose that is not 18 (x, y) pairs, NaN/Inf values, a repeated
`frame_index`, a clip with no frame or with no person in any frame (nothing to learn from), or a
`label_index` that disagrees with the one given by the label file.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from slnl_jax.data.clip import Clip
from slnl_jax.data.errors import SkeletonFormatError, read_json, read_lines

NUM_JOINTS = 18  # OpenPose COCO-18
NUM_CHANNELS = 3  # x, y, score


def _is_int(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _numbers(path: str | os.PathLike, value: Any, n: int, what: str) -> np.ndarray:
  """`value` as a float64 array of n finite numbers, or an error naming `what`."""
  try:
    array = np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError, OverflowError):
    raise SkeletonFormatError(path, f"{what}: expected a list of {n} numbers") from None
  if array.shape != (n,):
    raise SkeletonFormatError(path, f"{what}: expected {n} numbers for {NUM_JOINTS} joints, found shape {array.shape}")
  with np.errstate(over="ignore"):
    if not np.isfinite(array.astype(np.float32)).all():
      raise SkeletonFormatError(path, f"{what}: NaN/Inf (or beyond float32) value")
  return array


def read_clip(
  path: str | os.PathLike,
  *,
  label_index: int | None = None,
  max_persons: int = 2,
  max_frames: int = 300,
) -> Clip:
  """Reads one Kinetics-skeleton clip JSON into a (T, max_persons, 18, 3) clip.

  Args:
    path: `<youtube_id>.json`.
    label_index: the clip's class from the split's label file; if the file has its own
      `label_index` the two must agree. None: the file's own, or -1 when it has none.
    max_persons: persons M kept per frame, the most confident first.
    max_frames: the longest clip; frames with a larger `frame_index` are dropped and counted.

  Returns:
    A `Clip` with meta: label_name (the file's `label`, if any), empty_frames (frames with no
    person), truncated_frames, max_persons_seen (most persons in one frame).
  """
  if max_persons < 1 or max_frames < 1:
    raise ValueError(f"max_persons and max_frames must be >= 1, got {max_persons}, {max_frames}")
  video = read_json(path)
  if not isinstance(video, dict) or not isinstance(video.get("data"), list):
    raise SkeletonFormatError(path, 'expected an object with a "data" list of frames')
  if not video["data"]:
    raise SkeletonFormatError(path, '"data" has no frame (a zero-length clip)')

  frames: dict[int, list[tuple[float, np.ndarray]]] = {}  # 0-based frame -> [(summed score, (18, 3))]
  seen = set()
  truncated = 0
  max_seen = 0
  for i, frame in enumerate(video["data"]):
    if not isinstance(frame, dict) or not isinstance(frame.get("skeleton"), list):
      raise SkeletonFormatError(path, f'data[{i}]: expected an object with a "skeleton" list')
    index = frame.get("frame_index")
    if not _is_int(index) or index < 1:
      raise SkeletonFormatError(path, f"data[{i}]: expected a 1-based integer frame_index")
    if index in seen:
      raise SkeletonFormatError(path, f"data[{i}]: frame_index {index} appears twice")
    seen.add(index)
    max_seen = max(max_seen, len(frame["skeleton"]))
    if index > max_frames:
      truncated += 1
      continue
    persons = []
    for m, person in enumerate(frame["skeleton"]):
      where = f"frame_index {index}, person {m}"
      if not isinstance(person, dict):
        raise SkeletonFormatError(path, f'{where}: expected an object with "pose" and "score"')
      pose = _numbers(path, person.get("pose"), 2 * NUM_JOINTS, f"{where}: pose")
      score = _numbers(path, person.get("score"), NUM_JOINTS, f"{where}: score")
      joints = np.stack([pose[0::2] - 0.5, pose[1::2] - 0.5, score], axis=-1)
      joints[score == 0, :2] = 0.0
      persons.append((float(score.sum()), joints))
    frames[index - 1] = persons

  num_frames = max(frames, default=-1) + 1
  skeleton = np.zeros((num_frames, max_persons, NUM_JOINTS, NUM_CHANNELS), np.float32)
  for t, persons in frames.items():
    # sorted() is stable: equal scores keep the file's order.
    for m, (_, joints) in enumerate(sorted(persons, key=lambda p: -p[0])[:max_persons]):
      skeleton[t, m] = joints
  empty = int(np.sum(~skeleton.any(axis=(1, 2, 3))))
  if empty == num_frames:
    raise SkeletonFormatError(path, f"no person in any of the {num_frames} frames")

  own_index = video.get("label_index")
  if own_index is not None and (not _is_int(own_index) or own_index < 0):
    raise SkeletonFormatError(path, f"label_index must be a non-negative integer, found {own_index!r}")
  if label_index is not None and own_index is not None and own_index != label_index:
    raise SkeletonFormatError(
      path, f"label_index {own_index} in the file disagrees with {label_index} from the label file"
    )
  label = label_index if label_index is not None else own_index if own_index is not None else -1
  meta: dict[str, Any] = dict(empty_frames=empty, truncated_frames=truncated, max_persons_seen=max_seen)
  if isinstance(video.get("label"), str):
    meta["label_name"] = video["label"]
  stem = os.path.basename(os.fspath(path)).removesuffix(".json")
  return Clip(skeleton=skeleton, label=label, name=stem, meta=meta)


def read_labels(path: str | os.PathLike) -> dict[str, dict]:
  """`kinetics_{train,val}_label.json`: clip id -> {has_skeleton, label, label_index}."""
  entries = read_json(path)
  if not isinstance(entries, dict):
    raise SkeletonFormatError(path, "expected an object mapping clip ids to label entries")
  labels = {}
  for clip_id, entry in entries.items():
    if not (
      isinstance(entry, dict)
      and isinstance(entry.get("has_skeleton"), bool)
      and isinstance(entry.get("label"), str)
      and _is_int(entry.get("label_index"))
      and entry["label_index"] >= 0
    ):
      raise SkeletonFormatError(
        path,
        f"entry {clip_id!r}: expected {{has_skeleton: bool, label: str, label_index: int >= 0}}",
      )
    labels[clip_id] = {k: entry[k] for k in ("has_skeleton", "label", "label_index")}
  return labels


def read_class_names(path: str | os.PathLike) -> tuple[str, ...]:
  """`label_name.txt`: one class name per line, line n+1 naming label_index n."""
  names = [line.strip() for line in read_lines(path)]
  while names and not names[-1]:
    names.pop()
  if not names:
    raise SkeletonFormatError(path, "no class name in the file")
  seen: dict[str, int] = {}
  for number, name in enumerate(names, start=1):
    if not name:
      raise SkeletonFormatError(path, "expected a class name, found an empty line", number)
    if name in seen:
      raise SkeletonFormatError(path, f"class {name!r} already named on line {seen[name]}", number)
    seen[name] = number
  return tuple(names)
