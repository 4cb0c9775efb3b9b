r"""The accelerator sweep of issue 14: benchmarks/train_step.py over presets x dtypes x non-local implementations.

  python benchmarks/accelerator_sweep.py [--steps=20] [--out=sweep.md] \
      [--cases=configs/ntu60_xsub.py:32,configs/ntu60_xsub.py:64,configs/kinetics.py:128] \
      [--dtypes=float32,bfloat16] [--impls=auto,chunked,einsum] [--time_limit=30] [--log=sweep.log] [--concurrent]
  python benchmarks/accelerator_sweep.py --concurrent \
      --runs=configs/ntu60_xsub.py:32:bfloat16:auto,configs/kinetics.py:128:bfloat16:auto

Each case is one run of `benchmarks/train_step.py` in its own process (so "peak device memory", the backend's
`peak_bytes_in_use`, belongs to that case alone) on generated batches: JAX, flax, optax and ml_collections only,
no TensorFlow and no dataset, so it runs on a machine that has jax with CUDA or a TPU and nothing else of ours.
Only the non-local implementation changes between rows (`--config.model.nonlocal_impl`; the convolution kernel
gradient stays the preset's `auto`). A case that fails (out of memory, a kernel that does not compile) is a row
with the error's last line. Prints a markdown table (and writes it to --out): step time, samples/s, MFU against
the vendor's dense peak for the dtype, peak device memory, compile time.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

from absl import app, flags

_CASES = flags.DEFINE_list(
  "cases",
  ["configs/ntu60_xsub.py:32", "configs/ntu60_xsub.py:64", "configs/kinetics.py:128"],
  "CONFIG:BATCH pairs: the NTU preset at batch 32 and 64, the Kinetics preset (T = 128) at batch 128.",
)
_DTYPES = flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Compute dtypes.")
_IMPLS = flags.DEFINE_list("impls", ["auto", "chunked", "einsum"], "config.model.nonlocal_impl values.")
_RUNS = flags.DEFINE_list(
  "runs", None, "CONFIG:BATCH:DTYPE:IMPL cases, in this order, instead of the product of --cases, --dtypes, --impls."
)
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps per case (after one warm-up step).")
_TIME_LIMIT = flags.DEFINE_float("time_limit", 30, "Seconds of timed steps per case before it stops (>= 3 steps).")
_TIMEOUT = flags.DEFINE_integer("timeout", 1800, "Seconds before a case is stopped and reported as a timeout.")
_OUT = flags.DEFINE_string("out", None, "Also write the markdown table here (rewritten after every case).")
_CONCURRENT = flags.DEFINE_bool(
  "concurrent",
  False,
  "Start every case at once so their compiles overlap (XLA autotuning then shares the device), then time them "
  "one at a time, nothing else running; each keeps its device memory while it waits, so all must fit together.",
)
_LOG = flags.DEFINE_string("log", None, "Append each case's command and full output here.")

REPO = pathlib.Path(__file__).resolve().parents[1]
COLUMNS = ("step time (median)", "samples/s", "MFU", "peak device memory", "memory plan: XLA temporaries")


class Case:
  """One benchmarks/train_step.py process; `--concurrent` starts all of them, then times them one at a time."""

  def __init__(self, config: str, batch: int, dtype: str, impl: str, scratch: pathlib.Path, index: int):
    self.go = scratch / f"go.{index}"
    self.command = [
      sys.executable,
      str(REPO / "benchmarks" / "train_step.py"),
      f"--config={config}",
      f"--batch_size={batch}",
      f"--dtype={dtype}",
      f"--steps={_STEPS.value}",
      f"--time_limit={_TIME_LIMIT.value}",
      f"--config.model.nonlocal_impl={impl}",
    ]
    if _CONCURRENT.value:
      self.command.append(f"--start_after={self.go}")
    self.stdout = open(scratch / f"stdout.{index}", "w")  # files, not pipes: a full pipe would block the child
    self.stderr = open(scratch / f"stderr.{index}", "w")
    self.start = time.perf_counter()
    # Side by side, no process may take most of the device's memory up front (JAX's default).
    env = os.environ | ({"XLA_PYTHON_CLIENT_PREALLOCATE": "false"} if _CONCURRENT.value else {})
    self.process = subprocess.Popen(self.command, cwd=REPO, stdout=self.stdout, stderr=self.stderr, text=True, env=env)

  def waiting(self) -> bool:
    """Compiled and warmed up, waiting for its turn to time (or finished)."""
    return self.process.poll() is not None or pathlib.Path(f"{self.go}.ready").exists()

  def finish(self) -> dict[str, str]:
    """Lets it time its steps; its printed rows by name, or {"error": last line of the failure}."""
    self.go.touch()
    try:
      self.process.wait(timeout=max(1.0, _TIMEOUT.value - (time.perf_counter() - self.start)))
    except subprocess.TimeoutExpired:
      self.process.kill()
      return {"error": f"timeout after {_TIMEOUT.value} s"}
    stdout, stderr = (pathlib.Path(stream.name).read_text() for stream in (self.stdout, self.stderr))
    self.stdout.close()
    self.stderr.close()
    if _LOG.value:
      with open(_LOG.value, "a") as log:
        log.write(f"$ {' '.join(self.command)}\n{stdout}{stderr[-4000:]}\n")
    if self.process.returncode != 0:
      lines = [line for line in stderr.splitlines() if line.strip()] or [f"exit status {self.process.returncode}"]
      # The exception's own line, not JAX's traceback-filtering note after it.
      errors = [line for line in lines if re.search(r"(Error|Exception|RESOURCE_EXHAUSTED)\b", line)]
      return {"error": (errors or lines)[-1].strip()[:200]}
    rows = dict(re.findall(r"^(\S.*?)\s{2,}(\S.*)$", stdout, flags=re.MULTILINE))
    rows["wall"] = f"{time.perf_counter() - self.start:.0f} s"
    return rows


def table(results: list[tuple[str, int, str, str, dict[str, str]]]) -> str:
  header = ["config", "batch", "dtype", "non-local", *COLUMNS, "compile time"]
  lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
  for config, batch, dtype, impl, rows in results:
    if "error" in rows:
      cells = [f"failed: {rows['error']}"] + [""] * len(COLUMNS)
    else:
      cells = [rows.get(column, "n/a").split(" over ")[0] for column in COLUMNS] + [rows.get("compile time", "n/a")]
    lines.append("| " + " | ".join([pathlib.Path(config).stem, str(batch), dtype, impl, *cells]) + " |")
  return "\n".join(lines)


def main(argv: list[str]) -> None:
  del argv
  if _RUNS.value:
    specs = [(config, int(batch), dtype, impl) for config, batch, dtype, impl in (r.split(":") for r in _RUNS.value)]
  else:
    specs = [
      (config, int(batch), dtype, impl)
      for config, batch in (case.rsplit(":", 1) for case in _CASES.value)
      for dtype in _DTYPES.value
      for impl in _IMPLS.value
    ]
  results = []
  with tempfile.TemporaryDirectory() as scratch:
    # One after the other, each case starts when the loop reaches it; --concurrent starts them all first.
    cases = (Case(*spec, pathlib.Path(scratch), i) for i, spec in enumerate(specs))
    if _CONCURRENT.value:
      cases = list(cases)
      started = time.perf_counter()
      while not all(case.waiting() for case in cases) and time.perf_counter() - started < _TIMEOUT.value:
        time.sleep(0.5)
    for spec, case in zip(specs, cases, strict=True):
      rows = case.finish()
      results.append((*spec, rows))
      print(f"{' '.join(map(str, spec))}: {rows.get('error') or rows.get('step time (median)')}", flush=True)
      if _OUT.value:  # after every case, so a sweep stopped part-way keeps what it measured
        pathlib.Path(_OUT.value).write_text(report(results))
  print(report(results))


def report(results: list[tuple[str, int, str, str, dict[str, str]]]) -> str:
  device = next((rows["device"] for *_, rows in results if "device" in rows), "unknown device")
  return f"Device: {device}; up to {_STEPS.value} timed steps per case ({_TIME_LIMIT.value:g} s).\n\n{table(results)}\n"


if __name__ == "__main__":
  app.run(main)
