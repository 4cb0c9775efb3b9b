"""The readers' own error type: every malformed input raises it, naming the file, line and reason."""

from __future__ import annotations

import os


class SkeletonFormatError(ValueError):
  """A skeleton file (or array) is not in the format its reader expects.

  Attributes:
    path: the offending file.
    line: 1-based line number where the problem was found (None when not line-based).
    reason: what was expected and what was found.
  """

  def __init__(self, path: str | os.PathLike, reason: str, line: int | None = None):
    self.path = os.fspath(path)
    self.line = line
    self.reason = reason
    where = f"{self.path}:{line}" if line is not None else self.path
    super().__init__(f"{where}: {reason}")
