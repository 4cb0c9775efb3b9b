"""NTU RGB+D `.skeleton` reader: the 12 real files of shared/data, protocols, and bad input.

Expected figures come from shared/data/ntu_rgbd/SOURCE.md and from a plain-Python parse in this
file, never from the reader itself.
"""

import re

import numpy as np
import pytest

from slnl_jax.data import ntu
from slnl_jax.data.errors import SkeletonFormatError

# SOURCE.md: file -> (frames, bodies per frame, CRLF line endings).
REAL_FILES = {
  "S001C001P001R001A001": (103, 1, True),
  "S001C001P001R001A011": (82, 1, True),
  "S001C003P008R002A058": (70, 2, True),
  "S002C001P003R001A003": (100, 1, True),
  "S003C001P015R001A034": (71, 1, True),
  "S004C002P003R001A017": (124, 1, True),
  "S001C001P001R001A024": (78, 2, False),
  "S001C001P001R001A050": (74, 2, False),
  "S001C001P001R001A052": (74, 2, False),
  "S001C001P001R001A055": (95, 2, False),
  "S001C001P001R001A058": (71, 2, False),
  "S001C001P001R001A060": (93, 2, False),
}
SPURIOUS_BODY_FILE = "S001C001P001R001A024"  # one-person action, a second body ~2 m aside


def _ntu_dir(shared_data):
  return shared_data / "ntu_rgbd" / "nturgb+d_skeletons"


def _naive_bodies(path):
  """Body id -> (frames, 25, 3) x y z, by a plain line-by-line parse of a `.skeleton` file."""
  lines = path.read_text().splitlines()
  i, bodies = 1, {}
  for _ in range(int(lines[0])):
    num_bodies = int(lines[i])
    i += 1
    for _ in range(num_bodies):
      body_id = lines[i].split()[0]
      joints = [[float(v) for v in lines[i + 2 + j].split()[:3]] for j in range(25)]
      bodies.setdefault(body_id, []).append(joints)
      i += 27
  assert i == len(lines), "the test's own parse must consume every line"
  return {k: np.array(v, np.float32) for k, v in bodies.items()}


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_real_file(shared_data, name):
  frames, bodies_per_frame, crlf = REAL_FILES[name]
  path = _ntu_dir(shared_data) / f"{name}.skeleton"
  raw = path.read_bytes()
  assert (b"\r\n" in raw) == crlf
  # Line count = 1 + sum over frames of (1 + B * 27) ties the frame count to the file.
  assert raw.count(b"\n") == 1 + frames * (1 + bodies_per_frame * 27)

  clip = ntu.read_skeleton(path)
  setup, camera, subject, replication, action = map(int, re.findall(r"\d+", name))
  assert clip.skeleton.shape == (frames, 2, 25, 3)
  assert clip.skeleton.dtype == np.float32
  assert clip.label == action - 1
  assert clip.name == name
  assert clip.meta["setup"] == setup and clip.meta["camera"] == camera
  assert clip.meta["subject"] == subject and clip.meta["replication"] == replication
  assert clip.meta["action"] == action
  assert clip.meta["dropped_frames"] == 0
  assert clip.meta["num_bodies_seen"] == bodies_per_frame

  naive = _naive_bodies(path)
  if name == SPURIOUS_BODY_FILE:
    return  # its body selection has its own test below
  persons = [clip.skeleton[:, m] for m in range(bodies_per_frame)]
  for person in persons:
    assert any(np.array_equal(person, body) for body in naive.values())
  if bodies_per_frame == 2:
    assert not np.array_equal(persons[0], persons[1])
    assert clip.skeleton[:, 1].any(axis=(1, 2)).all()  # the second person is in every frame
  else:
    assert not clip.skeleton[:, 1].any()


def test_spurious_body_is_dropped_and_actor_first(shared_data):
  path = _ntu_dir(shared_data) / f"{SPURIOUS_BODY_FILE}.skeleton"
  naive = _naive_bodies(path)
  assert len(naive) == 2
  # SOURCE.md: the actor's mean x is ~0.27 m, the spurious body's ~2.0 m.
  actor = next(body for body in naive.values() if abs(body[..., 0].mean() - 0.27) < 0.1)
  spurious = next(body for body in naive.values() if abs(body[..., 0].mean() - 2.0) < 0.1)
  assert not np.array_equal(actor, spurious)

  clip = ntu.read_skeleton(path)
  np.testing.assert_array_equal(clip.skeleton[:, 0], actor)
  # Decision (documented in ntu.py): the object fitted with a skeleton is dropped, not person 2.
  assert not clip.skeleton[:, 1].any()
  assert clip.meta["num_bodies_seen"] == 2
  assert clip.meta["num_bodies_kept"] == 1


