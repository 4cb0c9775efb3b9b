"""One clip from any supported file, by its type (for `--mode=predict`).

  `*.skeleton`         NTU RGB+D (`ntu.read_skeleton`)
  `aAA_sSS_eEE_vVV.json`  Northwestern-UCLA, CTR-GCN's JSON layout (`nw_ucla.read_clip`)
  `*.json`             any other JSON: Kinetics-skeleton clip (`kinetics.read_clip`)
  `*_skeleton3D.txt`   MSR Action3D (`msr_action3d.read_sequence`)
  `*.npy`              one clip (T, M, V, C) of real numbers, channels last
  `*.npz`              one clip: `skeleton` (T, M, V, C), optional `label` (integer scalar) and
                       `num_frames` (integer scalar in [1, T])
For `.npy` / `.npz` without `num_frames`, trailing all-zero frames (padding) are trimmed. The
per-split custom format (N clips in one `.npz`) is read with `arrays.iter_clips` instead.
Anything else raises `SkeletonFormatError`. `class_name` names a clip's label in its own dataset's class list,
`class_among` in a model's; `read_for_model` also refuses a clip of another skeleton than the model's;
`matching_files` expands --input's glob patterns.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

from slnl_jax.data import arrays, kinetics, msr_action3d, ntu, nw_ucla
from slnl_jax.data.clip import Clip
from slnl_jax.data.errors import SkeletonFormatError

_NPZ_KEYS = ("skeleton", "label", "num_frames")


def _scalar_int(path: str | os.PathLike, content: dict, key: str) -> int | None:
  if key not in content:
    return None
  value = content[key]
  if value.shape != () or value.dtype.kind not in "iu":
    raise SkeletonFormatError(path, f"{key}: expected an integer scalar, found {value.shape}")
  return int(value)


def _read_array_clip(path: str | os.PathLike) -> Clip:
  name = os.path.splitext(os.path.basename(os.fspath(path)))[0]
  loaded = arrays.load_numpy(path)
  if os.fspath(path).endswith(".npy"):
    if isinstance(loaded, dict):
      raise SkeletonFormatError(path, "expected a .npy array, found a .npz archive")
    content = {"skeleton": loaded}
  else:
    if not isinstance(loaded, dict):
      raise SkeletonFormatError(path, "expected a .npz archive, found a single .npy array")
    content = loaded
    if "skeleton" not in content or content.keys() - set(_NPZ_KEYS):
      raise SkeletonFormatError(
        path, f"keys: expected 'skeleton' and optionally 'label', 'num_frames'; found {sorted(content)}"
      )
  skeleton = content["skeleton"]
  if skeleton.ndim != 4 or skeleton.dtype.kind not in "fiu":
    raise SkeletonFormatError(
      path, f"skeleton: expected real numbers (T, M, V, C), found {skeleton.dtype} {skeleton.shape}"
    )
  label = _scalar_int(path, content, "label")
  num_frames = _scalar_int(path, content, "num_frames")
  if num_frames is not None and not 1 <= num_frames <= skeleton.shape[0]:
    raise SkeletonFormatError(path, f"num_frames {num_frames} is not in [1, {skeleton.shape[0]}]")
  return arrays.clip_from_array(
    skeleton, path=path, name=name, label=-1 if label is None else label, num_frames=num_frames
  )


def _file_type(path: str | os.PathLike) -> str | None:
  """ "ntu" | "nw_ucla" | "kinetics" | "msr_action3d" | "array" by the file's name; None for any other."""
  name = os.path.basename(os.fspath(path))
  if name.endswith(".skeleton"):
    return "ntu"
  if name.endswith(".json"):
    # Both layouts are JSON: N-UCLA files carry the dataset's own names, Kinetics clips YouTube ids.
    return "nw_ucla" if nw_ucla.parse_name(name.removesuffix(".json")) is not None else "kinetics"
  if name.endswith("_skeleton3D.txt"):
    return "msr_action3d"
  if name.endswith((".npy", ".npz")):
    return "array"
  return None


_READERS = {
  "ntu": ntu.read_skeleton,
  "nw_ucla": nw_ucla.read_clip,
  "kinetics": kinetics.read_clip,
  "msr_action3d": msr_action3d.read_sequence,
  "array": _read_array_clip,
}
# Each file type's class list, in label order (Kinetics clips name their class themselves; arrays only number it).
_CLASSES = {"ntu": ntu.NTU120_CLASSES, "nw_ucla": nw_ucla.CLASSES, "msr_action3d": msr_action3d.CLASSES}


def read_file(path: str | os.PathLike) -> Clip:
  """Reads one clip from a file of any supported type (see the module docstring)."""
  file_type = _file_type(path)
  if file_type is None:
    raise SkeletonFormatError(
      path,
      "unknown file type: expected .skeleton (NTU), .json (N-UCLA or Kinetics), _skeleton3D.txt (MSR Action3D), "
      ".npy or .npz",
    )
  return _READERS[file_type](path)


def matching_files(patterns: Sequence[str]) -> list[str]:
  """The files matching any of the glob `patterns` (`**` reaches into folders), sorted, each once; none is an
  error naming the patterns (--input of `--mode=predict` and tools/agreement.py)."""
  paths = sorted({path for pattern in patterns for path in glob.glob(pattern, recursive=True)})
  if not paths:
    raise SkeletonFormatError(
      ",".join(patterns), "no file matches --input (quote a pattern so that the shell leaves it)"
    )
  return paths


def read_for_model(path: str | os.PathLike, num_joints: int, num_channels: int) -> Clip:
  """`read_file`, and a clip of another skeleton than a model's (`num_joints` x `num_channels`) is an error
  naming the file."""
  clip = read_file(path)
  if clip.skeleton.shape[2:] != (num_joints, num_channels):
    raise SkeletonFormatError(
      path,
      f"{clip.skeleton.shape[2]} joints x {clip.skeleton.shape[3]} channels, but the model takes "
      f"{num_joints} x {num_channels}",
    )
  return clip


def class_name(path: str | os.PathLike, clip: Clip) -> str | None:
  """The name of `clip`'s label in the class list of the dataset its file type belongs to; None when the file
  carries no label, or only a number (`.npy` / `.npz`: an index into the classes of whatever dataset it is from)."""
  file_type = _file_type(path)
  if clip.label < 0:
    return None
  if file_type == "kinetics":
    return clip.meta.get("label_name")
  classes = _CLASSES.get(file_type, ())
  return classes[clip.label] if clip.label < len(classes) else None


def class_among(path: str | os.PathLike, clip: Clip, class_names: Sequence[str]) -> str | None:
  """`clip`'s class as one of a model's `class_names`; None when the file has no label or one they lack. An
  array file's label is read as an index into `class_names` (it carries no dataset of its own)."""
  name = class_name(path, clip)
  if name is None and 0 <= clip.label < len(class_names) and str(path).endswith((".npy", ".npz")):
    name = class_names[clip.label]
  return name if name in class_names else None
