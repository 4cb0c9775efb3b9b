"""ST-GCN `.npy`/`.pkl` arrays and the custom `.npz` format: layout, trimming, bad input.

References are naive index loops over the arrays written here.
"""

import pickle

import numpy as np
import pytest

from slnl_jax.data import arrays
from slnl_jax.data.errors import SkeletonFormatError

N, C, T, V, M = 3, 3, 6, 4, 2
VALID = (6, 4, 2)  # valid frames per row; rows are zero-padded at the end after them


def _stgcn_data(seed=0):
  data = np.random.default_rng(seed).normal(size=(N, C, T, V, M)).astype(np.float32)
  for i, valid in enumerate(VALID):
    data[i, :, valid:] = 0.0
  data[1, :, 1] = 0.0  # a zero frame inside a clip is kept
  return data


def _naive_tmvc(row):
  """(C, T, V, M) -> (T, M, V, C) by explicit loops."""
  out = np.zeros((row.shape[1], row.shape[3], row.shape[2], row.shape[0]), row.dtype)
  for c in range(row.shape[0]):
    for t in range(row.shape[1]):
      for v in range(row.shape[2]):
        for m in range(row.shape[3]):
          out[t, m, v, c] = row[c, t, v, m]
  return out


def _write_stgcn(tmp_path, data, names=("a", "b", "c"), labels=(4, 0, 7)):
  data_path, label_path = tmp_path / "train_data.npy", tmp_path / "train_label.pkl"
  np.save(data_path, data)
  with open(label_path, "wb") as f:
    pickle.dump((list(names), list(labels)), f)
  return data_path, label_path


def test_read_stgcn_memory_maps(tmp_path):
  data = _stgcn_data()
  data_path, label_path = _write_stgcn(tmp_path, data)
  mapped, labels, names = arrays.read_stgcn(data_path, label_path)
  assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
  np.testing.assert_array_equal(mapped, data)
  assert labels.tolist() == [4, 0, 7] and labels.dtype == np.int64 and names == ["a", "b", "c"]
  loaded, _, _ = arrays.read_stgcn(data_path, label_path, mmap=False)
  assert not isinstance(loaded, np.memmap)


def test_iter_clips_stgcn_layout_and_trimming(tmp_path):
  data = _stgcn_data()
  clips = list(arrays.iter_clips(*_write_stgcn(tmp_path, data)))
  assert [c.name for c in clips] == ["a", "b", "c"] and [c.label for c in clips] == [4, 0, 7]
  for i, clip in enumerate(clips):
    assert clip.skeleton.dtype == np.float32 and clip.meta == {"index": i}
    np.testing.assert_array_equal(clip.skeleton, _naive_tmvc(data[i])[: VALID[i]])


def test_python2_label_pickle(tmp_path):
  data_path, label_path = _write_stgcn(tmp_path, _stgcn_data())
  # A protocol-2 pickle of Python 2 byte strings, as old releases have: loaded as latin-1.
  label_path.write_bytes(b"\x80\x02]q\x00(]q\x01(U\x01aq\x02U\x01bq\x03U\x01cq\x04e]q\x05(K\x04K\x00K\x07ee.")
  _, labels, names = arrays.read_stgcn(data_path, label_path)
  assert names == ["a", "b", "c"] and labels.tolist() == [4, 0, 7]


def _write_npz(tmp_path, name="custom.npz", **content):
  path = tmp_path / name
  np.savez(path, **content)
  return path


def test_custom_npz(tmp_path):
  skeleton = np.transpose(_stgcn_data(), (0, 2, 4, 3, 1))  # (N, T, M, V, C)
  path = _write_npz(
    tmp_path,
    skeleton=skeleton,
    label=np.array([2, 0, 1]),
    num_frames=np.array([3, 4, 1]),
    class_names=np.array(["wave", "clap", "kick"]),
    names=np.array(["x", "y", "z"]),
  )
  content = arrays.read_npz(path)
  assert content["class_names"] == ("wave", "clap", "kick")
  assert content["num_frames"].tolist() == [3, 4, 1] and content["names"] == ["x", "y", "z"]
  clips = list(arrays.iter_clips(path))
  assert [c.num_frames for c in clips] == [3, 4, 1]  # num_frames wins over trimming
  assert [c.name for c in clips] == ["x", "y", "z"] and [c.label for c in clips] == [2, 0, 1]
  np.testing.assert_array_equal(clips[0].skeleton, skeleton[0, :3])

  path = _write_npz(tmp_path, skeleton=skeleton, label=np.array([2, 0, 1]))
  clips = list(arrays.iter_clips(path))
  assert [c.num_frames for c in clips] == list(VALID)
  assert [c.name for c in clips] == ["custom_0", "custom_1", "custom_2"]
  assert set(arrays.read_npz(path)) == {"skeleton", "label"}