def test_first_joint_values(shared_data):
  # SOURCE.md, first joint line of S001C001P001R001A001.
  clip = ntu.read_skeleton(_ntu_dir(shared_data) / "S001C001P001R001A001.skeleton")
  np.testing.assert_array_equal(clip.skeleton[0, 0, 0], np.array([0.2181153, 0.1725972, 3.785547], np.float32))


def test_crlf_and_lf_give_the_same_clip(shared_data, tmp_path):
  crlf_path = _ntu_dir(shared_data) / "S001C001P001R001A011.skeleton"
  lf_path = tmp_path / crlf_path.name
  lf_path.write_bytes(crlf_path.read_bytes().replace(b"\r\n", b"\n"))
  crlf, lf = ntu.read_skeleton(crlf_path), ntu.read_skeleton(lf_path)
  np.testing.assert_array_equal(crlf.skeleton, lf.skeleton)
  assert crlf.meta == lf.meta


def test_a_utf8_byte_order_mark_is_accepted(shared_data, tmp_path):
  # Windows editors write one at the start of a file they save.
  path = _ntu_dir(shared_data) / "S001C001P001R001A011.skeleton"
  bom_path = tmp_path / path.name
  bom_path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
  np.testing.assert_array_equal(ntu.read_skeleton(bom_path).skeleton, ntu.read_skeleton(path).skeleton)


def test_missing_skeleton_lists(shared_data):
  matlab = shared_data / "ntu_rgbd" / "Matlab"
  ntu60 = ntu.read_missing_list(matlab / "NTU_RGBD_samples_with_missing_skeletons.txt")
  ntu120 = ntu.read_missing_list(matlab / "NTU_RGBD120_samples_with_missing_skeletons.txt")
  assert (len(ntu60), len(ntu120)) == (302, 535)
  assert "S001C002P005R002A008" in ntu60 and "S001C002P005R002A008" in ntu120
  assert not ntu60 & set(REAL_FILES) and not ntu120 & set(REAL_FILES)


def test_missing_list_bad_name(tmp_path):
  path = tmp_path / "missing.txt"
  path.write_text("header\ninstructions\n\nS001C002P005R002A008\nnot-a-name\n")
  with pytest.raises(SkeletonFormatError) as e:
    ntu.read_missing_list(path)
  assert e.value.line == 5 and str(path) in str(e.value)


@pytest.mark.parametrize(
  "name, protocol, training",
  [
    ("S001C001P001R001A001", "xsub", True),
    ("S001C001P003R001A001", "xsub", False),
    ("S001C001P038R001A001", "xsub", True),
    ("S001C001P045R001A001", "xsub", False),  # an NTU-120 training subject, not NTU-60's
    ("S001C001P001R001A001", "xview", False),
    ("S001C002P001R001A001", "xview", True),
    ("S001C003P001R001A001", "xview", True),
    ("S018C001P045R001A061", "xsub120", True),
    ("S018C001P103R001A061", "xsub120", True),
    ("S018C001P104R001A061", "xsub120", False),
    ("S001C001P003R001A001", "xsub120", False),
    ("S001C001P001R001A001", "xset", False),
    ("S002C001P001R001A001", "xset", True),
    ("S032C001P001R001A120", "xset", True),
  ],
)
def test_protocols(name, protocol, training):
  assert ntu.is_training(ntu.parse_name(name), protocol) is training


def test_parse_name():
  assert ntu.parse_name("dir/S017C003P020R002A060.skeleton") == dict(
    setup=17, camera=3, subject=20, replication=2, action=60
  )
  with pytest.raises(SkeletonFormatError):
    ntu.parse_name("S1C1P1R1A1")
  with pytest.raises(ValueError, match="protocol"):
    ntu.is_training(ntu.parse_name("S001C001P001R001A001"), "xsetup")


