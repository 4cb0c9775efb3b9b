"""Label pickles are read without running code: only plain data (and numeric numpy, when asked) loads."""

import os
import pickle

import numpy as np
import pytest

from slnl_jax.data import arrays, safe_pickle
from slnl_jax.data.errors import SkeletonFormatError


class _RunsCode:
  """Unpickling this calls `os.system`-like code: a crafted label file."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (open, (self.marker, "w"))  # creates a file: proof that code ran


def test_a_crafted_label_file_runs_nothing(tmp_path):
  marker = tmp_path / "code_ran"
  data = np.ones((2, 3, 4, 5, 1), np.float32)
  np.save(tmp_path / "train_data.npy", data)
  label_path = tmp_path / "train_label.pkl"
  label_path.write_bytes(pickle.dumps((["a", "b"], [0, _RunsCode(str(marker))])))
  with pytest.raises(SkeletonFormatError, match=r"io\.open|builtins\.open") as e:
    arrays.read_stgcn(tmp_path / "train_data.npy", label_path)
  assert not marker.exists()
  assert e.value.path == str(label_path)
  assert "convert" in e.value.reason


@pytest.mark.parametrize(
  "payload",
  [
    (os.system, ("true",)),  # posix.system
    (eval, ("1",)),
    (getattr, (0, "real")),
  ],
)
def test_callables_are_refused(tmp_path, payload):
  class Reduce:
    def __reduce__(self):
      return payload

  path = tmp_path / "x.pkl"
  path.write_bytes(pickle.dumps([Reduce()]))
  for allow_numpy in (False, True):
    with pytest.raises(SkeletonFormatError, match="refused"):
      safe_pickle.load(path, allow_numpy=allow_numpy)


def test_plain_data_in_every_protocol(tmp_path):
  value = {"names": ["a", "ü"], "labels": (1, 2**70, -3), "x": 1.5, "b": b"\x00\xff", "none": None, "t": True}
  path = tmp_path / "x.pkl"
  for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
    path.write_bytes(pickle.dumps(value, protocol=protocol))
    assert safe_pickle.load(path) == value


def test_numpy_only_when_allowed_and_never_object_dtype(tmp_path):
  path = tmp_path / "x.pkl"
  value = {"keypoint": np.arange(24, dtype=np.float16).reshape(2, 3, 4), "label": np.int64(7), "s": np.str_("a")}
  for protocol in (2, pickle.HIGHEST_PROTOCOL):
    path.write_bytes(pickle.dumps(value, protocol=protocol))
    with pytest.raises(SkeletonFormatError, match="numpy"):
      safe_pickle.load(path)
    loaded = safe_pickle.load(path, allow_numpy=True)
    np.testing.assert_array_equal(loaded["keypoint"], value["keypoint"])
    assert loaded["keypoint"].dtype == np.float16 and loaded["label"] == 7 and loaded["s"] == "a"
    for bad in (np.array([1, "a"], dtype=object), np.zeros(2, dtype=[("a", "i4"), ("b", "O")])):
      path.write_bytes(pickle.dumps([bad], protocol=protocol))
      with pytest.raises(SkeletonFormatError, match="object"):
        safe_pickle.load(path, allow_numpy=True)
  path.write_bytes(pickle.dumps(np.ma.masked_array([1, 2]), protocol=2))  # an ndarray subclass
  with pytest.raises(SkeletonFormatError, match="refused"):
    safe_pickle.load(path, allow_numpy=True)


def test_python2_numpy_labels(tmp_path):
  # What ST-GCN's Kinetics gendata writes under Python 2: numpy int64 labels (numpy.core module path).
  raw = (
    b"\x80\x02]q\x00(]q\x01U\x01aq\x02a]q\x03cnumpy.core.multiarray\nscalar\nq\x04cnumpy\ndtype\nq\x05"
    b"U\x02i8K\x00K\x01\x87Rq\x06(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbU\x08"
    b"\x05\x00\x00\x00\x00\x00\x00\x00\x86Rq\x07ae."
  )
  path = tmp_path / "x.pkl"
  path.write_bytes(raw)
  assert safe_pickle.load(path, allow_numpy=True) == [["a"], [5]]
