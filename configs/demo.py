"""Demo: a small SLnL-rFA on SYNTHETIC NTU-format skeletons (slnl_jax/data/synthetic.py), a few minutes on CPU.

The demo files are generated, built into TFDS and trained on inside the workdir (`<workdir>/tfds`), so
`make demo` needs no download. The accuracy says that the pipeline learns, nothing about the paper's numbers.
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.dataset.name = "synthetic_skeleton/xsub"
  config.dataset.data_dir = ""  # empty: <workdir>/tfds
  config.dataset.manual_dir = ""  # empty: the builder writes the synthetic files itself
  config.dataset.num_classes = 8
  config.dataset.num_frames = 32
  config.dataset.shuffle_buffer = 512

  config.model.num_joints_out = 16
  config.model.num_systems = 4
  config.model.channels = (16, 16, 32, 32)
  config.model.kernel_sizes = (3, 3, 3, 3)
  config.model.num_slnl_blocks = 2

  config.train.batch_size = 16
  config.train.eval_batch_size = 32
  config.train.num_epochs = 6
  config.train.lr_decay = 0.9
  config.train.log_every_steps = 5
  config.train.checkpoint_every_steps = 50
  return config
