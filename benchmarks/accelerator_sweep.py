r"""The accelerator sweep of issue 14: benchmarks/train_step.py over presets x dtypes x non-local implementations.

  python benchmarks/accelerator_sweep.py [--steps=20] [--out=sweep.md] \
      [--cases=configs/ntu60_xsub.py:32,configs/ntu60_xsub.py:64,configs/kinetics.py:128] \
      [--dtypes=float32,bfloat16] [--impls=auto,chunked,einsum] [--time_limit=30] [--log=sweep.log]

Each case is one run of `benchmarks/train_step.py` in its own process (so "peak device memory", the backend's
`peak_bytes_in_use`, belongs to that case alone) on generated batches: JAX, flax, optax and ml_collections only,
no TensorFlow and no dataset, so it runs on a machine that has jax with CUDA or a TPU and nothing else of ours.
Only the non-local implementation changes between rows (`--config.model.nonlocal_impl`; the convolution kernel
gradient stays the preset's `auto`). A case that fails (out of memory, a kernel that does not compile) is a row
with the error's last line. Prints a markdown table (and writes it to --out): step time, samples/s, MFU against
the vendor's dense peak for the dtype, peak device memory, compile time.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import time

from absl import app, flags

_CASES = flags.DEFINE_list(
  "cases",
  ["configs/ntu60_xsub.py:32", "configs/ntu60_xsub.py:64", "configs/kinetics.py:128"],
  "CONFIG:BATCH pairs: the NTU preset at batch 32 and 64, the Kinetics preset (T = 128) at batch 128.",
)
_DTYPES = flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Compute dtypes.")
_IMPLS = flags.DEFINE_list("impls", ["auto", "chunked", "einsum"], "config.model.nonlocal_impl values.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps per case (after one warm-up step).")
_TIME_LIMIT = flags.DEFINE_float("time_limit", 30, "Seconds of timed steps per case before it stops (>= 3 steps).")
_TIMEOUT = flags.DEFINE_integer("timeout", 1800, "Seconds before a case is stopped and reported as a timeout.")
_OUT = flags.DEFINE_string("out", None, "Also write the markdown table here (rewritten after every case).")
_LOG = flags.DEFINE_string("log", None, "Append each case's command and full output here.")

REPO = pathlib.Path(__file__).resolve().parents[1]
COLUMNS = ("step time (median)", "samples/s", "MFU", "peak device memory", "memory plan: XLA temporaries")


def run_case(config: str, batch: int, dtype: str, impl: str) -> dict[str, str]:
  """One benchmarks/train_step.py run; its printed rows by name, or {"error": last line of the failure}."""
  command = [
    sys.executable,
    str(REPO / "benchmarks" / "train_step.py"),
    f"--config={config}",
    f"--batch_size={batch}",
    f"--dtype={dtype}",
    f"--steps={_STEPS.value}",
    f"--time_limit={_TIME_LIMIT.value}",
    f"--config.model.nonlocal_impl={impl}",
  ]
  start = time.perf_counter()
  try:
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=_TIMEOUT.value, check=False)
  except subprocess.TimeoutExpired:
    return {"error": f"timeout after {_TIMEOUT.value} s"}
  if _LOG.value:
    with open(_LOG.value, "a") as log:
      log.write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr[-4000:]}\n")
  if result.returncode != 0:
    lines = [line for line in result.stderr.splitlines() if line.strip()] or [f"exit status {result.returncode}"]
    # The exception's own line, not JAX's traceback-filtering note after it.
    errors = [line for line in lines if re.search(r"(Error|Exception|RESOURCE_EXHAUSTED)\b", line)]
    return {"error": (errors or lines)[-1].strip()[:200]}
  rows = dict(re.findall(r"^(\S.*?)\s{2,}(\S.*)$", result.stdout, flags=re.MULTILINE))
  rows["wall"] = f"{time.perf_counter() - start:.0f} s"
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
  results = []
  for case in _CASES.value:
    config, batch = case.rsplit(":", 1)
    for dtype in _DTYPES.value:
      for impl in _IMPLS.value:
        rows = run_case(config, int(batch), dtype, impl)
        results.append((config, int(batch), dtype, impl, rows))
        print(
          f"{config} batch {batch} {dtype} {impl}: {rows.get('error') or rows.get('step time (median)')}", flush=True
        )
        if _OUT.value:  # after every case, so a sweep stopped part-way keeps what it measured
          pathlib.Path(_OUT.value).write_text(report(results))
  print(report(results))


def report(results: list[tuple[str, int, str, str, dict[str, str]]]) -> str:
  device = next((rows["device"] for *_, rows in results if "device" in rows), "unknown device")
  return f"Device: {device}; up to {_STEPS.value} timed steps per case ({_TIME_LIMIT.value:g} s).\n\n{table(results)}\n"


if __name__ == "__main__":
  app.run(main)
