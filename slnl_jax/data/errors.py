"""The readers' own error type (every malformed input raises it, naming file, line and reason) and text reading."""

from __future__ import annotations

import json
import os
from typing import Any


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

  Splits on "\n" only (not `splitlines`), so line numbers in errors match what an editor shows. A UTF-8 byte
  order mark (Windows editors write one) is dropped.
  """
  try:
    with open(path, "rb") as f:
      text = f.read().decode("utf-8-sig")
  except OSError as e:
    raise SkeletonFormatError(path, f"cannot read the file: {e.strerror}") from e
  except UnicodeDecodeError as e:
    raise SkeletonFormatError(path, f"not a text file (byte {e.start} is not UTF-8)") from e
  return [line.removesuffix("\r") for line in text.split("\n")]


def read_json(path: str | os.PathLike) -> Any:
  """A JSON file's content; unreadable or invalid files raise `SkeletonFormatError` (with the line for invalid JSON)."""
  try:
    with open(path, "rb") as f:
      return json.loads(f.read())
  except OSError as e:
    raise SkeletonFormatError(path, f"cannot read the file: {e.strerror}") from e
  except json.JSONDecodeError as e:
    raise SkeletonFormatError(path, f"invalid JSON: {e.msg} (column {e.colno})", e.lineno) from e
  except UnicodeDecodeError as e:
    raise SkeletonFormatError(path, f"not a text file (byte {e.start} is not UTF-8)") from e
  except RecursionError as e:
    raise SkeletonFormatError(path, "JSON nested too deeply") from e
