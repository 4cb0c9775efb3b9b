r"""Train-step benchmark: compile time, step time, samples/s, FLOPs, MFU and peak memory.

  python benchmarks/train_step.py --config=configs/ntu60_xsub.py --batch_size=32 --steps=5 \
      [--dtype=float32|bfloat16] [--config.model.nonlocal_impl=dot_product_attention] [--config.model.remat=True]

The step is the trainer's own (`steps.jit_train_step`: sharded over all devices, donated state) on a random
batch of the config's input shape. FLOPs per step come from XLA's cost analysis of the compiled step. The MFU
denominator is, on CPU, a float32 peak measured here (fastest of 20 runs of a large jitted matmul, all cores); on
GPU/TPU, the vendor's dense peak for the dtype (table below; unknown devices print "n/a"). Peak host memory is
the process's max RSS; peak device memory comes from `memory_stats()` where the backend has it.
"""

from __future__ import annotations

import resource
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from slnl_jax import losses, models, sharding, steps

_CONFIG = config_flags.DEFINE_config_file("config", "configs/ntu60_xsub.py", "Model/data config.")
_BATCH = flags.DEFINE_integer("batch_size", None, "Global batch size (default: config.train.batch_size).")
_STEPS = flags.DEFINE_integer("steps", None, "Timed steps after warm-up (default: 20 on accelerators, 5 on CPU).")
_DTYPE = flags.DEFINE_enum("dtype", None, ["float32", "bfloat16"], "Compute dtype (default: config.dtype).")
_WARMUP = flags.DEFINE_integer("warmup", 1, "Untimed steps after compilation.")
_COMPILE_ONLY = flags.DEFINE_bool(
  "compile_only", False, "Stop after compiling: FLOPs and XLA's memory plan, no steps (sizes any device's need)."
)

# Vendor dense peaks (FLOP/s) per chip, by dtype; matched against `device_kind` substrings.
_VENDOR_PEAK = {
  "H200": {"bfloat16": 989e12, "float32": 67e12},
  "H100": {"bfloat16": 989e12, "float32": 67e12},
  "A100": {"bfloat16": 312e12, "float32": 19.5e12},
  "L4": {"bfloat16": 121e12, "float32": 30e12},
  "TPU v4": {"bfloat16": 275e12, "float32": 275e12 / 2},
  "TPU v5 lite": {"bfloat16": 197e12, "float32": 197e12 / 2},
  "TPU v5": {"bfloat16": 459e12, "float32": 459e12 / 2},
  "TPU v6": {"bfloat16": 918e12, "float32": 918e12 / 2},
}


def measured_cpu_peak(n: int = 2048, reps: int = 20) -> float:
  """float32 FLOP/s of a jitted n x n matmul on the default backend: the fastest of `reps` runs.

  The fastest run, not the median: a peak is what the hardware reaches, and on a shared 2-core machine the
  median moves with other load (it ranged 119-169 GFLOP/s between runs here).
  """
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
  matmul = jax.jit(lambda x: x @ x)
  matmul(a).block_until_ready()
  times = []
  for _ in range(reps):
    start = time.perf_counter()
    matmul(a).block_until_ready()
    times.append(time.perf_counter() - start)
  return 2 * n**3 / min(times)


def device_peak(dtype: str) -> tuple[float | None, str]:
  device = jax.devices()[0]
  if device.platform == "cpu":
    return measured_cpu_peak(), "measured float32 matmul"
  for name, peaks in _VENDOR_PEAK.items():
    if name in device.device_kind:
      return peaks[dtype] * jax.device_count(), f"vendor {dtype} dense peak x {jax.device_count()}"
  return None, f"unknown device {device.device_kind!r}"


