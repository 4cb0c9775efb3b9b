"""PYSKL / mmaction2 skeleton annotation pickles (e.g. `ntu60_hrnet.pkl`, `ntu60_3danno.pkl`) -> `Clip`s.

The file is one pickled dict (mmaction2's older per-split files are the bare list of annotations):

  {"split": {"xsub_train": [frame_dir, ...], "xsub_val": [...], ...},
   "annotations": [{"frame_dir": str,                 # the sample id
                    "total_frames": int,             # T
                    "label": int,
                    "keypoint": (M, T, V, C) floats, # C = 2 (pixels) or 3 (metres)
                    "keypoint_score": (M, T, V),     # 2-D estimators only
                    "img_shape": (height, width),    # 2-D only
                    ...}, ...]}                      # other keys are ignored

It is read by `safe_pickle` with numeric numpy allowed, so no code in the file runs. A clip is (T, M, V, C):
3-D keypoints stay as they are (with the score appended if given); 2-D keypoints with scores become (x, y,
score) in the Kinetics-skeleton convention (`layouts.from_keypoints`: x / width - 0.5, y / height - 0.5,
undetected joints zero), which fits `layouts.COCO17` (PYSKL's HRNet files) and `layouts.OPENPOSE18`.

`to_custom_npz` writes two of its splits as the custom data path's `train.npz` / `test.npz` (configs/custom.py).
Bad input raises `SkeletonFormatError` naming the file, the annotation (index and frame_dir) and the key.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from slnl_jax.data import arrays, layouts, safe_pickle
from slnl_jax.data.clip import Clip
from slnl_jax.data.errors import SkeletonFormatError


@dataclasses.dataclass(frozen=True)
class Annotations:
  """A PYSKL file's clips by frame_dir (in the file's order) and its splits (lists of frame_dirs)."""

  clips: dict[str, Clip]
  splits: dict[str, list[str]]

  def split(self, name: str) -> list[Clip]:
    if name not in self.splits:
      raise KeyError(f"no split {name!r}; the file has {sorted(self.splits)}")
    return [self.clips[frame_dir] for frame_dir in self.splits[name]]


def _array(path: str | os.PathLike, where: str, annotation: dict, key: str, ndim: int) -> np.ndarray:
  value = annotation.get(key)
  if not isinstance(value, np.ndarray) or value.ndim != ndim or value.dtype.kind not in "fiu":
    found = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
    raise SkeletonFormatError(path, f"{where}: {key}: expected a {ndim}-D array of real numbers, found {found}")
  return value


def _int(path: str | os.PathLike, where: str, annotation: dict, key: str) -> int:
  value = annotation.get(key)
  if isinstance(value, bool) or not isinstance(value, int | np.integer):
    raise SkeletonFormatError(path, f"{where}: {key}: expected an integer, found {type(value).__name__}")
  return int(value)


def _clip(path: str | os.PathLike, index: int, annotation: Any) -> Clip:
  if not isinstance(annotation, dict) or not isinstance(annotation.get("frame_dir"), str):
    raise SkeletonFormatError(path, f"annotation {index}: expected a dict with a str 'frame_dir'")
  name = annotation["frame_dir"]
  where = f"annotation {index} ({name})"
  keypoint = _array(path, where, annotation, "keypoint", 4)
  persons, frames, joints, channels = keypoint.shape
  total_frames = _int(path, where, annotation, "total_frames")
  if total_frames != frames:
    raise SkeletonFormatError(path, f"{where}: total_frames is {total_frames} but keypoint has {frames} frames")
  label = _int(path, where, annotation, "label")
  if label < 0:
    raise SkeletonFormatError(path, f"{where}: label: expected >= 0, found {label}")
  skeleton = keypoint.astype(np.float32)
  if "keypoint_score" in annotation:
    score = _array(path, where, annotation, "keypoint_score", 3)
    if score.shape != (persons, frames, joints):
      raise SkeletonFormatError(path, f"{where}: keypoint_score: expected {keypoint.shape[:3]}, found {score.shape}")
    if channels == 2:
      shape = annotation.get("img_shape")
      if not (isinstance(shape, tuple | list) and len(shape) == 2 and all(s > 0 for s in shape)):
        raise SkeletonFormatError(path, f"{where}: img_shape: 2-D keypoints need the image's (height, width)")
      skeleton = layouts.from_keypoints(keypoint, score, width=float(shape[1]), height=float(shape[0]))
    else:
      skeleton = np.concatenate([skeleton, score[..., None].astype(np.float32)], axis=-1)
  return arrays.clip_from_array(
    skeleton.transpose(1, 0, 2, 3), path=path, name=name, label=label, num_frames=frames, meta={"index": index}
  )


def read(path: str | os.PathLike) -> Annotations:
  """Reads and checks a PYSKL / mmaction2 annotation pickle (see the module docstring)."""
  content = safe_pickle.load(path, allow_numpy=True)
  if isinstance(content, list):
    content = {"split": {}, "annotations": content}
  if not isinstance(content, dict) or not isinstance(content.get("annotations"), list):
    raise SkeletonFormatError(path, "expected a dict with 'split' and 'annotations' (a list), or that list")
  clips: dict[str, Clip] = {}
  for index, annotation in enumerate(content["annotations"]):
    clip = _clip(path, index, annotation)
    if clip.name in clips:
      raise SkeletonFormatError(path, f"annotation {index}: frame_dir {clip.name!r} appears twice")
    first = next(iter(clips.values()), clip)
    if clip.skeleton.shape[2:] != first.skeleton.shape[2:]:
      raise SkeletonFormatError(
        path,
        f"annotation {index} ({clip.name}): {clip.skeleton.shape[2:]} joints x channels, but "
        f"{first.name} has {first.skeleton.shape[2:]}",
      )
    clips[clip.name] = clip
  splits = content.get("split", {})
  if not isinstance(splits, dict):
    raise SkeletonFormatError(path, "split: expected a dict {split name: [frame_dir, ...]}")
  for split, frame_dirs in splits.items():
    if not isinstance(frame_dirs, list | tuple):
      raise SkeletonFormatError(path, f"split {split!r}: expected a list of frame_dirs")
    missing = [frame_dir for frame_dir in frame_dirs if frame_dir not in clips]
    if missing:
      raise SkeletonFormatError(
        path, f"split {split!r}: {len(missing)} frame_dirs have no annotation, e.g. {missing[0]!r}"
      )
  return Annotations(clips=clips, splits={str(k): list(v) for k, v in splits.items()})


def _stack(clips: Sequence[Clip], persons: int) -> dict[str, np.ndarray]:
  frames = max(clip.num_frames for clip in clips)
  joints, channels = clips[0].skeleton.shape[2:]
  skeleton = np.zeros((len(clips), frames, persons, joints, channels), np.float32)
  for i, clip in enumerate(clips):
    kept = clip.skeleton[:, :persons]
    skeleton[i, : clip.num_frames, : kept.shape[1]] = kept
  return {
    "skeleton": skeleton,
    "label": np.array([clip.label for clip in clips], np.int64),
    "num_frames": np.array([clip.num_frames for clip in clips], np.int64),
    "names": np.array([clip.name for clip in clips], dtype=str),
  }


def to_custom_npz(
  path: str | os.PathLike,
  out_dir: str | os.PathLike,
  *,
  train_split: str,
  test_split: str,
  max_persons: int = 2,
  class_names: Sequence[str] | None = None,
) -> None:
  """Writes two splits of a PYSKL file as `out_dir/train.npz` + `test.npz`, the custom data path's format.

  Clips are zero-padded to the longest clip and to `max_persons` persons (later persons are cut: PYSKL stores
  the tracker's persons in its own order).
  """
  annotations = read(path)
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  for split, filename in ((train_split, "train.npz"), (test_split, "test.npz")):
    content = _stack(annotations.split(split), max_persons)
    if class_names is not None:
      content["class_names"] = np.array(class_names, dtype=str)
    np.savez(out_dir / filename, **content)
