"""MSR Action3D reader: all 567 real sequences, their documented quirks, and bad input.

Expected figures come from shared/data/msr_action3d/SOURCE.md, the file names and plain line
counts, never from the reader itself.
"""

import collections
import re

import numpy as np
import pytest

from slnl_jax.data import msr_action3d
from slnl_jax.data.errors import SkeletonFormatError

# SOURCE.md: all-zero frames per file (besides a13_s09_e02, all zeros).
ZERO_FRAMES = {
  "a07_s04_e01": 36, "a13_s02_e02": 12, "a13_s02_e03": 12, "a13_s06_e01": 15, "a13_s06_e02": 14,
  "a13_s06_e03": 9, "a13_s08_e02": 18, "a13_s09_e01": 12, "a13_s10_e02": 10, "a14_s03_e01": 9,
  "a20_s02_e01": 32, "a20_s02_e02": 29, "a20_s02_e03": 33, "a20_s06_e01": 33, "a20_s07_e01": 19,
  "a20_s07_e03": 7, "a20_s08_e02": 19, "a20_s08_e03": 16, "a13_s09_e03": 740,
}  # fmt: skip
ALL_ZERO = "a13_s09_e02"


def _msr_dir(shared_data):
  return shared_data / "msr_action3d" / "MSRAction3DSkeletonReal3D"


@pytest.fixture(scope="module")
def real_clips(shared_data):
  """Every real file: name -> (file line count, clip or the error it raised)."""
  out = {}
  for path in sorted(_msr_dir(shared_data).glob("*_skeleton3D.txt")):
    lines = path.read_bytes().count(b"\n")
    try:
      out[path.name.removesuffix("_skeleton3D.txt")] = (lines, msr_action3d.read_sequence(path))
    except SkeletonFormatError as e:
      out[path.name.removesuffix("_skeleton3D.txt")] = (lines, e)
  return out


def test_every_real_sequence(real_clips):
  assert len(real_clips) == 567
  errors = {name for name, (_, clip) in real_clips.items() if isinstance(clip, Exception)}
  assert errors == {ALL_ZERO}
  for name, (lines, clip) in real_clips.items():
    if name == ALL_ZERO:
      continue
    action, subject, execution = map(int, re.fullmatch(r"a(\d+)_s(\d+)_e(\d+)", name).groups())
    assert lines % 20 == 0
    frames = lines // 20 - ZERO_FRAMES.get(name, 0)
    assert clip.skeleton.shape == (frames, 1, 20, 3), name
    assert clip.skeleton.dtype == np.float32
    assert clip.label == action - 1 and clip.name == f"{name}_skeleton3D"
    assert clip.meta == dict(
      action=action, subject=subject, execution=execution, dropped_frames=ZERO_FRAMES.get(name, 0)
    )
    assert clip.skeleton.any(axis=(1, 2, 3)).all(), f"{name}: an all-zero frame was kept"


def test_documented_quirks(real_clips, shared_data):
  error = real_clips[ALL_ZERO][1]
  assert str(_msr_dir(shared_data) / f"{ALL_ZERO}_skeleton3D.txt") in str(error)
  assert "zeros" in error.reason
  lines, clip = real_clips["a13_s09_e03"]
  assert lines == 936 * 20
  assert clip.num_frames == 196 and clip.meta["dropped_frames"] == 740


def test_counts_and_cross_subject_split(real_clips):
  per_class = collections.Counter(name[:3] for name in real_clips)
  expected = {f"a{a:02d}": 30 for a in range(1, 21)}
  expected.update(a01=27, a02=27, a03=27, a04=26, a05=26, a06=26, a07=28, a15=20)
  assert per_class == expected
  per_subject = collections.Counter(name[4:7] for name in real_clips)
  assert per_subject["s04"] == 38 and per_subject["s03"] == 56 and per_subject["s05"] == 57
  clips = [clip for _, clip in real_clips.values() if not isinstance(clip, Exception)]
  train = sum(msr_action3d.is_training(clip.meta) for clip in clips)
  # SOURCE.md: 292 train / 275 test files; the all-zero one (subject 9) is a training file.
  assert (train, len(clips) - train) == (291, 275)