def model_flops(config, mesh, model, state, batch, lr_fn) -> float:
  """FLOPs of one train step: XLA's cost analysis of the step of `models.flop_reference(model)`."""
  apply_fn = models.flop_reference(model).apply
  cost = (
    steps.jit_train_step(mesh, losses.get_loss_fn(config.loss), lr_fn)
    .lower(state.replace(apply_fn=apply_fn), batch)
    .cost_analysis()
  )
  if isinstance(cost, list | tuple):  # older jax: one dict per program
    cost = cost[0]
  return float(cost.get("flops", float("nan")))


def main(argv: list[str]) -> None:
  del argv
  config = _CONFIG.value
  if _DTYPE.value:
    config.dtype = _DTYPE.value
  batch_size = _BATCH.value or config.train.batch_size
  on_cpu = jax.devices()[0].platform == "cpu"
  num_steps = _STEPS.value or (5 if on_cpu else 20)
  sharding.check_batch_size(batch_size, "--batch_size")

  mesh = sharding.make_mesh()
  model = models.create_model(config)
  lr_fn = steps.create_learning_rate_fn(config, steps_per_epoch=1000)
  state = steps.create_train_state(config, model, steps.create_optimizer(config, lr_fn), mesh)
  rng = np.random.default_rng(0)
  batch = sharding.shard_batch(
    {
      "skeleton": rng.normal(size=steps.input_shape(config, batch_size)).astype(np.float32),
      "label": rng.integers(0, config.dataset.num_classes, batch_size).astype(np.int32),
    },
    mesh,
  )
  step = steps.jit_train_step(mesh, losses.get_loss_fn(config.loss), lr_fn)

  start = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  flops = model_flops(config, mesh, model, state, batch, lr_fn)
  memory = compiled.memory_analysis()
  plan = {
    "XLA temporaries": memory.temp_size_in_bytes,
    "arguments (state + batch)": memory.argument_size_in_bytes,
    "outputs": memory.output_size_in_bytes,
  }
  rows = [
    ("device", f"{jax.device_count()} x {jax.devices()[0].device_kind} ({jax.devices()[0].platform})"),
    (
      "config",
      f"batch {batch_size}, input {steps.input_shape(config, batch_size)}, dtype {config.dtype}, "
      f"nonlocal {config.model.nonlocal_impl}, conv kernel grad {config.model.conv_kernel_grad}, "
      f"remat {config.model.remat}",
    ),
    ("parameters", f"{models.count_params(state.params):,}"),
    ("compile time", f"{compile_s:.1f} s"),
    ("model FLOPs/step", f"{flops / 1e9:.1f} GFLOP (XLA cost analysis, einsum non-local, XLA conv, no remat)"),
  ]
  rows += [(f"memory plan: {name}", f"{size / 2**30:.2f} GiB") for name, size in plan.items()]
  if _COMPILE_ONLY.value:
    print_rows(rows)
    return

  for _ in range(_WARMUP.value):
    state, _ = compiled(state, batch)
  jax.block_until_ready(state)
  times = []
  for _ in range(num_steps):
    start = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
  step_s = statistics.median(times)

  peak, peak_source = device_peak(config.dtype)
  achieved = flops / step_s
  device_mem = jax.devices()[0].memory_stats() or {}
  rows += [
    ("step time (median)", f"{step_s:.3f} s over {num_steps} steps (min {min(times):.3f}, max {max(times):.3f})"),
    ("samples/s", f"{batch_size / step_s:.2f}"),
    ("achieved", f"{achieved / 1e9:.1f} GFLOP/s"),
    ("peak", f"{peak / 1e9:.1f} GFLOP/s ({peak_source})" if peak else f"n/a ({peak_source})"),
    ("MFU", f"{100 * achieved / peak:.1f} %" if peak else "n/a"),
    ("peak host RSS", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"),
  ]
  if "peak_bytes_in_use" in device_mem:
    rows.append(("peak device memory", f"{device_mem['peak_bytes_in_use'] / 2**30:.2f} GiB"))
  print_rows(rows)


def print_rows(rows: list[tuple[str, str]]) -> None:
  width = max(len(name) for name, _ in rows)
  for name, value in rows:
    print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
  app.run(main)
