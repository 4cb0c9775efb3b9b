"""An exclusive advisory lock on a file, for work that several processes on one machine may start at once: a
dataset build, an ablation run."""

from __future__ import annotations

import contextlib
import fcntl
import pathlib
from collections.abc import Iterator


@contextlib.contextmanager
def exclusive(path: pathlib.Path, *, blocking: bool = True) -> Iterator[bool]:
  """Holds an exclusive `flock` on `path` (created with its folder) for the block and yields True.

  With `blocking=False` it yields False at once, holding nothing, when another process (or another open of the
  file in this one) holds the lock. The lock goes with the open file, so a process that dies releases it.
  """
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "a") as f:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
      yield False
      return
    yield True