def test_class_names():
  assert len(ntu.NTU60_CLASSES) == 60 and len(ntu.NTU120_CLASSES) == 120
  assert ntu.NTU120_CLASSES[:60] == ntu.NTU60_CLASSES
  assert len(set(ntu.NTU120_CLASSES)) == 120
  # SOURCE.md / the official list, 1-based action ids.
  assert ntu.NTU60_CLASSES[1 - 1] == "drink water"
  assert ntu.NTU60_CLASSES[24 - 1] == "kicking something"
  assert ntu.NTU60_CLASSES[58 - 1] == "handshaking"
  assert ntu.NTU60_CLASSES[60 - 1] == "walking apart from each other"
  assert ntu.NTU120_CLASSES[61 - 1] == "put on headphone"
  assert ntu.NTU120_CLASSES[120 - 1] == "finger-guessing game (playing rock-paper-scissors)"


# ---------------------------------------------------------------------------------------------
# Files built here. Line numbers: 1 = frame count; frame 1: 2 = body count, then per body an info
# line, a joint-count line and 25 joint lines.

NAME = "S002C003P004R001A010.skeleton"


def _upright(x0=0.0, t=0, amplitude=0.0):
  """A 25-joint body taller (y) than wide (x), its joints swinging by `amplitude` at time t."""
  v = np.arange(25)
  x = x0 + 0.01 * (v % 5) + amplitude * np.sin(0.7 * t + v)
  y = np.linspace(-0.8, 0.8, 25)
  z = np.full(25, 3.0)
  return np.stack([x, y, z], axis=-1)


def _wide(t=0):
  """A body much wider than tall (an object fitted with a skeleton), moving a lot."""
  x = np.linspace(-1.0, 1.0, 25) + 0.5 * np.sin(t)
  return np.stack([x, np.full(25, 0.05 * np.sin(t)), np.full(25, 3.5)], axis=-1)


def _ntu_text(frames, newline="\n"):
  """frames: a list per frame of (body_id, joints (25, 3)) pairs."""
  out = [str(len(frames))]
  for bodies in frames:
    out.append(str(len(bodies)))
    for body_id, joints in bodies:
      out += [f"{body_id} 0 1 1 1 1 0 0.02 0.05 2", "25"]
      rest = "277.4 191.8 1036.2 519.1 -0.2 0.05 0.96 -0.12 2"
      out += [f"{float(x)!r} {float(y)!r} {float(z)!r} {rest}" for x, y, z in joints]
  return newline.join(out) + newline


def _write(tmp_path, frames, name=NAME):
  path = tmp_path / name
  path.write_text(_ntu_text(frames))
  return path


def test_bodies_ranked_by_motion_and_extra_bodies_dropped(tmp_path):
  amplitudes = {11: 0.0, 12: 0.3, 13: 0.1}  # body id -> motion amplitude
  frames = [[(b, _upright(b, t, a)) for b, a in amplitudes.items()] for t in range(20)]
  path = _write(tmp_path, frames)

  clip = ntu.read_skeleton(path)  # 3 bodies, 2 expected: the two that move most, in order
  assert clip.skeleton.shape == (20, 2, 25, 3)
  for m, body in enumerate((12, 13)):
    expected = np.stack([_upright(body, t, amplitudes[body]) for t in range(20)])
    np.testing.assert_allclose(clip.skeleton[:, m], expected, rtol=1e-6)
  assert clip.meta["num_bodies_seen"] == 3 and clip.meta["num_bodies_kept"] == 2
  assert clip.label == 9 and clip.meta["subject"] == 4

  clip = ntu.read_skeleton(path, max_bodies=3)
  np.testing.assert_allclose(clip.skeleton[:, 2], np.stack([_upright(11)] * 20), rtol=1e-6)
  with pytest.raises(ValueError):
    ntu.read_skeleton(path, max_bodies=0)


def test_body_ids_beyond_float_precision_stay_distinct(tmp_path):
  # Real ids are ~7.2e16, where float64 cannot tell 72057594037932219 from ...220.
  frames = [[(72057594037932219, _upright(0, t, 0.1)), (72057594037932220, _upright(1, t, 0.2))]
            for t in range(15)]  # fmt: skip
  clip = ntu.read_skeleton(_write(tmp_path, frames))
  assert clip.meta["num_bodies_seen"] == 2
  assert clip.skeleton[:, 1].any(axis=(1, 2)).all()


