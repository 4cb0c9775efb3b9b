"""NTU RGB+D 60, cross-view protocol (cameras 2, 3 train; 1 test): M1 = 3 SLnL blocks, M2 = 3 local blocks."""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.dataset.name = "ntu_rgbd60/xview"
  config.model.num_slnl_blocks = 3
  return config
