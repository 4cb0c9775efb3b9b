"""Preprocessed skeleton arrays: the ST-GCN / PYSKL `.npy` + `.pkl` pair and a custom `.npz`.

ST-GCN arrays (what ST-GCN, 2s-AGCN, MS-G3D, CTR-GCN's generators write):
  `{train,val}_data.npy`   float array (N, C, T, V, M), clips zero-padded at the end to T frames;
  `{train,val}_label.pkl`  a pickle of `(sample_names, labels)`: N strings and N integer labels.
`read_stgcn` memory-maps the `.npy`, so even NTU's ~30 GB arrays open instantly. The pickle is read
by `safe_pickle` (no code runs: only lists/tuples of str and int, and numeric numpy scalars, load).

Custom format (one `.npz` per split, written with `np.savez(path, skeleton=..., label=..., ...)`):
  skeleton     (N, T, M, V, C) real numbers: clips, frames, persons, joints, channels, any V, M, C;
               shorter clips zero-padded at the end (or given `num_frames`);
  label        (N,) integers in [0, num_classes);
  num_frames   optional (N,) integers in [1, T]: each clip's valid frames (default: the frames up
               to the last one that is not all zeros);
  class_names  optional (num_classes,) strings: then every label must index it;
  names        optional (N,) strings, the sample ids (default `<file stem>_<row>`).
No other key is allowed (a misspelt key is an error, not silently ignored). Arrays are stored
without pickling (`np.load(..., allow_pickle=False)`), so string arrays must be numpy unicode.

`iter_clips` turns either into one `Clip` (T, M, V, C) float32 per row, trimmed to its valid
frames. A row that is all zeros (a zero-length clip) or holds NaN/Inf is a `SkeletonFormatError`
naming the file and row; by default it is raised, or it is passed to `onerror` and iteration goes
on (so a builder can skip and report it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from slnl_jax.data import safe_pickle
from slnl_jax.data.clip import Clip
from slnl_jax.data.errors import SkeletonFormatError

NPZ_REQUIRED_KEYS = ("skeleton", "label")
NPZ_OPTIONAL_KEYS = ("num_frames", "class_names", "names")


def load_numpy(path: str | os.PathLike, *, mmap: bool = False) -> np.ndarray | dict[str, np.ndarray]:
  """`np.load` without pickles: a `.npy` array (memory-mapped if `mmap`) or a `.npz`'s arrays.

  Anything numpy cannot load (corrupt header or archive, object arrays) is a `SkeletonFormatError`.
  """
  try:
    loaded = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
  except OSError as e:
    raise SkeletonFormatError(path, f"cannot read the file: {e}") from e
  # A corrupt header or archive raises numpy, ast, tokenize, zipfile or zlib errors of many types.
  except Exception as e:
    raise SkeletonFormatError(path, f"not a numeric numpy file: {type(e).__name__}: {e}") from e
  if isinstance(loaded, np.ndarray):
    return loaded
  with loaded:
    try:
      return {key: loaded[key] for key in loaded.files}
    except Exception as e:
      raise SkeletonFormatError(path, f"cannot load a .npz member: {type(e).__name__}: {e}") from e


def _check_labels(path: str | os.PathLike, labels: Any, n: int, key: str = "label") -> np.ndarray:
  labels = np.asarray(labels)
  if labels.shape != (n,) or labels.dtype.kind not in "iu":
    raise SkeletonFormatError(path, f"{key}: expected {n} integers (one per clip), found {labels.dtype} {labels.shape}")
  if n and labels.min() < 0:
    row = int(np.argmin(labels))
    raise SkeletonFormatError(path, f"{key}: row {row}: negative value {labels[row]}")
  return labels.astype(np.int64)


def _check_skeleton(path: str | os.PathLike, array: np.ndarray, layout: str) -> None:
  if array.ndim != 5 or array.dtype.kind not in "fiu" or 0 in array.shape:
    raise SkeletonFormatError(
      path, f"expected a non-empty array of real numbers {layout}, found {array.dtype} {array.shape}"
    )


def read_stgcn(
  data_path: str | os.PathLike, label_path: str | os.PathLike, *, mmap: bool = True
) -> tuple[np.ndarray, np.ndarray, list[str]]:
  """Reads an ST-GCN `*_data.npy` (N, C, T, V, M) and its `*_label.pkl` (names, labels).

  Returns:
    (data, labels, names): data memory-mapped read-only when `mmap`, labels int64 (N,).
  """
  data = load_numpy(data_path, mmap=mmap)
  if isinstance(data, dict):
    raise SkeletonFormatError(data_path, "expected a .npy array, found a .npz archive")
  _check_skeleton(data_path, data, "(N, C, T, V, M)")
  # Numeric numpy allowed: ST-GCN's Kinetics labels are numpy int64 scalars.
  content = safe_pickle.load(label_path, allow_numpy=True)
  if not (isinstance(content, tuple | list) and len(content) == 2):
    raise SkeletonFormatError(label_path, "expected a pickled pair (sample_names, labels)")
  names, labels = content
  n = data.shape[0]
  if not (isinstance(names, list | tuple | np.ndarray) and len(names) == n):
    raise SkeletonFormatError(label_path, f"expected {n} sample names, one per row of {data_path}")
  if not all(isinstance(name, str) for name in names):
    raise SkeletonFormatError(label_path, "sample names must be strings")
  return data, _check_labels(label_path, labels, n), list(names)


def read_npz(path: str | os.PathLike) -> dict[str, Any]:
  """Reads and checks a custom-format `.npz` (see the module docstring).

  Returns:
    {"skeleton": (N, T, M, V, C), "label": int64 (N,)} and, when present, "num_frames" int64
    (N,), "class_names" tuple[str, ...], "names" list[str].
  """
  content = load_numpy(path)
  if not isinstance(content, dict):
    raise SkeletonFormatError(path, "expected a .npz archive, found a single .npy array")
  unknown = content.keys() - set(NPZ_REQUIRED_KEYS) - set(NPZ_OPTIONAL_KEYS)
  missing = set(NPZ_REQUIRED_KEYS) - content.keys()
  if unknown or missing:
    raise SkeletonFormatError(
      path,
      f"keys: missing {sorted(missing)}, unknown {sorted(unknown)}; expected "
      f"{list(NPZ_REQUIRED_KEYS)} and optionally {list(NPZ_OPTIONAL_KEYS)}",
    )
  skeleton = content["skeleton"]
  _check_skeleton(path, skeleton, "skeleton (N, T, M, V, C)")
  n, t = skeleton.shape[:2]
  out: dict[str, Any] = {"skeleton": skeleton, "label": _check_labels(path, content["label"], n)}
  if "num_frames" in content:
    num_frames = _check_labels(path, content["num_frames"], n, "num_frames")
    if num_frames.min() < 1 or num_frames.max() > t:
      raise SkeletonFormatError(path, f"num_frames: expected values in [1, {t}]")
    out["num_frames"] = num_frames
  for key in ("class_names", "names"):
    if key in content:
      strings = content[key]
      if strings.ndim != 1 or strings.dtype.kind != "U":
        raise SkeletonFormatError(path, f"{key}: expected a 1-D array of strings")
      out[key] = [str(s) for s in strings]
  if "names" in out and len(out["names"]) != n:
    raise SkeletonFormatError(path, f"names: expected {n} names, one per clip")
  if "class_names" in out:
    out["class_names"] = tuple(out["class_names"])
    outside = np.flatnonzero(out["label"] >= len(out["class_names"]))
    if outside.size:
      row = int(outside[0])
      raise SkeletonFormatError(
        path, f"row {row}: label {out['label'][row]} is out of range for the {len(out['class_names'])} class_names"
      )
  return out


def clip_from_array(
  skeleton: np.ndarray,
  *,
  path: str | os.PathLike,
  name: str,
  label: int = -1,
  num_frames: int | None = None,
  meta: dict[str, Any] | None = None,
) -> Clip:
  """A (T, M, V, C) array as a float32 `Clip` of its first `num_frames` frames.

  Without `num_frames`, trailing all-zero frames (padding) are trimmed; zero frames inside the
  clip are kept. Raises `SkeletonFormatError` (naming `path` and `name`) on NaN/Inf values or when
  no frame is left.
  """
  with np.errstate(over="ignore"):
    skeleton = np.asarray(skeleton, dtype=np.float32)
  if skeleton.ndim != 4:
    raise SkeletonFormatError(path, f"{name}: expected (T, M, V, C), found shape {skeleton.shape}")
  if not np.isfinite(skeleton).all():
    frame = int(np.argmin(np.isfinite(skeleton).all(axis=(1, 2, 3))))
    raise SkeletonFormatError(path, f"{name}: NaN/Inf (or beyond float32) value in frame {frame}")
  if num_frames is None:
    nonzero = np.flatnonzero(skeleton.any(axis=(1, 2, 3)))
    num_frames = int(nonzero[-1]) + 1 if nonzero.size else 0
  if num_frames < 1:
    raise SkeletonFormatError(path, f"{name}: all frames are zero (a zero-length clip)")
  return Clip(skeleton=skeleton[:num_frames], label=int(label), name=name, meta=meta or {})


def iter_clips(
  data_path: str | os.PathLike,
  label_path: str | os.PathLike | None = None,
  *,
  mmap: bool = True,
  onerror: Callable[[SkeletonFormatError], None] | None = None,
) -> Iterator[Clip]:
  """One `Clip` (T, M, V, C) per row of an ST-GCN `.npy` (+ `label_path`) or a custom `.npz`.

  Args:
    data_path: `*_data.npy` (ST-GCN layout, needs `label_path`) or a custom-format `.npz`.
    label_path: the ST-GCN `*_label.pkl`; None for `.npz`.
    mmap: memory-map the `.npy` instead of loading it.
    onerror: called with the error of each bad row, and iteration continues; None: raise it.
      Errors about the whole file are always raised, before the first clip.

  Yields:
    Clips named by the file's sample names (else `<stem>_<row>`), meta {"index": row}.
  """
  stem = os.path.splitext(os.path.basename(os.fspath(data_path)))[0]
  if os.fspath(data_path).endswith(".npz"):
    if label_path is not None:
      raise ValueError("a .npz holds its labels: pass no label_path")
    content = read_npz(data_path)
    rows = content["skeleton"]
    names = content.get("names") or [f"{stem}_{i}" for i in range(len(rows))]
    num_frames = content.get("num_frames")
  else:
    if label_path is None:
      raise ValueError("an ST-GCN .npy needs its label .pkl: pass label_path")
    # (N, C, T, V, M) -> (N, T, M, V, C), a view: rows are read lazily from the memory map.
    data, labels, names = read_stgcn(data_path, label_path, mmap=mmap)
    rows = data.transpose(0, 2, 4, 3, 1)
    content = {"label": labels}
    num_frames = None
  for i, row in enumerate(rows):
    try:
      yield clip_from_array(
        row,
        path=data_path,
        name=names[i],
        label=content["label"][i],
        num_frames=None if num_frames is None else int(num_frames[i]),
        meta={"index": i},
      )
    except SkeletonFormatError as e:
      if onerror is None:
        raise
      onerror(e)