def test_short_lived_body_is_noise(tmp_path):
  # Body 2 moves a lot but appears in only 5 frames (<= 11): tracker flicker, dropped.
  frames = [[(1, _upright(0, t, 0.05))] + ([(2, _upright(1, t, 0.5))] if t < 5 else [])
            for t in range(20)]  # fmt: skip
  clip = ntu.read_skeleton(_write(tmp_path, frames))
  np.testing.assert_allclose(clip.skeleton[:, 0], np.stack([_upright(0, t, 0.05) for t in range(20)]), rtol=1e-6)
  assert not clip.skeleton[:, 1].any()
  assert clip.meta["num_bodies_kept"] == 1


def test_wide_body_is_noise_but_never_the_only_one(tmp_path):
  frames = [[(1, _wide(t)), (2, _upright(0, t, 0.02))] for t in range(20)]
  clip = ntu.read_skeleton(_write(tmp_path, frames))
  np.testing.assert_allclose(clip.skeleton[:, 0], np.stack([_upright(0, t, 0.02) for t in range(20)]), rtol=1e-6)
  assert not clip.skeleton[:, 1].any()

  clip = ntu.read_skeleton(_write(tmp_path, [[(1, _wide(t))] for t in range(20)]))
  assert clip.skeleton[:, 0].any(axis=(1, 2)).all()


def test_short_clip_keeps_its_bodies(tmp_path):
  # Every body is in <= 11 frames because the clip is short: none is noise.
  frames = [[(1, _upright(0, t, 0.1)), (2, _upright(1, t, 0.2))] for t in range(8)]
  clip = ntu.read_skeleton(_write(tmp_path, frames))
  assert clip.skeleton[:, 1].any(axis=(1, 2)).all()


def test_frames_without_body_are_dropped_and_counted(tmp_path):
  frames = [[(1, _upright(0, t, 0.1))] if t % 2 == 0 else [] for t in range(5)]
  clip = ntu.read_skeleton(_write(tmp_path, frames))
  assert clip.meta["dropped_frames"] == 2
  np.testing.assert_allclose(clip.skeleton[:, 0], np.stack([_upright(0, t, 0.1) for t in (0, 2, 4)]), rtol=1e-6)


def test_frames_with_only_a_noise_body_are_dropped(tmp_path):
  frames = [[(1, _upright(0, t, 0.1))] if t < 15 else [(2, _wide(t))] for t in range(30)]
  clip = ntu.read_skeleton(_write(tmp_path, frames))
  assert clip.num_frames == 15 and clip.meta["dropped_frames"] == 15


def test_zero_length_clips(tmp_path):
  for text, line in (("0\n", 1), ("2\n0\n0\n", None)):
    path = tmp_path / NAME
    path.write_text(text)
    with pytest.raises(SkeletonFormatError) as e:
      ntu.read_skeleton(path)
    assert e.value.line == line and str(path) in str(e.value)


def test_truncated_file_names_the_last_line(tmp_path):
  lines = _ntu_text([[(1, _upright(0, t))] for t in range(3)]).splitlines()
  for keep in (1, 2, 3, 4, 17, 29, 30, 84):
    path = tmp_path / NAME
    path.write_text("\n".join(lines[:keep]) + "\n")
    with pytest.raises(SkeletonFormatError, match="end of file") as e:
      ntu.read_skeleton(path)
    assert e.value.line == keep
    assert str(e.value).startswith(f"{path}:{keep}: ")


@pytest.mark.parametrize(
  "line, replacement, message",
  [
    (4, "20", "unknown joint count 20"),  # e.g. a Kinect v1 body
    (3, "1 0 1 1 1 1 0 0.02 0.05", "10 numbers"),
    (3, "id 0 1 1 1 1 0 0.02 0.05 2", "integer body id"),
    (39, "0.1 0.2 nan 1 1 1 1 1 1 1 1 2", "NaN/Inf"),
    (39, "0.1 inf 3.0 1 1 1 1 1 1 1 1 2", "NaN/Inf"),
    (39, "1e39 0.2 3.0 1 1 1 1 1 1 1 1 2", "beyond float32"),
    (39, "0.1 0.2 3.0 1 1 1 1 1 1 1 2", "12 numbers"),
    (39, "0.1 0.2 x3.0 1 1 1 1 1 1 1 1 2", "numbers x y z"),
    (30, "one", "number of bodies in frame 2"),
    (30, "", "number of bodies in frame 2"),
    (1, "-3", "number of frames"),
  ],
)
def test_malformed_line(tmp_path, line, replacement, message):
  lines = _ntu_text([[(1, _upright(0, t))] for t in range(2)]).splitlines()
  lines[line - 1] = replacement
  path = tmp_path / NAME
  path.write_text("\r\n".join(lines) + "\r\n")
  with pytest.raises(SkeletonFormatError, match=message) as e:
    ntu.read_skeleton(path)
  assert e.value.line == line and e.value.path == str(path)


