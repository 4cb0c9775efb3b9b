"""Northwestern-UCLA cross-view sized for 2 CPU cores: one full-model run in about 9 minutes alone.

configs/nw_ucla.py with the model of configs/msr_action3d_cpu.py (N' = 16, K = 4, channels 32-32-64-64, M1 = 2
SLnL blocks + 2 local), T = 16 frames, 60 epochs with lr decay 0.955 per epoch (63 steps of batch 16 each) and an
evaluation every 5 epochs; clips fed as configs/nw_ucla.py says (CTR-GCN's feeder: centred on joint 1, per-axis
min-max, training clips turned and tilted by U[-60, 60] degrees). These settings were chosen on the validation
protocol `nw_ucla/view_val` (view 1 trains, view 2 tests), never on view 3: of the settings docs/results.md lists
there, this one (74.40 / 75.00 % for seeds 0 / 1) beat the raw camera coordinates of the calibration preset
(71.43 / 72.22 % at 30 epochs, 67.66 % at 60).
"""

import ml_collections

from configs import nw_ucla


def get_config() -> ml_collections.ConfigDict:
  config = nw_ucla.get_config()
  config.dataset.num_frames = 16

  config.model.num_joints_out = 16
  config.model.num_systems = 4
  config.model.channels = (32, 32, 64, 64)
  config.model.kernel_sizes = (3, 3, 3, 3)
  config.model.num_slnl_blocks = 2

  config.train.num_epochs = 60
  config.train.lr_decay = 0.955
  config.train.eval_every_epochs = 5
  return config
