"""NTU RGB+D 60, cross-subject protocol: the paper's defaults (M1 = 5 SLnL blocks, M2 = 1 local block)."""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.dataset.name = "ntu_rgbd60/xsub"
  config.model.num_slnl_blocks = 5
  return config