def test_bad_rows_raise_or_go_to_onerror(tmp_path):
  data = _stgcn_data()
  data[0, 1, 2, 3, 0] = np.nan
  data[2] = 0.0  # a zero-length clip
  data_path, label_path = _write_stgcn(tmp_path, data)
  with pytest.raises(SkeletonFormatError, match="a: NaN/Inf") as e:
    list(arrays.iter_clips(data_path, label_path))
  assert str(data_path) in str(e.value)
  errors = []
  clips = list(arrays.iter_clips(data_path, label_path, onerror=errors.append))
  assert [c.name for c in clips] == ["b"]
  assert [(e.path, e.reason.split(":")[0]) for e in errors] == [(str(data_path), "a"), (str(data_path), "c")]
  assert "zero-length" in errors[1].reason


Z, L = np.zeros((3, 2, 1, 4, 3)), np.zeros(3, int)  # a valid skeleton (N, T, M, V, C) and labels


@pytest.mark.parametrize(
  "content, message",
  [
    (dict(label=np.zeros(3, int)), "missing \\['skeleton'\\]"),
    (dict(skeleton=Z, label=L, labels=np.zeros(3)), "unknown \\['labels'\\]"),
    (dict(skeleton=np.zeros((3, 2, 4, 3)), label=np.zeros(3, int)), r"\(N, T, M, V, C\)"),
    (dict(skeleton=np.zeros((3, 0, 1, 4, 3)), label=np.zeros(3, int)), "non-empty"),
    (dict(skeleton=Z, label=np.zeros(2, int)), "3 integers"),
    (dict(skeleton=Z, label=np.zeros(3)), "3 integers"),
    (dict(skeleton=Z, label=np.array([0, -1, 0])), "negative"),
    (dict(skeleton=Z, label=L, num_frames=np.array([1, 3, 1])), r"\[1, 2\]"),
    (dict(skeleton=Z, label=np.array([0, 1, 2]), class_names=np.array(["a", "b"])), "out of range"),
    (dict(skeleton=Z, label=L, names=np.array(["a"])), "3 names"),
    (dict(skeleton=Z, label=L, names=np.array([1, 2, 3])), "strings"),
    (dict(skeleton=np.array([[["a"]]] * 3, dtype=object), label=L), "Object arrays"),
  ],
)
def test_malformed_npz(tmp_path, content, message):
  path = _write_npz(tmp_path, **content)
  with pytest.raises(SkeletonFormatError, match=message) as e:
    arrays.read_npz(path)
  assert str(path) in str(e.value)


def test_malformed_stgcn(tmp_path):
  data_path, label_path = _write_stgcn(tmp_path, _stgcn_data())
  with open(label_path, "wb") as f:
    pickle.dump((["a", "b"], [0, 1]), f)
  with pytest.raises(SkeletonFormatError, match="3 sample names"):
    arrays.read_stgcn(data_path, label_path)
  with open(label_path, "wb") as f:
    pickle.dump({"names": ["a", "b", "c"]}, f)
  with pytest.raises(SkeletonFormatError, match="pair"):
    arrays.read_stgcn(data_path, label_path)
  label_path.write_bytes(b"not a pickle")
  with pytest.raises(SkeletonFormatError, match="pickle") as e:
    arrays.read_stgcn(data_path, label_path)
  assert e.value.path == str(label_path)
  np.save(data_path, np.zeros((3, 3, 6, 4)))
  with pytest.raises(SkeletonFormatError, match=r"\(N, C, T, V, M\)"):
    arrays.read_stgcn(data_path, label_path)
  with pytest.raises(ValueError, match="label_path"):
    next(arrays.iter_clips(data_path))
