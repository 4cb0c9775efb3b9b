"""`read_file` dispatch, `matching_files`, and property-based tests: garbled input to every reader gives a valid
clip or `SkeletonFormatError`, never any other exception."""

import json
import pickle

import hypothesis
import numpy as np
import pytest
from hypothesis import strategies as st

from slnl_jax.data import arrays, kinetics, msr_action3d, ntu, readers
from slnl_jax.data.clip import Clip
from slnl_jax.data.errors import SkeletonFormatError

FUZZ = hypothesis.settings(max_examples=60, deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------------
# Dispatch.


def test_read_file_dispatches_real_files(shared_data):
  ntu_path = shared_data / "ntu_rgbd" / "nturgb+d_skeletons" / "S001C001P001R001A058.skeleton"
  kin_path = shared_data / "kinetics_skeleton" / "kinetics-skeleton" / "kinetics_val_old" / "__vzEs2wzdQ.json"
  msr_path = shared_data / "msr_action3d" / "MSRAction3DSkeletonReal3D" / "a05_s01_e02_skeleton3D.txt"
  for path, reader, shape in (
    (ntu_path, ntu.read_skeleton, (71, 2, 25, 3)),  # SOURCE.md frame counts
    (kin_path, kinetics.read_clip, (164, 2, 18, 3)),
    (msr_path, msr_action3d.read_sequence, (msr_path.read_text().count("\n") // 20, 1, 20, 3)),
  ):
    clip, direct = readers.read_file(path), reader(path)
    assert clip.skeleton.shape == shape
    np.testing.assert_array_equal(clip.skeleton, direct.skeleton)
    assert (clip.label, clip.meta) == (direct.label, direct.meta)


def test_read_file_single_array_clips(tmp_path):
  skeleton = np.random.default_rng(0).normal(size=(5, 2, 7, 4))
  skeleton[3:] = 0.0  # padding
  np.save(tmp_path / "clip.npy", skeleton)
  clip = readers.read_file(tmp_path / "clip.npy")
  np.testing.assert_array_equal(clip.skeleton, skeleton[:3].astype(np.float32))
  assert (clip.label, clip.name) == (-1, "clip")

  np.savez(tmp_path / "clip.npz", skeleton=skeleton, label=np.int64(4), num_frames=np.int64(2))
  clip = readers.read_file(tmp_path / "clip.npz")
  assert clip.label == 4 and clip.skeleton.shape == (2, 2, 7, 4)


@pytest.mark.parametrize(
  "name, write, message",
  [
    ("clip.csv", lambda p: p.write_text("1,2,3\n"), "unknown file type"),
    ("clip.npy", lambda p: np.save(p, np.zeros((2, 3, 4))), r"\(T, M, V, C\)"),
    ("clip.npy", lambda p: np.save(p, np.zeros((2, 1, 3, 4))), "zero-length"),
    ("clip.npy", lambda p: np.save(p, np.full((2, 1, 3, 4), np.inf)), "NaN/Inf"),
    ("clip.npy", lambda p: p.write_bytes(b"\x93NUMPY garbage"), "numpy file"),
    ("clip.npz", lambda p: np.savez(p, data=np.ones((2, 1, 3, 4))), "keys"),
    ("clip.npz", lambda p: np.savez(p, skeleton=np.ones((2, 1, 3, 4)), label=np.ones(2, int)), "scalar"),
    ("clip.npz", lambda p: np.savez(p, skeleton=np.ones((2, 1, 3, 4)), num_frames=np.int64(3)), r"\[1, 2\]"),
    ("clip.npz", lambda p: p.write_bytes(np.ones(3).tobytes()), "numpy file"),
  ],
)
def test_read_file_bad_input(tmp_path, name, write, message):
  path = tmp_path / name
  write(path)
  with pytest.raises(SkeletonFormatError, match=message) as e:
    readers.read_file(path)
  assert str(path) in str(e.value)


def test_matching_files_sorted_once_each_and_recursive(tmp_path):
  for name in ("b.npy", "a.npy", "sub/c.npy", "sub/deeper/d.npy", "e.txt"):
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_bytes(b"")
  found = readers.matching_files([str(tmp_path / "*.npy"), str(tmp_path / "a.npy"), str(tmp_path / "**" / "d.npy")])
  assert found == [str(tmp_path / n) for n in ("a.npy", "b.npy", "sub/deeper/d.npy")]  # a.npy once, e.txt never
  with pytest.raises(SkeletonFormatError, match=r"none\*\.npy,x: no file matches --input"):
    readers.matching_files([str(tmp_path / "none*.npy"), "x"])


# ---------------------------------------------------------------------------------------------
# Property-based tests. Each writes what hypothesis draws into one file of a module-wide folder.


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  return tmp_path_factory.mktemp("fuzz")


def _check(read, path) -> None:
  """`read(path)` returns a well-formed Clip or raises SkeletonFormatError naming `path`."""
  try:
    clip = read(path)
  except SkeletonFormatError as e:
    assert e.path == str(path)
    return
  assert isinstance(clip, Clip)
  assert clip.skeleton.dtype == np.float32 and clip.skeleton.ndim == 4
  assert clip.skeleton.shape[0] >= 1 and np.isfinite(clip.skeleton).all()
  assert isinstance(clip.label, int)


def _mutate(data, text):
  """A random edit of valid `text`: cut it, or drop, duplicate or replace a line or a character."""
  lines = text.split("\n")
  i = data.draw(st.integers(0, len(lines) - 1))
  edit = data.draw(st.sampled_from(["cut", "drop", "duplicate", "line", "char"]))
  if edit == "cut":
    return text[: data.draw(st.integers(0, len(text)))]
  if edit == "drop":
    del lines[i]
  elif edit == "duplicate":
    lines.insert(i, lines[i])
  elif edit == "line":
    lines[i] = data.draw(st.text(max_size=40))
  else:
    j = data.draw(st.integers(0, max(len(lines[i]) - 1, 0)))
    lines[i] = lines[i][:j] + data.draw(st.characters()) + lines[i][j + 1 :]
  return "\n".join(lines)


def _valid_ntu(num_frames=3):
  out = [str(num_frames)]
  for t in range(num_frames):
    out += ["2"]
    for body in (1, 2):
      out += [f"{body} 0 1 1 1 1 0 0.02 0.05 2", "25"]
      out += [f"{0.1 * v + t} {0.05 * v} {3 + body} 1 1 1 1 0 0 0 1 2" for v in range(25)]
  return "\n".join(out) + "\n"


def _valid_msr(num_frames=3):
  return "".join(f"{0.1 * j} {0.2 * t} 2.5 1\n" for t in range(num_frames) for j in range(20))


@FUZZ
@hypothesis.given(data=st.data())
def test_fuzz_ntu(folder, data):
  text = data.draw(st.one_of(st.text(max_size=200), st.builds(_mutate, st.just(data), st.just(_valid_ntu()))))
  path = folder / "S001C001P001R001A001.skeleton"
  path.write_text(text, encoding="utf-8", errors="surrogatepass")
  _check(readers.read_file, path)


@FUZZ
@hypothesis.given(data=st.data())
def test_fuzz_msr(folder, data):
  text = data.draw(st.one_of(st.text(max_size=200), st.builds(_mutate, st.just(data), st.just(_valid_msr()))))
  path = folder / "a01_s01_e01_skeleton3D.txt"
  path.write_text(text, encoding="utf-8", errors="surrogatepass")
  _check(readers.read_file, path)


@FUZZ
@hypothesis.given(raw=st.binary(max_size=300), suffix=st.sampled_from([".skeleton", "_skeleton3D.txt", ".json"]))
def test_fuzz_bytes_to_text_readers(folder, raw, suffix):
  path = folder / f"clip{suffix}"
  path.write_bytes(raw)
  _check(readers.read_file, path)


JSON_VALUES = st.recursive(
  st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
  lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
  max_leaves=20,
)
NUMBER = st.one_of(st.floats(), st.integers(-(10**400), 10**400), st.booleans(), st.none(), st.text(max_size=3))
PERSON = st.fixed_dictionaries(
  {
    "pose": st.one_of(st.lists(st.floats(0, 1), min_size=36, max_size=36), st.lists(NUMBER, max_size=40)),
    "score": st.one_of(st.lists(st.floats(0, 1.2), min_size=18, max_size=18), st.lists(NUMBER, max_size=20)),
  }
)
FRAME = st.fixed_dictionaries(
  {
    "frame_index": st.one_of(st.integers(1, 400), st.integers(), st.booleans(), st.floats(), st.none()),
    "skeleton": st.one_of(st.lists(PERSON, min_size=1, max_size=4), JSON_VALUES),
  }
)
CLIP = st.fixed_dictionaries(
  {"data": st.one_of(st.lists(FRAME, min_size=1, max_size=5, unique_by=lambda f: str(f["frame_index"])), JSON_VALUES)},
  optional={"label_index": st.one_of(st.integers(0, 400), JSON_VALUES), "label": JSON_VALUES},
)


@FUZZ
@hypothesis.given(video=CLIP)
def test_fuzz_kinetics_json(folder, video):
  path = folder / "clip.json"
  path.write_text(json.dumps(video))  # NaN / Infinity / huge integers included
  _check(readers.read_file, path)


@FUZZ
@hypothesis.given(data=st.data())
def test_fuzz_kinetics_text(folder, data):
  valid = json.dumps({"data": [{"frame_index": 1, "skeleton": [{"pose": [0.5] * 36, "score": [0.9] * 18}]}]})
  text = data.draw(st.one_of(st.text(max_size=200), st.builds(_mutate, st.just(data), st.just(valid))))
  path = folder / "clip.json"
  path.write_text(text, encoding="utf-8", errors="surrogatepass")
  _check(readers.read_file, path)


def test_deeply_nested_json(folder):
  path = folder / "clip.json"
  path.write_text("[" * 100_000 + "]" * 100_000)
  _check(readers.read_file, path)


def _check_error_only(read, path):
  try:
    read(path)
  except SkeletonFormatError as e:
    assert e.path == str(path)


@FUZZ
@hypothesis.given(entries=st.one_of(st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=4), JSON_VALUES))
def test_fuzz_kinetics_label_file(folder, entries):
  path = folder / "kinetics_val_label.json"
  path.write_text(json.dumps(entries))
  _check_error_only(kinetics.read_labels, path)


@FUZZ
@hypothesis.given(
  text=st.text(max_size=200), reader=st.sampled_from([kinetics.read_class_names, ntu.read_missing_list])
)
def test_fuzz_name_lists(folder, text, reader):
  path = folder / "names.txt"
  path.write_text(text, encoding="utf-8", errors="surrogatepass")
  _check_error_only(reader, path)


def _corrupt(data, raw):
  """`raw` with 0-4 random bytes overwritten: exercises the zip and .npy parsers."""
  for _ in range(data.draw(st.integers(0, 4))):
    i = data.draw(st.integers(0, len(raw) - 1))
    raw = raw[:i] + bytes([data.draw(st.integers(0, 255))]) + raw[i + 1 :]
  return raw


def _saved_bytes(folder, name, **content):
  path = folder / name
  if content.keys() == {"array"}:
    np.save(path, content["array"])
  else:
    np.savez(path, **content)
  return path.read_bytes()


@FUZZ
@hypothesis.given(data=st.data(), suffix=st.sampled_from([".npy", ".npz"]))
def test_fuzz_single_clip_arrays(folder, data, suffix):
  if suffix == ".npy":
    valid = _saved_bytes(folder, "valid.npy", array=np.ones((3, 1, 4, 3)))
  else:
    valid = _saved_bytes(folder, "valid.npz", skeleton=np.ones((3, 1, 4, 3)), label=np.int64(1))
  raw = data.draw(st.one_of(st.builds(_corrupt, st.just(data), st.just(valid)), st.binary(max_size=300)))
  path = folder / f"clip{suffix}"
  path.write_bytes(raw)
  _check(readers.read_file, path)


@FUZZ
@hypothesis.given(data=st.data())
def test_fuzz_custom_npz(folder, data):
  valid = _saved_bytes(folder, "valid.npz", skeleton=np.ones((2, 3, 1, 4, 3)), label=np.array([0, 1]))
  path = folder / "split.npz"
  path.write_bytes(_corrupt(data, valid))
  errors = []
  try:
    for clip in arrays.iter_clips(path, onerror=errors.append):
      assert np.isfinite(clip.skeleton).all() and clip.num_frames >= 1
  except SkeletonFormatError as e:
    assert e.path == str(path)
  assert all(isinstance(e, SkeletonFormatError) for e in errors)


@FUZZ
@hypothesis.given(content=st.one_of(st.binary(max_size=100), JSON_VALUES.map(pickle.dumps)))
def test_fuzz_stgcn_label_pickle(folder, content):
  data_path, label_path = folder / "data.npy", folder / "label.pkl"
  np.save(data_path, np.ones((2, 3, 4, 5, 1), np.float32))
  label_path.write_bytes(content)
  try:
    arrays.read_stgcn(data_path, label_path)
  except SkeletonFormatError as e:
    assert e.path == str(label_path)
