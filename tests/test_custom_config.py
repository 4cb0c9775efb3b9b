"""configs/custom.py: each folder gets its own build, and a data error reaches the user as one `error:` line."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest

from configs import custom
from slnl_jax.data import builders

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _write(folder: pathlib.Path, rows: int, joints=(3, 3), seed: int = 0, **drop) -> pathlib.Path:
  rng = np.random.default_rng(seed)
  folder.mkdir(parents=True, exist_ok=True)
  for split, v in zip(builders.SPLITS, joints, strict=True):
    content = {"skeleton": rng.normal(size=(rows, 4, 1, v, 2)).astype(np.float32), "label": np.arange(rows) % 2}
    for key in drop.get(split, ()):
      del content[key]
    np.savez(folder / f"{split}.npz", **content)
  return folder


def test_each_folder_builds_its_own_dataset(tmp_path):
  # The reproduction: folder B after folder A, same data_dir; B must not train on A's examples.
  counts = {}
  for folder, rows in (("A", 6), ("B", 3)):
    config = custom.get_config(str(_write(tmp_path / folder, rows)))
    builder = builders.build(config.dataset.name, manual_dir=config.dataset.manual_dir, data_dir=tmp_path / "tfds")
    counts[folder] = builder.info.splits["test"].num_examples
  assert counts == {"A": 6, "B": 3}


def _main_error(manual_dir, tmp_path) -> str:
  result = subprocess.run(
    [sys.executable, "-m", "slnl_jax.main", f"--config=configs/custom.py:{manual_dir}", f"--workdir={tmp_path / 'w'}"],
    cwd=REPO_ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode != 0
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  lines = result.stderr.strip().splitlines()
  assert lines[-1].startswith("error: ") and sum(line.startswith("error:") for line in lines) == 1, lines
  return lines[-1]


@pytest.mark.parametrize(
  ("case", "expected"),
  [
    ("missing_label", ["train.npz", "label", "missing"]),
    ("joints_differ", ["joints", "(1, 3, 2)", "(1, 5, 2)"]),
    ("no_files", ["train.npz", "train_data.npy"]),
  ],
)
def test_data_errors_are_one_line(tmp_path, case, expected):
  folder = tmp_path / case
  if case == "missing_label":
    _write(folder, 2, train=("label",))
  elif case == "joints_differ":
    _write(folder, 2, joints=(3, 5))
  else:
    folder.mkdir()
  line = _main_error(folder, tmp_path)
  assert str(folder) in line
  for part in expected:
    assert part in line, line
