"""The readers' own error type (every malformed input raises it, naming file, line and reason) and text reading."""

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


def read_lines(path: str | os.PathLike) -> list[str]:
  """A UTF-8 text file's lines without their LF or CRLF ending; unreadable files raise `SkeletonFormatError`.

  Splits on "\n" only (not `splitlines`), so line numbers in errors match what an editor shows.
  """
  try:
    with open(path, "rb") as f:
      text = f.read().decode("utf-8")
  except OSError as e:
    raise SkeletonFormatError(path, f"cannot read the file: {e.strerror}") from e
  except UnicodeDecodeError as e:
    raise SkeletonFormatError(path, f"not a text file (byte {e.start} is not UTF-8)") from e
  return [line.removesuffix("\r") for line in text.split("\n")]
