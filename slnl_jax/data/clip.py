"""The one value every reader returns: a skeleton clip and what is known about it."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Clip:
  """A skeleton clip read from one file (or one row of an array file).

  Attributes:
    skeleton: float32 array (T, M, V, C): frames, persons (zero-padded), joints, channels.
    label: 0-based class index, or -1 when the source carries no label.
    name: sample id (file stem for per-file formats).
    meta: protocol ids and counts, e.g. {"subject": 3, "camera": 1, "dropped_frames": 2}.
  """

  skeleton: np.ndarray
  label: int
  name: str
  meta: dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def num_frames(self) -> int:
    return int(self.skeleton.shape[0])
