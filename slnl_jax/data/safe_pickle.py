"""Reading pickles without running code: plain data only, and numeric numpy arrays when asked.

A pickle names Python callables (module + name) and calls them while it loads, so a crafted
`*_label.pkl` can run any code. This unpickler looks up no global except a short allow-list:

  always          `_codecs.encode(text, "latin1")`, which protocols 0-2 use for bytes (lists,
                  tuples, dicts, sets, str, int, float, bool and None are opcodes, not globals);
  allow_numpy     numpy arrays and scalars (`ndarray`, `dtype`, `_reconstruct`, `scalar`, `_frombuffer`) whose
                  dtype holds no Python objects.

Anything else (a class, a function, an object-dtype array) is refused with a `SkeletonFormatError`
naming the file, the refused global and how to convert the file. Python 2 pickles (byte strings)
are read as latin-1, as numpy and ST-GCN's loaders do.
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any

import numpy as np

from slnl_jax.data.errors import SkeletonFormatError

# numpy < 2 pickles name numpy.core, numpy >= 2 numpy._core.
_NUMPY_PACKAGES = ("numpy.core", "numpy._core")
# Real-number, string and date dtypes: neither Python objects nor structured (fields could hold objects).
_NUMPY_KINDS = "biufcSUmM"

_CONVERT = (
  "pickles can run code, so only plain lists, tuples, dicts, str and numbers are read{numpy}. If you trust "
  "the file, convert it once: python -c \"import pickle; v = pickle.load(open('IN', 'rb')); "
  "pickle.dump(<v as lists of str and int>, open('OUT', 'wb'))\""
)


class _Refused(pickle.UnpicklingError):
  pass


def _checked_dtype(dtype: Any) -> np.dtype:
  dtype = np.dtype(dtype)
  if dtype.kind not in _NUMPY_KINDS or dtype.hasobject:
    raise _Refused(f"a numpy array of dtype {dtype} (object or structured dtypes are refused)")
  return dtype


def _dtype(name: Any, align: bool = False, copy: bool = False) -> np.dtype:
  return np.dtype(_checked_dtype(name), align=bool(align), copy=bool(copy))


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
  if subtype is not np.ndarray:
    raise _Refused(f"an ndarray subclass {subtype!r}")
  return np.ndarray.__new__(np.ndarray, shape, _checked_dtype(dtype))


# numpy's own pickle helpers, wherever this numpy version keeps them.
_NUMPY_SCALAR = np.int64(0).__reduce__()[0]
_NUMPY_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]


def _scalar(dtype: Any, data: Any = None) -> np.generic:
  return _NUMPY_SCALAR(_checked_dtype(dtype), data)


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: str, axis_order: Any = None) -> np.ndarray:
  return _NUMPY_FROMBUFFER(buffer, _checked_dtype(dtype), shape, order, axis_order)


def _latin1(text: str, encoding: str = "utf-8") -> bytes:
  if encoding != "latin1" or not isinstance(text, str):
    raise _Refused(f"_codecs.encode with encoding {encoding!r}")
  return text.encode("latin1")


_NUMPY_GLOBALS = {
  **{(f"{package}.multiarray", "_reconstruct"): _reconstruct for package in _NUMPY_PACKAGES},
  **{(f"{package}.multiarray", "scalar"): _scalar for package in _NUMPY_PACKAGES},
  **{(f"{package}.numeric", "_frombuffer"): _frombuffer for package in _NUMPY_PACKAGES},  # protocol 5
  ("numpy", "ndarray"): np.ndarray,
  ("numpy", "dtype"): _dtype,
}


class _Unpickler(pickle.Unpickler):
  def __init__(self, file: io.BytesIO, *, allow_numpy: bool, **kwargs):
    super().__init__(file, **kwargs)
    self._allow_numpy = allow_numpy

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) == ("_codecs", "encode"):
      return _latin1
    if self._allow_numpy and (module, name) in _NUMPY_GLOBALS:
      return _NUMPY_GLOBALS[(module, name)]
    raise _Refused(f"the global {module}.{name}")

  def persistent_load(self, pid: Any) -> Any:
    raise _Refused(f"a persistent id {pid!r}")


def _check_arrays(value: Any) -> None:
  """Object arrays can also be built by BUILD on an allowed dtype; refuse them after loading too."""
  if isinstance(value, np.ndarray | np.generic):
    _checked_dtype(value.dtype)
  elif isinstance(value, list | tuple | set | frozenset):
    for item in value:
      _check_arrays(item)
  elif isinstance(value, dict):
    for key, item in value.items():
      _check_arrays(key)
      _check_arrays(item)


def loads(data: bytes, *, path: str | os.PathLike, allow_numpy: bool = False) -> Any:
  """Unpickles `data` (read from `path`, named in errors) without running code; see the module docstring."""

  def unpickle(**kwargs: Any) -> Any:
    value = _Unpickler(io.BytesIO(data), allow_numpy=allow_numpy, **kwargs).load()
    _check_arrays(value)
    return value

  try:
    try:
      return unpickle()
    except UnicodeDecodeError:  # written by Python 2: byte strings
      return unpickle(encoding="latin1")
  except _Refused as e:
    numpy = ", and numeric numpy arrays" if allow_numpy else ""
    raise SkeletonFormatError(path, f"refused to unpickle {e}: {_CONVERT.format(numpy=numpy)}") from None
  except RecursionError as e:
    raise SkeletonFormatError(path, "not a readable pickle: nested too deeply") from e
  # Unpickling garbage can raise almost any exception type.
  except Exception as e:
    raise SkeletonFormatError(path, f"not a readable pickle: {type(e).__name__}: {e}") from e


def load(path: str | os.PathLike, *, allow_numpy: bool = False) -> Any:
  """Unpickles the file at `path` without running code; see the module docstring.

  Raises:
    SkeletonFormatError: the file cannot be read, is not a pickle, or names a refused global.
  """
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise SkeletonFormatError(path, f"cannot read the file: {e.strerror}") from e
  return loads(data, path=path, allow_numpy=allow_numpy)
