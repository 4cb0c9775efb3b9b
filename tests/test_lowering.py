"""The NTU preset's train step lowered for GPU and TPU from this CPU: no serial loop (benchmarks/train_step.py).

`benchmarks/train_step.py --lower_for=...` exports the trainer's own step with `jax.export` for each platform
(nothing runs; no device needed) and counts the `stablehlo.while` ops of the lowered module. Every kernel `auto`
picks lowers from a CPU (the Pallas TPU kernel as a Mosaic custom call, the Pallas GPU kernel as a Triton one),
so all three platforms are checked in full.
"""

import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lowered() -> dict[str, dict[str, str]]:
  """Rows printed per platform by the benchmark's --lower_for, for the NTU preset at its batch of 32."""
  command = [
    sys.executable,
    "benchmarks/train_step.py",
    "--config=configs/ntu60_xsub.py",
    "--lower_for=cuda,tpu,cpu",
  ]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  platforms: dict[str, dict[str, str]] = {}
  for line in result.stdout.splitlines():
    if line.startswith("--- "):
      rows = platforms.setdefault(line[4:], {})
    elif platforms and (row := re.match(r"(\S.*?)\s{2,}(\S.*)", line)):
      rows[row[1]] = row[2]
  return platforms


@pytest.mark.parametrize(("platform", "kernel"), [("cuda", "gpu_flash"), ("tpu", "tpu_flash")])
def test_ntu_step_has_no_serial_loop_on_accelerators(lowered, platform, kernel):
  rows = lowered[platform]
  assert rows["serial loops (stablehlo.while)"] == "0"
  assert rows["conv kernel gradient"] == "xla"
  assert rows["non-local spatio_temporal"].count(kernel) == 5  # M1 = 5 SLnL blocks
  assert "chunked" not in rows["non-local temporal"] + rows["non-local spatial"]


def test_loop_counter_sees_the_cpu_loops(lowered):
  """On CPU `auto` keeps the chunked non-local and the matmul kernel gradient, both lax.map loops.

  The longest is the temporal non-local's map over its groups: B * M * N' = 32 clips * 2 persons * 64 joints.
  """
  rows = lowered["cpu"]
  assert int(rows["serial loops (stablehlo.while)"]) > 0
  assert rows["largest trip count"] == str(32 * 2 * 64)
