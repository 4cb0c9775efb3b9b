"""Shared test fixtures: the real data folder and a persistent XLA compilation cache.

Tests that read real data take the `shared_data` fixture (or call `require_real_data`): without the data they
skip with one line saying what to set, and `SLNL_REQUIRE_REAL_DATA=1` turns those skips into failures.
"""

import importlib.util
import os
import pathlib
import sys
import types

import jax
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

# Compiles dominate CPU test time; a cache shared by the test workers cuts re-compiles.
jax.config.update("jax_compilation_cache_dir", str(REPO_ROOT / ".jax_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def load_benchmark(name: str) -> types.ModuleType:
  """The script `benchmarks/<name>.py` as a module (benchmarks are scripts, not a package; their folder goes on
  sys.path, as it is when one runs, so that they can import each other)."""
  folder = REPO_ROOT / "benchmarks"
  if str(folder) not in sys.path:
    sys.path.append(str(folder))
  spec = importlib.util.spec_from_file_location(f"benchmark_{name}", folder / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def shared_data_dir() -> pathlib.Path:
  """The team's real data (`SLNL_SHARED_DATA`, default `../shared/data` beside the repo)."""
  return pathlib.Path(os.environ.get("SLNL_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def require_real_data(path: pathlib.Path) -> pathlib.Path:
  """`path` if it exists; otherwise a one-line skip naming SLNL_SHARED_DATA, or a failure where
  SLNL_REQUIRE_REAL_DATA=1 (CI sets it, so CI never passes without the real-data tests)."""
  if path.exists():
    return path
  reason = f"real data not found at {path}: set SLNL_SHARED_DATA to the shared/data folder"
  if os.environ.get("SLNL_REQUIRE_REAL_DATA") == "1":
    pytest.fail(f"{reason} (SLNL_REQUIRE_REAL_DATA=1)")
  pytest.skip(reason)


# The folders of the shared data the tests read; a partial copy skips (or fails) naming the one missing.
SHARED_FOLDERS = ("msr_action3d", "ntu_rgbd", "kinetics_skeleton", "nw_ucla")


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  """Real recorded skeleton data (MSR Action3D, N-UCLA, NTU RGB+D and Kinetics-skeleton samples)."""
  root = shared_data_dir()
  for folder in SHARED_FOLDERS:
    require_real_data(root / folder)
  return root
