"""tools/agreement.py end to end on real orbax checkpoints of three differently initialised models and labelled
.npz clips, against a naive reference: each clip alone through `Predictor.probabilities` (no batching, no
padding), the runs' rows averaged and counted by hand."""

import collections
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from test_inference import CLASS_NAMES, tiny_config

from slnl_jax import checkpointing, inference, sharding, steps

REPO = pathlib.Path(__file__).resolve().parents[1]


def write_run(workdir: pathlib.Path, seed: int, class_names=CLASS_NAMES) -> None:
  """A workdir with one checkpoint (step 1) of a freshly initialised tiny model: seeds give different predictions."""
  config = tiny_config()
  config.seed = seed
  state = steps.initial_state(config, steps.create_learning_rate_fn(config, 1), sharding.make_mesh())
  info = {"config": config.to_dict(), "class_names": list(class_names)}
  checkpoints = checkpointing.Checkpointer(workdir / "checkpoints", model_info=info)
  checkpoints.save(state.replace(step=1), metrics={checkpointing.BEST_METRIC: 0.5})
  checkpoints.wait()
  checkpoints.close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  root = tmp_path_factory.mktemp("agreement")
  for seed in range(3):
    write_run(root / "runs" / f"seed_{seed}", seed)
  rng = np.random.default_rng(0)
  clips = root / "clips"
  clips.mkdir()
  # Lengths on both sides of one 64-frame bucket, so that the tool pads batches of mixed lengths; three of them,
  # so that the clip-by-clip reference compiles three shapes per run.
  for i in range(40):
    skeleton = rng.normal(size=(int(rng.choice([7, 20, 70])), 2, 25, 3)).astype(np.float32)
    np.savez(clips / f"clip_{i:02d}.npz", skeleton=skeleton, label=np.int64(rng.integers(0, len(CLASS_NAMES))))
  np.savez(clips / "unlabelled.npz", skeleton=rng.normal(size=(10, 2, 25, 3)).astype(np.float32))
  return root


def run_tool(*args):
  return subprocess.run(
    [sys.executable, "tools/agreement.py", *args], cwd=REPO, capture_output=True, text=True, check=False, timeout=600
  )


def test_figures_match_a_clip_by_clip_reference(setup, tmp_path):
  runs = sorted(str(p) for p in (setup / "runs").glob("seed_*"))
  out = tmp_path / "agreement.csv"
  clips = setup / "clips"
  result = run_tool(
    f"--workdirs={setup / 'runs' / 'seed_*'}",
    f"--input={clips / 'clip_*.npz'},{clips / 'unlabelled.npz'}",
    f"--out={out}",
  )
  assert result.returncode == 0, result.stderr[-3000:]
  text = result.stdout

  # The reference: every labelled clip alone through each run's Predictor.
  files = sorted((setup / "clips").glob("clip_*.npz"))
  loaded = [np.load(f) for f in files]
  labels = np.array([int(c["label"]) for c in loaded])
  predictors = [inference.Predictor.from_workdir(run, "latest") for run in runs]
  probs = np.array([[p.probabilities(c["skeleton"][None])[0] for c in loaded] for p in predictors])
  right = probs.argmax(-1) == labels
  ensemble = probs.mean(0).argmax(-1)
  times_right = right.sum(0)
  assert len(set(map(tuple, probs.argmax(-1)))) == 3, "the three runs must predict differently for this test"

  assert "top-1 on 40 labelled files:" in text
  for run, r in zip(runs, right, strict=True):
    assert f"{100 * r.mean():6.2f} %  {run}\n" in text
  assert f"{100 * right.mean():6.2f} %  the runs' mean top-1" in text
  assert f"{100 * np.mean(ensemble == labels):6.2f} %  the mean of the 3 runs' probabilities" in text
  assert f"{100 * np.mean(times_right > 0):6.2f} %  right by at least one run" in text
  counts = [int(np.sum(times_right == k)) for k in range(4)]
  assert "files right by k of the 3 runs: " + ", ".join(f"{k}: {n}" for k, n in enumerate(counts)) in text
  wrong = collections.Counter(
    f"{CLASS_NAMES[labels[i]]} -> {CLASS_NAMES[ensemble[i]]}" for i in range(len(files)) if times_right[i] == 0
  )
  line = re.search(r"wrong in every run \((\d+) files\), true -> the ensemble's class: (.*)", text)
  assert int(line.group(1)) == counts[0] > 0
  printed = dict(re.fullmatch(r"(.+) (\d+)", item).groups() for item in line.group(2).split(", "))
  assert {k: int(n) for k, n in printed.items()} == wrong
  assert "1 of 41 files carry no label among the models' classes" in text

  rows = out.read_text().splitlines()
  assert rows[0] == ",".join(["file", "label", *runs, "runs_right", "ensemble"])
  assert len(rows) == 41
  for row, f, label, k, e in zip(rows[1:], files, labels, times_right, ensemble, strict=True):
    assert row.split(",")[:2] == [str(f), CLASS_NAMES[label]]
    assert row.split(",")[-2:] == [str(k), CLASS_NAMES[e]]


def test_bad_input_is_one_error_line(setup, tmp_path):
  write_run(tmp_path / "other", 0, class_names=["a", "b", "c", "d"])
  clips = f"--input={setup / 'clips' / '*.npz'}"
  cases = [
    ([f"--workdirs={setup / 'runs' / 'seed_0'}", f"--input={tmp_path / 'none' / '*.json'}"], "no file matches --input"),
    ([f"--workdirs={setup / 'runs' / 'seed_0'},{tmp_path / 'other'}", clips], "other class names than"),
    ([f"--workdirs={tmp_path / 'missing_*'}", clips], "matches no directory"),
    ([f"--workdirs={tmp_path}", clips], "checkpoint"),
  ]
  for args, message in cases:
    result = run_tool(*args)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert message in last and "Traceback" not in result.stderr, result.stderr[-2000:]
