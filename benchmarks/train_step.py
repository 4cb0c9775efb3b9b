r"""Train-step benchmark: compile time, step time, samples/s, FLOPs, MFU and peak memory.

  python benchmarks/train_step.py --config=configs/ntu60_xsub.py --batch_size=32 --steps=5 \
      [--dtype=float32|bfloat16] [--config.model.nonlocal_impl=dot_product_attention] [--config.model.remat=True]

The step is the trainer's own (`steps.jit_train_step`: sharded over all devices, donated state) on a random
batch of the config's input shape. FLOPs per step come from XLA's cost analysis of the compiled step. The MFU
denominator is, on CPU, a float32 peak measured here (fastest of 20 runs of a large jitted matmul, all cores); on
GPU/TPU, the vendor's dense peak for the dtype (table below; unknown devices print "n/a"). Peak host memory is
the process's max RSS; peak device memory comes from `memory_stats()` where the backend has it.

  python benchmarks/train_step.py --config=configs/ntu60_xsub.py --lower_for=cuda,tpu

lowers the same step for other platforms from any machine (`jax.export`, no device needed, nothing runs) and
prints per platform the non-local implementation of each SLnL block, the convolution kernel gradient, the
number of serial loops (`stablehlo.while` ops) in the lowered module and the largest trip count among them.

  python benchmarks/train_step.py --config=configs/ntu60_xsub.py --batch_size=8 --profile_dir=DIR

also traces `--profile_steps` steps after timing (jax.profiler, jax alone) and writes the compiled step's HLO
text beside the trace; `benchmarks/profile_summary.py --profile_dir=DIR` breaks it down by module and op.
"""

from __future__ import annotations

import math
import pathlib
import re
import resource
import statistics
import time
from collections import Counter
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags
from jax import export
from ml_collections import config_flags

from slnl_jax import losses, models, sharding, steps
from slnl_jax.models import nonlocal_attention

_CONFIG = config_flags.DEFINE_config_file("config", "configs/ntu60_xsub.py", "Model/data config.")
_BATCH = flags.DEFINE_integer("batch_size", None, "Global batch size (default: config.train.batch_size).")
_STEPS = flags.DEFINE_integer("steps", None, "Timed steps after warm-up (default: 20 on accelerators, 5 on CPU).")
_DTYPE = flags.DEFINE_enum("dtype", None, ["float32", "bfloat16"], "Compute dtype (default: config.dtype).")
_WARMUP = flags.DEFINE_integer("warmup", 1, "Untimed steps after compilation.")
_TIME_LIMIT = flags.DEFINE_float(
  "time_limit", None, "Stop timing once the timed steps add up to this many seconds (at least 3 steps are timed)."
)
_LOWER_FOR = flags.DEFINE_list(
  "lower_for", None, "Only lower the step for these platforms (cpu, cuda, rocm, tpu) and count its serial loops."
)
_START_AFTER = flags.DEFINE_string(
  "start_after",
  None,
  "After compiling and warming up, create PATH.ready and wait until PATH exists before timing (used by "
  "accelerator_sweep.py --concurrent, which times its cases one at a time).",
)
_PROFILE_DIR = flags.DEFINE_string(
  "profile_dir",
  None,
  "After timing, trace --profile_steps more steps with jax.profiler into this folder (an .xplane.pb that "
  "benchmarks/profile_summary.py breaks down by module and by kernel, on any machine).",
)
_PROFILE_STEPS = flags.DEFINE_integer("profile_steps", 3, "Steps traced with --profile_dir.")
_COMPILE_ONLY = flags.DEFINE_bool(
  "compile_only", False, "Stop after compiling: FLOPs and XLA's memory plan, no steps (sizes any device's need)."
)

