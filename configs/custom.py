r"""Your own dataset, with no code change: arrays in a folder, shape and classes read from the data.

  python -m slnl_jax.main --config=configs/custom.py:/path/to/my_arrays --workdir=workdirs/mine

The folder holds `train.npz` + `test.npz` (keys `skeleton` (N, T, M, V, C), `label` (N,), optional
`num_frames`, `class_names`) or ST-GCN's `train_data.npy`, `train_label.pkl`, `val_data.npy`,
`val_label.pkl` (see slnl_jax/data/arrays.py). The number of classes, persons, joints and channels comes
from the arrays; the model and training are the paper's defaults (override any key with --config.a.b=...).
The dataset is built as `custom_skeleton/<folder name>`, so each folder has its own build in one data_dir.
"""

import pathlib
import re

import ml_collections

from configs import default
from slnl_jax.config_checks import ConfigError


def get_config(manual_dir: str = "") -> ml_collections.ConfigDict:
  if not manual_dir:
    raise ConfigError("give the data folder after the file name: --config=configs/custom.py:/path/to/arrays")
  # Imported here so that other configs load without TensorFlow.
  from slnl_jax.data import builders
  from slnl_jax.data.errors import SkeletonFormatError

  try:
    data = builders.CustomSkeleton.config_from(pathlib.Path(manual_dir).expanduser())
  except (SkeletonFormatError, OSError) as e:
    raise ConfigError(f"--config=configs/custom.py:{manual_dir}: {e}") from e
  config = default.get_config()
  folder = re.sub(r"[^\w\-.]|\.\.", "_", pathlib.Path(manual_dir).expanduser().resolve().name).lstrip("-.")
  config.dataset.name = f"custom_skeleton/{folder or 'default'}"
  config.dataset.manual_dir = manual_dir
  config.dataset.num_classes = len(data.class_names)
  config.dataset.num_persons, config.dataset.num_joints, config.dataset.num_channels = data.shape
  return config
