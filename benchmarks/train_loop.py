r"""Steps per second of the training loop, read back from a trained workdir (no timed test; a figure to compare).

  python -m slnl_jax.main --config=configs/demo.py --workdir=/tmp/demo
  python benchmarks/train_loop.py /tmp/demo

The trainer writes a train line every `log_every_steps` and at the end of each epoch, to metrics.jsonl and to
TensorBoard (whose events carry the wall time). The rate is the steps between consecutive train lines of the
same epoch over the wall time between them: the loop itself (data, step, logging, mid-epoch checkpoints), not
the compile, the evaluations or the end-of-epoch checkpoint.
"""

from __future__ import annotations

import itertools
import json
import pathlib
import sys

import tensorflow as tf


def train_line_times(workdir: pathlib.Path) -> dict[int, float]:
  """{step: wall time} of every train line in the workdir's TensorBoard events."""
  times = {}
  for path in sorted(workdir.glob("events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      if any(value.tag == "train/loss" for value in event.summary.value):
        times[event.step] = event.wall_time
  return times


def steps_per_second(workdir: pathlib.Path) -> tuple[float, int]:
  """(steps/s, steps measured) over the intervals between train lines of the same epoch."""
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  train = [(r["step"], r["epoch"]) for r in records if r["split"] == "train"]
  times = train_line_times(workdir)
  steps, seconds = 0, 0.0
  for (step_a, epoch_a), (step_b, epoch_b) in itertools.pairwise(train):
    if epoch_a == epoch_b and step_b > step_a:
      steps += step_b - step_a
      seconds += times[step_b] - times[step_a]
  if steps == 0:
    raise ValueError(f"{workdir}: no two train lines in one epoch (lower config.train.log_every_steps)")
  return steps / seconds, steps


def main(argv: list[str]) -> None:
  for workdir in argv[1:]:
    rate, steps = steps_per_second(pathlib.Path(workdir))
    print(f"{workdir}: {rate:.2f} steps/s over {steps} steps")


if __name__ == "__main__":
  main(sys.argv)
