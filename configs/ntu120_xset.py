"""NTU RGB+D 120, cross-setup protocol (even setups train, odd test): 120 classes.

The paper reports NTU-60 only. Cross-setup changes the camera placement between train and test, as
cross-view does, so we carry the NTU-60 cross-view choice (M1 = 3, M2 = 3) over.
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.dataset.name = "ntu_rgbd120/xset"
  config.dataset.num_classes = 120
  config.model.num_slnl_blocks = 3
  return config
