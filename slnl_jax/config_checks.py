"""Config errors the user sees as one `error:` line.

ml_collections re-raises a ValueError or TypeError from a config file as `type(e)(message)` (which loses
the message, or fails for exception types that need more arguments) and defers an OSError until the config
is read. Config files therefore raise `ConfigError`, which passes through unchanged to `main`.
"""

from __future__ import annotations


class ConfigError(Exception):
  """A config (file or override) the run cannot use; the message names the file or key and says what is wrong."""