def test_repeated_body_id_in_a_frame(tmp_path):
  path = _write(tmp_path, [[(7, _upright(0)), (7, _upright(1))]])
  with pytest.raises(SkeletonFormatError, match="appears twice") as e:
    ntu.read_skeleton(path)
  assert e.value.line == 30


def test_text_after_the_last_frame(tmp_path):
  text = _ntu_text([[(1, _upright(0))]])
  path = tmp_path / NAME
  path.write_text(text + "\n  \n")  # blank lines at the end are fine
  assert ntu.read_skeleton(path).num_frames == 1
  path.write_text(text + "\n1\n")
  with pytest.raises(SkeletonFormatError, match="end of the file") as e:
    ntu.read_skeleton(path)
  assert e.value.line == 31


def test_other_names_and_unreadable_files(tmp_path):
  path = _write(tmp_path, [[(1, _upright(0))]], name="my_recording.skeleton")
  clip = ntu.read_skeleton(path)
  assert clip.label == -1 and clip.name == "my_recording" and "subject" not in clip.meta
  with pytest.raises(SkeletonFormatError, match="cannot read"):
    ntu.read_skeleton(tmp_path / "absent.skeleton")
  path.write_bytes(b"1\n1\n\xff\xfe\n")
  with pytest.raises(SkeletonFormatError, match="not a text file"):
    ntu.read_skeleton(path)


# --- Fragments: the tracker gives one actor a new body id mid-clip ----------------------------------


def _fragments(second_starts_at=20):
  """Actor A (id 1, x 0) in all 40 frames; actor B tracked as id 2 (frames 0-19), then id 3 (from
  `second_starts_at`); both move, A most."""
  frames = []
  for t in range(40):
    bodies = [(1, _upright(0, t, 0.2))]
    if t < 20:
      bodies.append((2, _upright(1, t, 0.1)))
    if t >= second_starts_at:
      bodies.append((3, _upright(1, t, 0.1)))
    frames.append(bodies)
  return frames


def test_fragments_of_one_actor_are_joined(tmp_path):
  clip = ntu.read_skeleton(_write(tmp_path, _fragments()))
  assert clip.num_frames == 40
  np.testing.assert_allclose(clip.skeleton[:, 0], np.stack([_upright(0, t, 0.2) for t in range(40)]), rtol=1e-6)
  # One person B in every frame, from id 2 then id 3: not two half-empty persons.
  np.testing.assert_allclose(clip.skeleton[:, 1], np.stack([_upright(1, t, 0.1) for t in range(40)]), rtol=1e-6)
  assert clip.meta["body_rules"] == {"length": 0, "spread": 0, "joined": 1, "extra": 0}
  assert clip.meta["num_bodies_seen"] == 3 and clip.meta["num_bodies_kept"] == 3


def test_fragments_sharing_a_frame_are_not_joined(tmp_path):
  # Id 3 starts at frame 19, where id 2 still is: two bodies at once cannot be one actor.
  clip = ntu.read_skeleton(_write(tmp_path, _fragments(second_starts_at=19)))
  assert clip.meta["body_rules"] == {"length": 0, "spread": 0, "joined": 0, "extra": 1}
  assert clip.skeleton[:20, 1].any(axis=(1, 2)).all() and not clip.skeleton[20:, 1].any()


def test_body_rules_are_counted(tmp_path):
  frames = [[(1, _upright(0, t, 0.1)), (2, _wide(t))] + ([(3, _upright(1, t, 0.5))] if t < 5 else [])
            for t in range(20)]  # fmt: skip
  clip = ntu.read_skeleton(_write(tmp_path, frames))
  assert clip.meta["body_rules"] == {"length": 1, "spread": 1, "joined": 0, "extra": 0}
