"""Shared test fixtures: the real data folder and a persistent XLA compilation cache."""

import os
import pathlib

import jax
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

# Compiles dominate CPU test time; a cache shared by the test workers cuts re-compiles.
jax.config.update("jax_compilation_cache_dir", str(REPO_ROOT / ".jax_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def shared_data_dir() -> pathlib.Path:
  """The team's real data (`SLNL_SHARED_DATA`, default `../shared/data` beside the repo)."""
  return pathlib.Path(os.environ.get("SLNL_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  """Real recorded skeleton data; its absence is a failure, never a skip."""
  path = shared_data_dir()
  if not (path / "msr_action3d").is_dir():
    pytest.fail(f"real data not found at {path}: set SLNL_SHARED_DATA to the shared/data folder")
  return path
