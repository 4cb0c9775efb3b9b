"""tools/build_dataset.py end to end: a build's summary, and every user mistake as one `error:` line."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(*args):
  return subprocess.run(
    [sys.executable, "tools/build_dataset.py", *map(str, args)], cwd=REPO_ROOT, capture_output=True, text=True
  )


@pytest.fixture
def raw(tmp_path):
  folder = tmp_path / "raw"
  folder.mkdir()
  for split in ("train", "test"):
    np.savez(folder / f"{split}.npz", skeleton=np.ones((2, 3, 1, 2, 2), np.float32), label=np.array([0, 1]))
  return folder


def test_build_then_mistakes_are_one_line(tmp_path, raw):
  data_dir = tmp_path / "inside" / "tfds"
  result = _run("custom_skeleton/mine", f"--manual_dir={raw}", f"--data_dir={data_dir}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "train: 2 examples" in result.stdout and "4 rows seen = 4 written + 0 skipped + 0 excluded" in result.stdout
  # Every row is all ones: both test rows repeat the first training row.
  assert "2 test examples have the same frames as a training example (e.g. test_0 = train_0)" in result.stdout
  # A build made before the report listed copies is reused and summarised without that line.
  (report_path,) = data_dir.glob("custom_skeleton/mine/*/build_report.json")
  report = json.loads(report_path.read_text())
  del report["test_copies_of_training"]
  report_path.write_text(json.dumps(report))
  again = _run("custom_skeleton/mine", f"--manual_dir={raw}", f"--data_dir={data_dir}")
  assert again.returncode == 0 and "4 rows seen" in again.stdout and "same frames" not in again.stdout, again.stderr

  for args, expected in (
    (["custom_skeleton/../../../escaped", f"--manual_dir={raw}"], "not a path"),
    (["msr_action3d", f"--manual_dir={tmp_path / 'missing'}"], "msr_action3d"),
    (["custom_skeleton/mine", f"--manual_dir={tmp_path}"], "train.npz"),
    (["ntu_rgbd60/xsubb", f"--manual_dir={raw}"], "expected one of ['xsub', 'xview']"),
  ):
    result = _run(*args, f"--data_dir={data_dir}")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr[-3000:]
  assert sorted(p.name for p in tmp_path.iterdir()) == ["inside", "raw"]  # nothing escaped data_dir
  assert sorted(p.name for p in (tmp_path / "inside").iterdir()) == ["tfds"]
