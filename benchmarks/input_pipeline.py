r"""Prints examples/s of the training input pipeline: TFDS read, random crop, temporal resize, batch.

Runs `slnl_jax.input_pipeline.train_dataset` epoch after epoch (as the trainer does) on the real MSR Action3D
copy and on the synthetic demo set, each built with TFDS first if `--data_dir` does not hold it yet. A script
that prints figures, not a test:

  .venv/bin/python benchmarks/input_pipeline.py --data_dir=/tmp/slnl_tfds --batch_size=32 --num_batches=200
"""

import itertools
import os
import pathlib
import tempfile
import time
from collections.abc import Iterator

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import ml_collections
import numpy as np
import tensorflow as tf
from ml_collections import config_flags

from slnl_jax import input_pipeline
from slnl_jax.data import builders

REPO = pathlib.Path(__file__).resolve().parents[1]
_CONFIG = config_flags.DEFINE_config_file(
  "config", str(REPO / "configs" / "default.py"), "config whose dataset.* crop/resize settings are used"
)
_DATA_DIR = flags.DEFINE_string(
  "data_dir", None, "TFDS data_dir holding (or to receive) the built datasets; default: a temporary one"
)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "global batch size")
_NUM_BATCHES = flags.DEFINE_integer("num_batches", 200, "batches timed, after one warm-up batch")

SHARED_DATA = pathlib.Path(os.environ.get("SLNL_SHARED_DATA", REPO.parent / "shared" / "data"))
DATASETS = {  # TFDS name -> manual_dir of the raw files (None: the synthetic files are generated)
  "msr_action3d/cross_subject": SHARED_DATA / "msr_action3d" / "MSRAction3DSkeletonReal3D",
  "synthetic_skeleton/xsub": None,
}


def _epochs(ds: tf.data.Dataset, config: ml_collections.ConfigDict) -> Iterator[dict[str, np.ndarray]]:
  """Training batches epoch after epoch, each epoch rebuilt from (seed, epoch) as the trainer does."""
  for epoch in itertools.count():
    yield from input_pipeline.as_numpy(
      input_pipeline.train_dataset(
        ds, config=config, global_batch_size=_BATCH_SIZE.value, seed=config.seed, epoch=epoch
      )
    )


def _benchmark(name: str, manual_dir: pathlib.Path | None, data_dir: str) -> None:
  start = time.perf_counter()
  builder = builders.build(name, manual_dir=manual_dir, data_dir=data_dir)  # reuses an existing build
  print(f"{name}: built or found in {data_dir} in {time.perf_counter() - start:.1f} s")
  num_persons, num_joints, num_channels = builder.info.features["skeleton"].shape[1:]
  config = ml_collections.ConfigDict(_CONFIG.value.to_dict())  # a copy: each dataset sets its shape
  config.dataset.update({"num_persons": num_persons, "num_joints": num_joints, "num_channels": num_channels})
  num_examples = builder.info.splits["train"].num_examples
  batches = _epochs(builder.as_dataset(split="train", shuffle_files=False), config)
  next(batches)  # warm-up: tracing the map function, opening the files
  start = time.perf_counter()
  for _ in itertools.islice(batches, _NUM_BATCHES.value):
    pass
  seconds = time.perf_counter() - start
  examples = _NUM_BATCHES.value * _BATCH_SIZE.value
  print(
    f"{name}: {num_examples} train clips of (T, {num_persons}, {num_joints}, {num_channels}) -> "
    f"T={config.dataset.num_frames}, batch {_BATCH_SIZE.value}, {_NUM_BATCHES.value} batches "
    f"({_NUM_BATCHES.value / (num_examples // _BATCH_SIZE.value):.1f} epochs): "
    f"{examples / seconds:,.0f} examples/s ({1e3 * seconds / _NUM_BATCHES.value:.2f} ms/batch)"
  )


def main(argv: list[str]) -> None:
  del argv
  print(f"{os.cpu_count()} CPU cores visible")
  with tempfile.TemporaryDirectory() as scratch:
    data_dir = _DATA_DIR.value or scratch
    for name, manual_dir in DATASETS.items():
      _benchmark(name, manual_dir, data_dir)


if __name__ == "__main__":
  app.run(main)
