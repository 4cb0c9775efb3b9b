r"""Streaming latency: the time to classify one window of a live stream (slnl_jax.inference.Predictor.stream).

  python benchmarks/inference_latency.py --config=configs/ntu60_xsub.py [--windows=200] [--window=FRAMES]

The model is the config's, with random weights (latency does not depend on their values), and the stream is
random frames of the config's persons x joints x channels. With stride 1 every frame closes a window, so the time
between two predictions is one window's latency: buffering, the compiled crop + resize + model + softmax, and
the top-k. Prints the median and the 99th percentile over `--windows` windows (after `--warmup` untimed ones,
which include compilation), the compile time, the device and the 1-minute load average at the start.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from slnl_jax import models
from slnl_jax.inference import Predictor

_CONFIG = config_flags.DEFINE_config_file("config", "configs/ntu60_xsub.py", "Model/data config.")
_WINDOWS = flags.DEFINE_integer("windows", 200, "Timed windows.")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed windows first (the first one compiles).")
_WINDOW = flags.DEFINE_integer("window", None, "Raw frames per window (default: the config's num_frames).")


def random_frames(shape: tuple[int, ...], seed: int = 0) -> Iterator[np.ndarray]:
  rng = np.random.default_rng(seed)
  while True:
    yield rng.normal(size=shape).astype(np.float32)


def main(argv: list[str]) -> None:
  del argv
  config = _CONFIG.value
  data = config.dataset
  window = _WINDOW.value or data.num_frames
  load = os.getloadavg()[0]
  model = models.create_model(config)
  x = jnp.zeros((1, data.num_persons, data.num_frames, data.num_joints, data.num_channels))
  variables = jax.jit(lambda rng: model.init(rng, x, train=False))(jax.random.PRNGKey(0))
  names = [f"class {i}" for i in range(data.num_classes)]
  predictor = Predictor(config, {"params": variables["params"], "batch_stats": variables["batch_stats"]}, names)
  frames = random_frames((data.num_persons, data.num_joints, data.num_channels))
  stream = predictor.stream(frames, window=window, stride=1)

  start = time.perf_counter()
  next(stream)
  compile_s = time.perf_counter() - start
  for _ in range(_WARMUP.value - 1):
    next(stream)
  latencies = []
  for _ in range(_WINDOWS.value):
    start = time.perf_counter()
    next(stream)
    latencies.append(time.perf_counter() - start)
  ms = 1e3 * np.array(latencies)
  print(
    f"{jax.devices()[0].device_kind} x{jax.device_count()}, load {load:.1f}: {data.name}, window {window} frames "
    f"-> T={data.num_frames}, {data.num_persons} x {data.num_joints} x {data.num_channels}, "
    f"nonlocal_impl={config.model.nonlocal_impl}"
  )
  print(
    f"one window over {len(ms)}: median {np.median(ms):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms "
    f"(min {ms.min():.2f}, max {ms.max():.2f}); first window incl. compile {compile_s:.1f} s"
  )


if __name__ == "__main__":
  app.run(main)
