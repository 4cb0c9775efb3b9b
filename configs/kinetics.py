"""Kinetics-skeleton (ST-GCN's OpenPose release, Sec. 4.1): 18 joints with (x, y, score), 400 classes.

The backbone has two more 512-channel blocks (8 in all) and kernel 5 in the first two blocks; T = 128 frames.
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.dataset.name = "kinetics_skeleton"
  config.dataset.num_classes = 400
  config.dataset.num_joints = 18
  config.dataset.num_channels = 3  # x, y, OpenPose confidence score
  config.dataset.num_frames = 128
  config.model.channels = (64, 64, 128, 128, 256, 256, 512, 512)
  config.model.kernel_sizes = (5, 5, 3, 3, 3, 3, 3, 3)
  config.train.batch_size = 128
  config.train.eval_batch_size = 128
  config.train.num_epochs = 100
  config.train.lr_decay = 0.95
  return config
