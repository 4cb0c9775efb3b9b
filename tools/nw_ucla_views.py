r"""What each N-UCLA camera recorded of the same performances, action by action.

  python tools/nw_ucla_views.py [--data_dir="$SLNL_SHARED_DATA/nw_ucla/all_sqe"]

The three Kinects filmed every performance (`aAA_sSS_eEE`) at once, so a performance's three files differ by what
each camera saw and tracked. For each action, over the performances that all three views hold, it prints per view
the median number of frames and the median distance the hip centre (joint 1) covers: the diagonal of the box its
path spans, in metres; and how many of those performances have two views with the same frames (a file repeated
under another view's name: "2 = 3: 50" says 50 performances' view-3 files hold their view-2 frames). Only the
input files are read: labels and models play no part.
"""

from __future__ import annotations

import collections
import itertools
import os
import pathlib
import sys
from collections.abc import Sequence

import numpy as np
from absl import app, flags

from slnl_jax.data import nw_ucla
from slnl_jax.data.errors import SkeletonFormatError

_DATA_DIR = flags.DEFINE_string("data_dir", None, "The all_sqe folder (default: $SLNL_SHARED_DATA/nw_ucla/all_sqe).")

VIEWS = (1, 2, 3)


def hip_travel(skeleton: np.ndarray) -> float:
  """The diagonal of the box that joint 1 (the hip centre) of the first person spans over the clip (T, M, V, C)."""
  hip = skeleton[:, 0, 0]
  return float(np.linalg.norm(hip.max(axis=0) - hip.min(axis=0)))


Row = tuple[int, list[float], list[float], dict[tuple[int, int], int]]


def view_statistics(folder: pathlib.Path) -> dict[str, Row]:
  """action name -> (performances in all three views, median frames per view, median hip travel per view,
  {(view a, view b): performances whose two files have the same frames})."""
  per_performance: dict[tuple[int, int, int], dict[int, tuple[int, float, np.ndarray]]] = collections.defaultdict(dict)
  for path in sorted(folder.glob("*.json")):
    meta = nw_ucla.parse_name(path.stem)
    if meta is None or meta["view"] not in VIEWS:
      continue
    clip = nw_ucla.read_clip(path)
    key = (meta["action"], meta["subject"], meta["execution"])
    per_performance[key][meta["view"]] = (clip.num_frames, hip_travel(clip.skeleton), clip.skeleton)
  rows: dict[str, Row] = {}
  for action, name in zip(nw_ucla.ACTION_IDS, nw_ucla.CLASSES, strict=True):
    complete = [v for (a, _, _), v in sorted(per_performance.items()) if a == action and len(v) == len(VIEWS)]
    if complete:
      frames = [float(np.median([p[view][0] for p in complete])) for view in VIEWS]
      travel = [float(np.median([p[view][1] for p in complete])) for view in VIEWS]
      same = {
        (a, b): sum(np.array_equal(p[a][2], p[b][2]) for p in complete) for a, b in itertools.combinations(VIEWS, 2)
      }
      rows[name] = (len(complete), frames, travel, {pair: n for pair, n in same.items() if n})
  return rows


def render(rows: dict[str, Row]) -> list[str]:
  lines = [
    "performances recorded by all three views; medians per view 1 / 2 / 3",
    f"{'action':<24s} {'performances':>12s}  {'frames':>20s}  {'hip travel (m)':>20s}  same frames",
  ]
  for name, (count, frames, travel, same) in rows.items():
    lines.append(
      f"{name:<24s} {count:>12d}  {' / '.join(f'{f:g}' for f in frames):>20s}  "
      f"{' / '.join(f'{t:.2f}' for t in travel):>20s}  "
      + (", ".join(f"{a} = {b}: {n}" for (a, b), n in same.items()) or "-")
    )
  return lines


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  shared = os.environ.get("SLNL_SHARED_DATA")
  if not (_DATA_DIR.value or shared):
    sys.exit("error: no --data_dir, and SLNL_SHARED_DATA is not set")
  folder = pathlib.Path(_DATA_DIR.value or f"{shared}/nw_ucla/all_sqe")
  try:
    if not folder.is_dir():
      raise SkeletonFormatError(folder, "no such folder (set --data_dir or SLNL_SHARED_DATA)")
    rows = view_statistics(folder)
    if not rows:
      raise SkeletonFormatError(folder, "no performance is recorded by all three views here")
  except SkeletonFormatError as e:  # one error: line, not a traceback
    sys.exit(f"error: {e}")
  print("\n".join(render(rows)))


if __name__ == "__main__":
  app.run(main)
