"""The synthetic demo generator writes files the real NTU reader accepts, with learnable classes."""

import pathlib

import numpy as np
import pytest

from slnl_jax.data import ntu, synthetic


def _count_lines(path: pathlib.Path) -> dict[str, int]:
  """Frame/body counts from the raw text, by the number of fields on each line (NTU layout)."""
  lines = path.read_bytes().decode("ascii").split("\r\n")
  assert lines[-1] == ""  # CRLF after the last line, as in the original release
  widths = [len(line.split()) for line in lines[:-1]]
  one_field = [line for line, w in zip(lines, widths, strict=False) if w == 1]
  return {
    "frames": int(lines[0]),
    "empty_frames": one_field[1:].count("0"),
    "body_lines": widths.count(10),
    "joint_lines": widths.count(12),
    "total": len(widths),
  }


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory) -> list[pathlib.Path]:
  return synthetic.write_dataset(tmp_path_factory.mktemp("synthetic"), num_clips=64, seed=1)


def test_files_parse_with_the_ntu_reader_and_counts_match_the_text(demo_set):
  for path in demo_set:
    counts = _count_lines(path)
    clip = ntu.read_skeleton(path)
    meta = ntu.parse_name(path.name)
    persons = 2 if meta["action"] in synthetic.TWO_PERSON_ACTIONS else 1
    shown = counts["frames"] - counts["empty_frames"]
    assert counts["body_lines"] == persons * shown
    assert counts["joint_lines"] == 25 * counts["body_lines"]
    assert counts["total"] == 1 + counts["frames"] + 27 * counts["body_lines"]
    assert clip.skeleton.shape == (shown, 2, 25, 3)
    assert clip.meta["dropped_frames"] == counts["empty_frames"]
    assert clip.meta["num_bodies_kept"] == persons
    assert clip.label == meta["action"] - 1
    if persons == 1:
      np.testing.assert_array_equal(clip.skeleton[:, 1], 0.0)
  # Some clips lose their bodies for a few frames; some are two-person clips.
  assert any(_count_lines(p)["empty_frames"] for p in demo_set)
  assert 40 <= min(_count_lines(p)["frames"] for p in demo_set)
  assert max(_count_lines(p)["frames"] for p in demo_set) <= 100


def test_reader_recovers_the_generated_coordinates(tmp_path):
  rng = np.random.default_rng(0)
  for action in (1, 8):  # one- and two-person
    sample = synthetic.make_sample(rng, action=action, setup=2, camera=3, subject=7, replication=1, num_frames=30)
    path = tmp_path / f"{sample.name}.skeleton"
    synthetic.write_skeleton(path, sample, rng)
    clip = ntu.read_skeleton(path)
    written = sample.joints[sample.present]  # (T', B, 25, 3)
    assert clip.num_frames == int(sample.present.sum())
    # Persons may come back in either order (the reader ranks them by motion); 7 digits written.
    read = sorted(clip.skeleton[:, : sample.num_bodies].swapaxes(0, 1), key=lambda a: a.sum())
    expected = sorted(written.swapaxes(0, 1), key=lambda a: a.sum())
    for got, want in zip(read, expected, strict=True):
      np.testing.assert_allclose(got, want, atol=1e-5)


def test_class_balance_names_and_protocol_ids(demo_set):
  metas = [ntu.parse_name(p.name) for p in demo_set]
  assert len({p.name for p in demo_set}) == 64
  counts = np.bincount([m["action"] for m in metas], minlength=len(synthetic.CLASSES) + 1)
  np.testing.assert_array_equal(counts[1:], 64 // len(synthetic.CLASSES))
  assert {m["camera"] for m in metas} == {1, 2, 3}
  assert all(1 <= m["subject"] <= 40 for m in metas)
  # NTU's cross-subject split applies: both sides are populated.
  train = [ntu.is_training(m, "xsub") for m in metas]
  assert 0 < sum(train) < len(train)


def test_bone_lengths_are_fixed_per_performer(tmp_path):
  """Same performer -> same body size in every clip; another performer differs."""
  upper_arm = {}
  for action, subject in ((1, 5), (3, 5), (6, 5), (1, 6)):
    sample = synthetic.make_sample(
      np.random.default_rng(action),
      action=action,
      setup=1,
      camera=1,
      subject=subject,
      replication=1,
      num_frames=20,
      noise=0.0,
    )
    length = np.linalg.norm(sample.joints[:, 0, 5] - sample.joints[:, 0, 4], axis=-1)
    np.testing.assert_allclose(length, length[0], rtol=1e-9)  # a rigid bone
    upper_arm[action, subject] = length[0]
  assert upper_arm[1, 5] == pytest.approx(upper_arm[3, 5]) == pytest.approx(upper_arm[6, 5])
  assert abs(upper_arm[1, 5] - upper_arm[1, 6]) > 0.01


def test_actions_are_distinguishable(demo_set):
  """Leave-one-out nearest class mean on view-invariant motion features beats chance by far."""

  def features(clip):
    parts = []
    for m in range(2):
      body = clip.skeleton[:, m]
      relative = body - body[:, :1]  # joints relative to the spine base
      parts.append(np.sqrt(relative.var(axis=0).sum(-1)))  # per-joint motion, rotation invariant
      parts.append([np.sqrt(body[:, 0].var(axis=0).sum())])  # whole-body displacement
    return np.concatenate(parts)

  clips = [ntu.read_skeleton(p) for p in demo_set]
  x = np.stack([features(c) for c in clips])
  y = np.array([c.label for c in clips])
  hits = 0
  for i in range(len(y)):
    rest = np.arange(len(y)) != i
    means = np.stack([x[rest & (y == k)].mean(0) for k in range(len(synthetic.CLASSES))])
    hits += int(np.argmin(((means - x[i]) ** 2).sum(1)) == y[i])
  assert hits / len(y) >= 0.9  # chance is 1/8


def test_deterministic_for_a_seed(tmp_path):
  first = synthetic.write_dataset(tmp_path / "a", num_clips=9, seed=3)
  second = synthetic.write_dataset(tmp_path / "b", num_clips=9, seed=3)
  other = synthetic.write_dataset(tmp_path / "c", num_clips=9, seed=4)
  assert [p.name for p in first] == [p.name for p in second]
  assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second, strict=True))
  assert [p.read_bytes() for p in first] != [p.read_bytes() for p in other]


def test_rejects_bad_arguments(tmp_path):
  with pytest.raises(ValueError, match="num_clips"):
    synthetic.write_dataset(tmp_path, num_clips=0, seed=0)
  with pytest.raises(ValueError, match="min_frames"):
    synthetic.write_dataset(tmp_path, num_clips=1, seed=0, min_frames=50, max_frames=40)
  with pytest.raises(ValueError, match="action"):
    synthetic.make_sample(
      np.random.default_rng(0),
      action=9,
      setup=1,
      camera=1,
      subject=1,
      replication=1,
      num_frames=10,
    )
