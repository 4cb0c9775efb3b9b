r"""How several trained runs (seeds, variants) agree on the same labelled files: is the error variance or shared?

  python tools/agreement.py --workdirs='workdirs/ablate_x/runs/base/seed_*' \
      --input="$SLNL_SHARED_DATA/nw_ucla/all_sqe/*_v03.json" [--checkpoint=latest] [--out=agreement.csv]

Prints each run's top-1 (scored as `--mode=predict` scores: `inference.Predictor`, every evaluation view), the
top-1 of the mean of the runs' probabilities (an ensemble: what averaging the runs' variance away reaches), the
share of files at least one run gets right, how many files k of the runs get right, and the files every run
gets wrong, counted by (true class -> the ensemble's class). --workdirs and --input are comma-separated lists;
each item may be a quoted glob pattern. The runs must share their class names. Files whose label the models do
not know are left out of every figure (and counted).

--out writes a CSV row per file: file, label, each run's top-1 (columns named by workdir), runs_right, ensemble.
"""

from __future__ import annotations

import collections
import csv
import glob
import pathlib
import sys
from collections.abc import Sequence

import numpy as np
from absl import app, flags
from tqdm import tqdm

from slnl_jax import checkpointing, inference
from slnl_jax.data import readers
from slnl_jax.data.errors import SkeletonFormatError

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Trained workdirs, comma-separated; quoted glob patterns expand.")
_INPUT = flags.DEFINE_list("input", None, "Raw skeleton files with labels: quoted glob patterns, comma-separated.")
_CHECKPOINT = flags.DEFINE_string(
  "checkpoint", "latest", "'latest' (default: the last epoch, as the reports score), 'best' or a step number."
)
_OUT = flags.DEFINE_string("out", None, "Optional CSV of every file's predictions.")
flags.mark_flags_as_required(["workdirs", "input"])

_FILES_PER_CHUNK = 256  # files read (once, for every run) and predicted at a time


class RunsError(Exception):
  """--workdirs names no run, or runs that cannot be compared."""


def expand(patterns: Sequence[str]) -> list[str]:
  """Each item's glob matches, sorted (an item that is a workdir matches itself); an item matching nothing is an
  error."""
  found: list[str] = []
  for pattern in patterns:
    matches = sorted(glob.glob(pattern))
    if not matches:
      raise RunsError(f"--workdirs: {pattern!r} matches no directory")
    found.extend(matches)
  return found


def probabilities(
  predictors: Sequence[inference.Predictor], paths: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
  """(runs, files, K) probabilities of the labelled `paths`, their (files,) label indices, and those paths."""
  class_names = predictors[0].class_names
  data = predictors[0].config.dataset
  scored, labels, rows = [], [], [[] for _ in predictors]
  with tqdm(total=len(paths) * len(predictors), desc="predicting", unit="file") as bar:
    for first in range(0, len(paths), _FILES_PER_CHUNK):
      chunk = []
      for path in paths[first : first + _FILES_PER_CHUNK]:
        clip = readers.read_for_model(path, data.num_joints, data.num_channels)
        name = readers.class_among(path, clip, class_names)
        if name is not None:
          chunk.append(clip.skeleton)
          labels.append(class_names.index(name))
          scored.append(path)
      for predictor, row in zip(predictors, rows, strict=True):
        row.append(predictor.clip_probabilities(chunk))
        bar.update(min(_FILES_PER_CHUNK, len(paths) - first))
  return np.stack([np.concatenate(row) for row in rows]), np.asarray(labels, np.int64), scored


def report(
  runs: Sequence[str], top1: np.ndarray, ensemble: np.ndarray, labels: np.ndarray, class_names: Sequence[str]
) -> list[str]:
  """The lines of the module docstring for each run's `top1` (runs, files), the `ensemble`'s (files,) and `labels`."""
  right = top1 == labels  # (runs, files)
  times_right = right.sum(0)
  lines = [f"top-1 on {len(labels)} labelled files:"]
  lines += [f"  {100 * r.mean():6.2f} %  {run}" for run, r in zip(runs, right, strict=True)]
  lines += [
    f"  {100 * right.mean():6.2f} %  the runs' mean top-1",
    f"  {100 * np.mean(ensemble == labels):6.2f} %  the mean of the {len(runs)} runs' probabilities (an ensemble)",
    f"  {100 * np.mean(times_right > 0):6.2f} %  right by at least one run",
  ]
  counts = np.bincount(times_right, minlength=len(runs) + 1)
  lines.append(f"files right by k of the {len(runs)} runs: " + ", ".join(f"{k}: {n}" for k, n in enumerate(counts)))
  wrong = collections.Counter(
    (class_names[labels[i]], class_names[ensemble[i]]) for i in np.flatnonzero(times_right == 0)
  )
  if wrong:
    lines.append(
      f"wrong in every run ({counts[0]} files), true -> the ensemble's class: "
      + ", ".join(f"{true} -> {said} {n}" for (true, said), n in wrong.most_common())
    )
  return lines


def write_csv(
  path: str,
  runs: Sequence[str],
  scored: Sequence[str],
  top1: np.ndarray,
  ensemble: np.ndarray,
  labels: np.ndarray,
  class_names: Sequence[str],
) -> None:
  """One row per labelled file of `scored`: its label, each run's class, how many runs are right, the ensemble's."""
  runs_right = (top1 == labels).sum(0)  # (files,)
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["file", "label", *runs, "runs_right", "ensemble"])
    for i, file in enumerate(scored):
      writer.writerow(
        [
          file,
          class_names[labels[i]],
          *(class_names[t] for t in top1[:, i]),
          int(runs_right[i]),
          class_names[ensemble[i]],
        ]
      )


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  checkpointing.quiet_orbax_logs()
  try:
    lines = agreement(expand(_WORKDIRS.value), _INPUT.value, _CHECKPOINT.value, _OUT.value)
  except (RunsError, checkpointing.CheckpointError, SkeletonFormatError) as e:  # one error: line, not a traceback
    sys.exit(f"error: {e}")
  print("\n".join(lines))


def agreement(runs: Sequence[str], patterns: Sequence[str], checkpoint: str, out: str | None) -> list[str]:
  """The tool's lines for the workdirs `runs` on the files matching any of `patterns` (and --out's CSV)."""
  paths = readers.matching_files(patterns)
  predictors = [inference.Predictor.from_workdir(pathlib.Path(run), checkpoint) for run in runs]
  class_names = predictors[0].class_names
  for run, predictor in zip(runs, predictors, strict=True):
    if predictor.class_names != class_names:
      raise RunsError(f"{run} has other class names than {runs[0]}: the runs must share their classes")
  probs, labels, scored = probabilities(predictors, paths)
  if not scored:
    raise SkeletonFormatError(",".join(patterns), "no file carries a label among the models' classes")
  top1, ensemble = probs.argmax(-1), probs.mean(0).argmax(-1)  # each run's class, the ensemble's
  lines = report(runs, top1, ensemble, labels, class_names)
  if len(scored) < len(paths):
    lines.append(f"{len(paths) - len(scored)} of {len(paths)} files carry no label among the models' classes")
  if out:
    write_csv(out, runs, scored, top1, ensemble, labels, class_names)
    lines.append(f"wrote {out}")
  return lines


if __name__ == "__main__":
  app.run(main)