# Vendor dense peaks (FLOP/s) per chip, by dtype; matched against `device_kind` substrings. On NVIDIA GPUs the
# float32 peak is TF32's: JAX's default matmul precision runs float32 convolutions and dots on TF32 tensor cores.
_VENDOR_PEAK = {
  "H200": {"bfloat16": 989e12, "float32": 494.7e12},
  "H100": {"bfloat16": 989e12, "float32": 494.7e12},
  "A100": {"bfloat16": 312e12, "float32": 156e12},
  "L4": {"bfloat16": 121e12, "float32": 60e12},
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


def abstract_step(config: ml_collections.ConfigDict, model, batch_size: int, mesh, lr_fn) -> tuple:
  """The trainer's jitted step with the shapes (no values) of its train state and batch on `mesh`, for lowering."""
  tx = steps.create_optimizer(config, lr_fn)
  state = jax.eval_shape(lambda: steps.create_train_state(config, model, tx, mesh))
  batch = steps.abstract_batch(config, batch_size, mesh)
  return steps.jit_train_step(mesh, losses.get_loss_fn(config.loss), lr_fn), state, batch


def cost_dict(cost: Any) -> dict:
  """XLA's cost analysis as one dict (older jax gives one per program; some backends give None)."""
  if isinstance(cost, list | tuple):
    cost = cost[0]
  return cost or {}


def model_flops(config: ml_collections.ConfigDict, model, batch_size: int, lr_fn) -> float:
  """FLOPs of one train step: XLA's cost analysis of the step of `models.flop_reference(model)`.

  The step is lowered for one CPU device, whatever the default backend: the count belongs to the program, and
  GPU backends give no analysis of a lowered (uncompiled) module. NaN where no count is available.
  """
  mesh = sharding.make_mesh(jax.devices("cpu")[:1])
  step, state, batch = abstract_step(config, models.flop_reference(model), batch_size, mesh, lr_fn)
  return float(cost_dict(step.lower(state, batch).cost_analysis()).get("flops", float("nan")))


# The Pallas GPU kernels are Triton custom calls, which jax.export only writes when told that the module is
# not meant to outlive this jax version (here it is only inspected).
_TRITON = export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")


def serial_loops(module_text: str) -> list[int | None]:
  """The trip count of every `stablehlo.while` in a StableHLO module's text (None: not a counted loop).

  lax.map / lax.scan / fori_loop lower to a while whose condition is `compare LT, counter, constant`; the
  constant is looked up among the constants of the enclosing function.
  """
  trips: list[int | None] = []
  constants: dict[str, int] = {}
  in_condition = False
  for line in module_text.splitlines():
    if "func.func" in line:
      constants = {}
    if constant := re.search(r"(%[\w#]+) = stablehlo\.constant dense<(-?\d+)> : tensor<[iu]\d+>", line):
      constants[constant[1]] = int(constant[2])
    if "stablehlo.while" in line:
      trips.append(None)
      in_condition = True
    elif in_condition and (compare := re.search(r"stablehlo\.compare\s+LT, %[\w#]+, (%[\w#]+)", line)):
      trips[-1] = constants.get(compare[1])
      in_condition = False
  return trips


def nonlocal_choices(config: ml_collections.ConfigDict, platform: str) -> list[str]:
  """Per non-local kind, the implementation each SLnL block runs on `platform`, with its P (positions)."""
  model = config.model
  frames, joints = config.dataset.num_frames, model.num_joints_out
  choices: dict[str, list[str]] = {kind: [] for kind in model.nonlocal_kinds}
  for i in range(model.num_slnl_blocks):
    for kind in model.nonlocal_kinds:
      positions = {"temporal": frames, "spatial": joints, "spatio_temporal": frames * joints}[kind]
      name = model.nonlocal_impl
      if name == "auto":
        table = nonlocal_attention.auto_choices(kind, positions)
        name = table.get(platform, table["default"])
      choices[kind].append(f"{name} (P={positions})")
    if (i + 1) % model.pool_every == 0 and i + 1 < len(model.channels):
      frames, joints = frames // 2, joints // 2
  return [f"{kind}: " + ", ".join(f"block {i} {c}" for i, c in enumerate(cs)) for kind, cs in choices.items()]


def lower_for(config: ml_collections.ConfigDict, batch_size: int, platforms: list[str]) -> None:
  """Prints, per platform, what the trainer's step lowers to: implementations, serial loops, largest trip count."""
  lr_fn = steps.create_learning_rate_fn(config, steps_per_epoch=1000)
  step, state, batch = abstract_step(config, models.create_model(config), batch_size, sharding.make_mesh(), lr_fn)
  print(
    f"config: batch {batch_size}, input {steps.input_shape(config, batch_size)}, dtype {config.dtype}, "
    f"nonlocal {config.model.nonlocal_impl}, conv kernel grad {config.model.conv_kernel_grad}"
  )
  for platform in platforms:
    start = time.perf_counter()
    lowered = export.export(step, platforms=(platform,), disabled_checks=[_TRITON])(state, batch)
    text = lowered.mlir_module()
    trips = serial_loops(text)
    kernels = Counter(re.findall(r'(?:custom_call @|call_target_name = ")([\w$.]+)', text))
    kernel_grad = config.model.conv_kernel_grad
    if kernel_grad == "auto":
      kernel_grad = "matmul" if platform == "cpu" else "xla"
    counted = [t for t in trips if t is not None]
    rows = [
      ("serial loops (stablehlo.while)", f"{len(trips)}"),
      ("largest trip count", f"{max(counted)}" if counted else "-"),
      ("conv kernel gradient", kernel_grad),
      *(("non-local " + line.split(":")[0], line.split(": ", 1)[1]) for line in nonlocal_choices(config, platform)),
      ("custom calls (in the module text)", ", ".join(f"{k} x {n}" for k, n in sorted(kernels.items())) or "-"),
      ("lowering time", f"{time.perf_counter() - start:.1f} s"),
    ]
    print(f"--- {platform}")
    print_rows(rows)


def main(argv: list[str]) -> None:
  del argv
  config = _CONFIG.value
  if _DTYPE.value:
    config.dtype = _DTYPE.value
  batch_size = _BATCH.value or config.train.batch_size
  if _LOWER_FOR.value:
    lower_for(config, batch_size, _LOWER_FOR.value)
    return
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
  flops = model_flops(config, model, batch_size, lr_fn)
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
  if (accessed := cost_dict(compiled.cost_analysis()).get("bytes accessed")) is not None:
    rows.append(("XLA bytes accessed", f"{accessed / 1e9:.1f} GB (the compiled step; loop bodies once)"))
  if _COMPILE_ONLY.value:
    print_rows(rows)
    return

  for _ in range(_WARMUP.value):
    state, _ = compiled(state, batch)
  jax.block_until_ready(state)
  if _START_AFTER.value:
    go = pathlib.Path(_START_AFTER.value)
    pathlib.Path(f"{go}.ready").touch()
    while not go.exists():
      time.sleep(0.2)
  times = []
  for _ in range(num_steps):
    start = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
    if _TIME_LIMIT.value and len(times) >= 3 and sum(times) > _TIME_LIMIT.value:
      break
  step_s = statistics.median(times)
  if _PROFILE_DIR.value:
    profile_dir = pathlib.Path(_PROFILE_DIR.value)
    profile_dir.mkdir(parents=True, exist_ok=True)
    # The module's text names each HLO op's source (metadata op_name), which the trace's events lack.
    (profile_dir / "train_step.hlo.txt").write_text(compiled.as_text())
    with jax.profiler.trace(profile_dir):
      for _ in range(_PROFILE_STEPS.value):
        state, metrics = compiled(state, batch)
      jax.block_until_ready(metrics)

  peak, peak_source = device_peak(config.dtype)
  achieved = flops / step_s
  device_mem = jax.devices()[0].memory_stats() or {}
  rows += [
    ("step time (median)", f"{step_s:.4f} s over {len(times)} steps (min {min(times):.4f}, max {max(times):.4f})"),
    ("samples/s", f"{batch_size / step_s:.2f}"),
    ("achieved", f"{achieved / 1e9:.1f} GFLOP/s"),
    ("peak", f"{peak / 1e9:.1f} GFLOP/s ({peak_source})" if peak else f"n/a ({peak_source})"),
    ("MFU", f"{100 * achieved / peak:.1f} %" if peak and math.isfinite(achieved) else "n/a"),
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
