"""MSR Action3D skeletons (`aXX_sYY_eZZ_skeleton3D.txt`, Kinect v1, 20 joints) -> `Clip`.

Plain text, no header: one line `x y z c` per joint (world coordinates in metres and the tracker's
confidence), 20 consecutive lines per frame. The confidence column is dropped: it is 0 for the
joints the tracker inferred (most of the time for 5 of the 20 joints) while their x y z are still
usable, and the other readers give plain coordinates too. A clip is (T, M=1, V=20, C=3).

Frames whose 20 joints are all at (0, 0, 0) are frames where the tracker lost the person; they are
dropped wherever they are and counted in `meta["dropped_frames"]` (in the real data: 740 trailing
frames of `a13_s09_e03`, blocks in the middle or at the start of 18 other files).

Bad input raises `SkeletonFormatError` with the file, 1-based line and what was expected: a line
that is not 4 numbers, NaN/Inf (or beyond float32) coordinates, a line count that is not a
multiple of 20 (a truncated file or another joint count), an empty file, or a file whose frames
are all zero (`a13_s09_e02` in the real data).
"""

from __future__ import annotations

import os
import re

import numpy as np

from slnl_jax.data.clip import Clip
from slnl_jax.data.errors import SkeletonFormatError, read_lines

NUM_JOINTS = 20
NUM_CHANNELS = 3  # x, y, z in metres

# The usual action list (dataset documentation; shared/data/msr_action3d/SOURCE.md), a01 first.
CLASSES = (
  "high arm wave", "horizontal arm wave", "hammer", "hand catch", "forward punch", "high throw",
  "draw x", "draw tick", "draw circle", "hand clap", "two hand wave", "side-boxing", "bend",
  "forward kick", "side kick", "jogging", "tennis swing", "tennis serve", "golf swing",
  "pick up & throw",
)  # fmt: skip

_NAME_RE = re.compile(r"a(\d{2})_s(\d{2})_e(\d{2})_skeleton3D\.txt")


def is_training(meta: dict) -> bool:
  """Cross-subject protocol: odd subjects (1, 3, 5, 7, 9) train, even subjects test."""
  return meta["subject"] % 2 == 1


def read_sequence(path: str | os.PathLike) -> Clip:
  """Reads one MSR Action3D skeleton file into a (T, 1, 20, 3) clip.

  Args:
    path: an `aXX_sYY_eZZ_skeleton3D.txt` file. Any other name is read too, with label -1 and no
      protocol ids in `meta` (e.g. for `--mode=predict`).

  Returns:
    A `Clip` with label = action - 1 and meta: action, subject, execution (when the name is an
    MSR Action3D name) and dropped_frames (all-zero frames removed).
  """
  lines = [line.split() for line in read_lines(path)]
  while lines and not lines[-1]:
    lines.pop()
  if not lines:
    raise SkeletonFormatError(path, "empty file (a zero-length clip)")
  values = []
  for number, fields in enumerate(lines, start=1):
    try:
      if len(fields) != 4:
        raise ValueError
      values.append([float(x) for x in fields])
    except ValueError:
      found = repr(" ".join(fields)[:60]) if fields else "an empty line"
      raise SkeletonFormatError(path, f"expected 4 numbers x y z c, found {found}", number) from None
  if len(values) % NUM_JOINTS:
    raise SkeletonFormatError(
      path,
      f"{len(values)} joint lines is not a multiple of {NUM_JOINTS} (MSR Action3D has "
      f"{NUM_JOINTS} joints per frame): the file is truncated or has another joint count",
      len(values),
    )
  with np.errstate(over="ignore"):
    xyz = np.array(values)[:, :NUM_CHANNELS].astype(np.float32)
  finite = np.isfinite(xyz).all(axis=1)
  if not finite.all():
    number = int(np.argmin(finite)) + 1
    raise SkeletonFormatError(path, "NaN/Inf (or beyond float32) coordinate", number)
  skeleton = xyz.reshape(-1, 1, NUM_JOINTS, NUM_CHANNELS)
  real = skeleton.any(axis=(1, 2, 3))
  if not real.any():
    raise SkeletonFormatError(path, f"all {len(skeleton)} frames are all zeros (no skeleton)")

  match = _NAME_RE.fullmatch(os.path.basename(os.fspath(path)))
  meta: dict = {}
  if match is not None:
    meta = dict(zip(("action", "subject", "execution"), map(int, match.groups()), strict=True))
  label = meta["action"] - 1 if meta else -1
  meta["dropped_frames"] = int(np.sum(~real))
  stem = os.path.basename(os.fspath(path)).removesuffix(".txt")
  return Clip(skeleton=skeleton[real], label=label, name=stem, meta=meta)