def test_first_values(real_clips):
  # SOURCE.md: first 3 lines of a01_s01_e01 (1080 lines = 54 frames).
  clip = real_clips["a01_s01_e01"][1]
  assert clip.num_frames == 54
  np.testing.assert_array_equal(
    clip.skeleton[0, 0, :3],
    np.array([[-0.371736, 0.371031, 2.674849], [-0.014095, 0.355341, 2.678124],
              [-0.190055, 0.408653, 2.581967]], np.float32),
  )  # fmt: skip


def test_class_names():
  assert len(msr_action3d.CLASSES) == 20 and len(set(msr_action3d.CLASSES)) == 20
  assert msr_action3d.CLASSES[0] == "high arm wave"
  assert msr_action3d.CLASSES[12] == "bend"
  assert msr_action3d.CLASSES[19] == "pick up & throw"


# ---------------------------------------------------------------------------------------------
# Files built here.

NAME = "a03_s04_e02_skeleton3D.txt"


def _frames(n, seed=0):
  return np.random.default_rng(seed).uniform(-1, 3, (n, 20, 4)).round(6)


def _write(tmp_path, frames, name=NAME, newline="\n"):
  path = tmp_path / name
  rows = [" ".join(f"{v:.6f}" for v in joint) for joint in frames.reshape(-1, 4)]
  path.write_text(newline.join(rows) + newline)
  return path


def test_zero_frames_anywhere_are_dropped_and_counted(tmp_path):
  frames = _frames(6)
  frames[[0, 2, 5], :, :3] = 0.0  # the confidence column does not make a frame real
  clip = msr_action3d.read_sequence(_write(tmp_path, frames, newline="\r\n"))
  np.testing.assert_allclose(clip.skeleton[:, 0], frames[[1, 3, 4], :, :3], rtol=1e-6)
  assert clip.meta == dict(action=3, subject=4, execution=2, dropped_frames=3)
  assert clip.label == 2 and msr_action3d.is_training(clip.meta) is False


def test_other_names_are_unlabelled(tmp_path):
  clip = msr_action3d.read_sequence(_write(tmp_path, _frames(2), name="mine_skeleton3D.txt"))
  assert clip.label == -1 and clip.meta == {"dropped_frames": 0}


@pytest.mark.parametrize(
  "line, replacement, message",
  [
    (7, "0.1 0.2 0.3", "4 numbers"),
    (7, "0.1 0.2 0.3 1 5", "4 numbers"),
    (7, "0.1 0.2 zero 1", "4 numbers"),
    (7, "", "an empty line"),
    (27, "0.1 nan 0.3 1", "NaN/Inf"),
    (27, "-inf 0.2 0.3 1", "NaN/Inf"),
    (27, "0.1 0.2 4e38 1", "float32"),
  ],
)
def test_malformed_line(tmp_path, line, replacement, message):
  path = _write(tmp_path, _frames(2))
  lines = path.read_text().splitlines()
  lines[line - 1] = replacement
  path.write_text("\n".join(lines) + "\n")
  with pytest.raises(SkeletonFormatError, match=message) as e:
    msr_action3d.read_sequence(path)
  assert e.value.line == line and str(e.value).startswith(f"{path}:{line}: ")


def test_truncated_or_other_joint_count(tmp_path):
  path = _write(tmp_path, _frames(2))
  lines = path.read_text().splitlines()
  for keep in (15, 25, 39):  # a cut file, or 15- / 25-joint frames: neither is a multiple of 20
    path.write_text("\n".join(lines[:keep]) + "\n")
    with pytest.raises(SkeletonFormatError, match="not a multiple of 20") as e:
      msr_action3d.read_sequence(path)
    assert e.value.line == keep


def test_zero_length_files(tmp_path):
  path = tmp_path / NAME
  for text, message in (("", "empty file"), ("\n\n", "empty file"), ("0 0 0 0.5\n" * 40, "zeros")):
    path.write_text(text)
    with pytest.raises(SkeletonFormatError, match=message):
      msr_action3d.read_sequence(path)
  with pytest.raises(SkeletonFormatError, match="cannot read"):
    msr_action3d.read_sequence(tmp_path / "absent_skeleton3D.txt")
