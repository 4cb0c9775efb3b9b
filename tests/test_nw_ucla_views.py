"""tools/nw_ucla_views.py on hand-built N-UCLA files whose frame counts, hip paths and repeats are known."""

import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def write(folder: pathlib.Path, name: str, hip_path: list[list[float]]) -> None:
  """A file whose joint 1 follows `hip_path` (one [x, y, z] per frame); the other 19 joints stay put."""
  frames = [[hip, *([[0.5, 0.5, 3.0]] * 19)] for hip in hip_path]
  label = {3: 3, 12: 10}[int(name[1:3])]
  (folder / f"{name}.json").write_text(json.dumps({"file_name": name, "skeletons": frames, "label": label}))


def run(*args):
  return subprocess.run(
    [sys.executable, "tools/nw_ucla_views.py", *args], cwd=REPO, capture_output=True, text=True, check=False
  )


def test_medians_and_repeats(tmp_path):
  # carry (a12): two performances in all three views, a third in two views only (left out).
  # Hip along x by 0.1 m a frame, so the travel is 0.1 * (frames - 1); view 3 also moves 0.2 m in z once.
  for execution, frames in ((0, (4, 6, 2)), (1, (8, 10, 4))):
    for view, n in zip((1, 2, 3), frames, strict=True):
      path = [[0.1 * i, 0.0, 3.0] for i in range(n)]
      if view == 3:
        path[-1][2] += 0.2
      write(tmp_path, f"a12_s01_e{execution:02d}_v{view:02d}", path)
  for view in (1, 2):
    write(tmp_path, f"a12_s01_e02_v{view:02d}", [[0.0, 0.0, 3.0]] * 50)
  # drop trash (a03): one performance whose view-3 file repeats its view-2 frames.
  write(tmp_path, "a03_s02_e00_v01", [[0.0, 0.0, 3.0], [0.0, 0.3, 3.0], [0.0, 0.3, 3.4]])
  for view in (2, 3):
    write(tmp_path, f"a03_s02_e00_v{view:02d}", [[0.0, 0.0, 3.0], [0.3, 0.0, 3.0]])

  result = run(f"--data_dir={tmp_path}")
  assert result.returncode == 0, result.stderr[-3000:]
  rows = {line[:24].strip(): line[24:].split() for line in result.stdout.splitlines()[2:]}
  assert list(rows) == ["drop trash", "carry"]  # label order; actions without a complete performance are left out
  # drop trash: 1 performance, frames 3 / 2 / 2, travel |(0, 0.3, 0.4)| = 0.5, then 0.3 twice; view 2 = view 3.
  assert rows["drop trash"] == ["1", "3", "/", "2", "/", "2", "0.50", "/", "0.30", "/", "0.30", "2", "=", "3:", "1"]
  # carry: medians of two performances: frames (4 + 8) / 2, (6 + 10) / 2, (2 + 4) / 2; travel 0.3 and 0.7 -> 0.5,
  # 0.5 and 0.9 -> 0.7, |(0.1, 0, 0.2)| = 0.2236 and |(0.3, 0, 0.2)| = 0.3606 -> 0.2921.
  assert rows["carry"] == ["2", "6", "/", "8", "/", "3", "0.50", "/", "0.70", "/", "0.29", "-"]


def test_bad_input_is_one_error_line(tmp_path):
  write(tmp_path, "a12_s01_e00_v01", [[0.0, 0.0, 3.0]])
  (tmp_path / "a12_s01_e00_v02.json").write_text('{"file_name": "a12_s01_e00_v02", "skeletons": [[[0, 0')
  cases = [
    ([f"--data_dir={tmp_path}"], "a12_s01_e00_v02.json"),
    ([f"--data_dir={tmp_path / 'missing'}"], "no such folder"),
  ]
  for args, message in cases:
    result = run(*args)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0 and last.startswith("error:") and message in last, result.stderr[-2000:]
