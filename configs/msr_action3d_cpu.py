"""MSR Action3D cross-subject, sized for the ablation study on 2 shared CPU cores (tools/ablate.py).

configs/msr_action3d.py with T = 16 frames (the spatio-temporal non-local affinity is (T V')^2, so halving T
makes a step about 4x cheaper), 15 epochs with a faster learning-rate decay, and an evaluation every 3 epochs
(an evaluation of the 275 test clips costs about half an epoch of training); the model (N' = 16, K = 4,
channels 32-64, M1 = 2) is unchanged. docs/results.md reports the wall time and the accuracy this budget reaches.
"""

import ml_collections

from configs import msr_action3d


def get_config() -> ml_collections.ConfigDict:
  config = msr_action3d.get_config()
  config.dataset.num_frames = 16
  config.train.num_epochs = 15
  config.train.lr_decay = 0.9
  config.train.eval_every_epochs = 3
  return config
